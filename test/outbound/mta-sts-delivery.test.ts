// Outbound delivery under MTA-STS (RFC 8461) and a mailbox's tls_enforce_out, end to end: a
// sending Postern (API send, queue worker, SMTP client) on an injected clock, an HTTPS policy
// host with a test CA, MX records in the loopback DNS, and receiving servers with a valid
// certificate, a misnamed one, no STARTTLS, and one offering REQUIRETLS (tls-sinks.ts).

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { manualClock } from '../../src/time/clock.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import { createTestCa } from '../helpers/test-ca.ts'
import { type Sender, startSender, waitForEmail } from './helpers.ts'
import { type PolicyServer, policyText, publish, startPolicyServer } from './policy-server.ts'
import type { PosternSink, Sinks } from './tls-sinks.ts'
import { SINK_IP, startSinks } from './tls-sinks.ts'

const MINUTE = 60_000
const LIFETIME_S = 3600
const MX_NAMES = [
  'mx.enforce-ok.example',
  'mx.cache.example',
  'mx.strict-ok.example',
  'mx.requiretls.example',
]

type Step = { kind: string; detail: Record<string, unknown> }

for (const dialect of DIALECTS) {
  describe(`outbound MTA-STS and tls_enforce_out (${dialect})`, () => {
    let dns: DnsServer
    let policies: PolicyServer
    let sinks: Sinks
    let a: Sender
    let caDir: string
    const clock = manualClock(Date.now())

    before(async () => {
      dns = await startDnsServer({})
      const ca = await createTestCa()
      policies = await startPolicyServer(ca)
      sinks = await startSinks(ca, MX_NAMES)
      caDir = mkdtempSync(join(tmpdir(), 'postern-ca-'))
      a = await startSender(dialect, dns, sinks.port, {
        clock,
        env: {
          POSTERN_OUTBOUND_MTA_STS_PORT: String(policies.port),
          POSTERN_OUTBOUND_TLS_CA_FILE: ca.writeTo(caDir),
          POSTERN_OUTBOUND_LIFETIME_SECONDS: String(LIFETIME_S),
        },
      })
      const strict = await a.api.post('/v1/mailboxes', {
        domain: a.domain,
        local_part: 'strict',
        tls_enforce_out: true,
      })
      assert.equal(strict.status, 201, strict.text)
    })
    after(async () => {
      await a?.server.close()
      await sinks?.close()
      await policies?.close()
      await dns?.close()
      if (caDir) rmSync(caDir, { recursive: true, force: true })
    })

    /** The domain's one MX `mx.<domain>`, at one of the sinks. */
    const route = (domain: string, ip: string) => {
      dns.set(domain, 'MX', [{ priority: 10, exchange: `mx.${domain}` }])
      dns.set(`mx.${domain}`, 'A', [ip])
    }
    const send = async (to: string, from = `alice@${a.domain}`) => {
      const r = await a.send.post('/v1/emails', { from, to, subject: 'Hi', text: 'Hello' })
      assert.equal(r.status, 202, r.text)
      return r.body.id as string
    }
    const trace = async (id: string): Promise<Step[]> => {
      const t = await a.api.get(`/v1/emails/${id}/trace`)
      assert.equal(t.status, 200, t.text)
      return t.body.steps
    }
    const delivered = (id: string) => waitForEmail(a.api, id, (e) => e.status === 'sent')
    const deferred = (id: string) =>
      waitForEmail(a.api, id, (e) => e.recipients[0].state === 'deferred' && e.recipients[0].attempts >= 1)
    /** Transactions a Postern sink saw for `address`, with the session's TLS. */
    const received = (sink: PosternSink, address: string) =>
      sink.handler.calls.flatMap((c) =>
        c.kind === 'message' && c.to.some((t) => t.address === address) ? [c.s.tls] : [],
      )
    const mailCommands = (sink: PosternSink, address: string) =>
      sink.handler.calls.filter((c) => c.kind === 'rcpt' && c.to.address === address)

    it('enforce: a listed MX gets the mail over TLS with its certificate verified', async () => {
      const d = 'enforce-ok.example'
      route(d, SINK_IP.verified)
      publish(dns, d, 'e1')
      policies.serve(d, { body: policyText('enforce', [`mx.${d}`]) })
      const id = await send(`bob@${d}`)
      const e = await delivered(id)
      assert.equal(e.recipients[0].state, 'delivered')
      const tls = received(sinks.verified, `bob@${d}`)
      assert.equal(tls.length, 1)
      assert.match(tls[0]?.protocol ?? '', /^TLSv1\.[23]$/)
      const steps = await trace(id)
      const sts = steps.find((s) => s.kind === 'mta_sts')
      assert.equal(sts?.detail.source, 'fetched', JSON.stringify(steps))
      assert.equal(sts?.detail.mode, 'enforce')
      const handshake = steps.find((s) => s.kind === 'tls')
      assert.equal(handshake?.detail.authorized, true, JSON.stringify(steps))
      assert.equal(policies.count(d), 1)
    })

    it('enforce: a certificate that does not name the MX defers the mail, which never goes out', async () => {
      const d = 'enforce-badcert.example'
      route(d, SINK_IP.wrongName)
      publish(dns, d, 'b1')
      policies.serve(d, { body: policyText('enforce', [`mx.${d}`]) })
      const id = await send(`bob@${d}`)
      const e = await deferred(id)
      const r = e.recipients[0]
      assert.equal(r.last_code, 451)
      assert.equal(r.last_enhanced_code, '4.7.5')
      assert.match(
        r.last_response,
        /MTA-STS policy of enforce-badcert\.example \(enforce\) requires a valid certificate/,
      )
      assert.match(r.last_response, /mx\.enforce-badcert\.example: TLS handshake failed/)
      assert.equal(mailCommands(sinks.wrongName, `bob@${d}`).length, 0)
    })

    it('enforce: an MX without STARTTLS defers the mail (4.7.4)', async () => {
      const d = 'enforce-notls.example'
      route(d, SINK_IP.plain)
      publish(dns, d, 'n1')
      policies.serve(d, { body: policyText('enforce', [`mx.${d}`]) })
      const id = await send(`bob@${d}`)
      const r = (await deferred(id)).recipients[0]
      assert.equal(r.last_enhanced_code, '4.7.4')
      assert.match(r.last_response, /MTA-STS policy of enforce-notls\.example.*does not offer STARTTLS/)
      assert.equal(mailCommands(sinks.plain, `bob@${d}`).length, 0)
    })

    it('testing: the mail is delivered, and what enforce would have refused is recorded', async () => {
      const d = 'testing.example'
      route(d, SINK_IP.wrongName)
      publish(dns, d, 't1')
      policies.serve(d, { body: policyText('testing', ['mx.somewhere-else.example']) })
      const id = await send(`bob@${d}`)
      const e = await delivered(id)
      assert.equal(e.recipients[0].state, 'delivered')
      assert.equal(received(sinks.wrongName, `bob@${d}`).length, 1)
      const steps = await trace(id)
      const results = steps.filter((s) => s.kind === 'mta_sts').map((s) => s.detail.result)
      assert.ok(results.includes('mx_not_in_policy'), JSON.stringify(steps))
      assert.ok(results.includes('certificate_invalid'), JSON.stringify(steps))
    })

    it('a policy of mode none, or no policy at all, changes nothing', async () => {
      const d = 'none-mode.example'
      route(d, SINK_IP.plain)
      publish(dns, d, 'z1')
      policies.serve(d, { body: policyText('none', []) })
      const id = await send(`bob@${d}`)
      assert.equal((await delivered(id)).recipients[0].state, 'delivered')
      const bare = 'no-policy.example'
      route(bare, SINK_IP.plain)
      const id2 = await send(`bob@${bare}`)
      assert.equal((await delivered(id2)).recipients[0].state, 'delivered')
      const sts = (await trace(id2)).find((s) => s.kind === 'mta_sts')
      assert.equal(sts?.detail.source, 'none')
    })

    it('the policy is fetched once within max_age, and again when the TXT id changes', async () => {
      const d = 'cache.example'
      route(d, SINK_IP.verified)
      publish(dns, d, 'c1')
      policies.serve(d, { body: policyText('enforce', [`mx.${d}`], 3 * 3600) })
      await delivered(await send(`one@${d}`))
      assert.equal(policies.count(d), 1)
      clock.advance(2 * MINUTE) // past the per-process memo; the database cache answers
      const second = await send(`two@${d}`)
      await delivered(second)
      assert.equal(policies.count(d), 1)
      assert.equal((await trace(second)).find((s) => s.kind === 'mta_sts')?.detail.source, 'cached')
      publish(dns, d, 'c2')
      clock.advance(2 * MINUTE)
      const third = await send(`three@${d}`)
      await delivered(third)
      assert.equal(policies.count(d), 2)
      assert.equal((await trace(third)).find((s) => s.kind === 'mta_sts')?.detail.policy_id, 'c2')
    })

    it('tls_enforce_out: a next hop without STARTTLS defers the mailbox mail; other mail goes', async () => {
      const d = 'plain.example'
      route(d, SINK_IP.plain)
      const id = await send(`bob@${d}`, `strict@${a.domain}`)
      const r = (await deferred(id)).recipients[0]
      assert.equal(r.last_enhanced_code, '4.7.4')
      assert.match(r.last_response, /tls_enforce_out.*does not offer STARTTLS/)
      assert.equal(mailCommands(sinks.plain, `bob@${d}`).length, 0)
      const steps = await trace(id)
      assert.ok(steps.some((s) => s.kind === 'tls_policy' && s.detail.require === 'verified'))

      const other = await send(`carol@${d}`)
      assert.equal((await delivered(other)).recipients[0].state, 'delivered')
    })

    it('tls_enforce_out: a certificate that does not verify defers; a valid one delivers', async () => {
      const bad = 'strict-bad.example'
      route(bad, SINK_IP.wrongName)
      const r = (await deferred(await send(`bob@${bad}`, `strict@${a.domain}`))).recipients[0]
      assert.match(r.last_response, /tls_enforce_out.*TLS handshake failed/)
      assert.equal(mailCommands(sinks.wrongName, `bob@${bad}`).length, 0)

      const ok = 'strict-ok.example'
      route(ok, SINK_IP.verified)
      await delivered(await send(`bob@${ok}`, `strict@${a.domain}`))
      assert.ok(received(sinks.verified, `bob@${ok}`)[0])
    })

    it('tls_enforce_out: REQUIRETLS goes on MAIL FROM when the next hop offers it', async () => {
      const d = 'requiretls.example'
      route(d, SINK_IP.requiretls)
      const strict = await send(`bob@${d}`, `strict@${a.domain}`)
      await delivered(strict)
      const plain = await send(`carol@${d}`)
      await delivered(plain)
      const line = (id: string) => sinks.requiretls.mails.find((m) => m.line.includes(id))
      assert.match(line(strict)?.line ?? '', / REQUIRETLS$/, JSON.stringify(sinks.requiretls.mails))
      assert.equal(line(strict)?.tls, true)
      assert.ok(line(plain), JSON.stringify(sinks.requiretls.mails))
      assert.doesNotMatch(line(plain)?.line ?? '', /REQUIRETLS/)
    })

    // Last: it moves the clock past the queue lifetime for every message of this sender.
    it('enforce: an MX outside the policy is never tried; the mail waits, then fails at the end of its lifetime', async () => {
      const d = 'enforce-mismatch.example'
      route(d, SINK_IP.verified)
      publish(dns, d, 'm1')
      policies.serve(d, { body: policyText('enforce', ['mx.somewhere-else.example'], 7 * 86_400) })
      const id = await send(`bob@${d}`)
      const r = (await deferred(id)).recipients[0]
      assert.equal(r.last_code, 451)
      assert.equal(r.last_enhanced_code, '4.7.5')
      assert.match(
        r.last_response,
        /MTA-STS policy of enforce-mismatch\.example.*none of its MX hosts matches \(mx\.enforce-mismatch\.example\)/,
      )
      const steps = await trace(id)
      assert.ok(!steps.some((s) => s.kind === 'connect'), JSON.stringify(steps))
      assert.ok(steps.some((s) => s.kind === 'mta_sts' && s.detail.result === 'mx_not_in_policy'))

      // Retries keep deferring (the policy is checked again each time), until the lifetime ends.
      clock.advance(10 * MINUTE)
      await waitForEmail(a.api, id, (e) => e.recipients[0].attempts >= 2)
      clock.advance(LIFETIME_S * 1000)
      const done = await waitForEmail(a.api, id, (e) => e.status === 'failed')
      assert.equal(done.recipients[0].state, 'failed')
      assert.match(
        done.recipients[0].last_response,
        /gave up after .*MTA-STS policy of enforce-mismatch\.example/,
      )
      assert.equal(mailCommands(sinks.verified, `bob@${d}`).length, 0)
    })
  })
}
