// REQUIRETLS (RFC 8689) end to end: a sending Postern (API, submission, MX relaying an alias
// forward) and receiving servers on loopback that offer REQUIRETLS after STARTTLS or do not
// (tls-sinks.ts), MX records in the loopback DNS, an HTTPS MTA-STS policy host with a test CA.
// Covers: EHLO lists REQUIRETLS only after STARTTLS (MX and submission), MAIL FROM REQUIRETLS
// without TLS refused (530 5.7.10), the API option and the MAIL parameter carried on to the
// next hop, a host without REQUIRETLS skipped for the next MX, the bounce (5.7.30 / 5.7.10)
// when no MX qualifies, and `TLS-Required: No` lifting MTA-STS unless tls_enforce_out is on.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import nodemailer from 'nodemailer'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import { createTestCa } from '../helpers/test-ca.ts'
import { PASSWORD } from '../imap/helpers.ts'
import { RawClient } from '../smtp/helpers.ts'
import { mxPort, type Sender, startSender, waitForEmail } from './helpers.ts'
import { type PolicyServer, policyText, publish, startPolicyServer } from './policy-server.ts'
import { type ScriptedSink, SINK_IP, type Sinks, startSinks } from './tls-sinks.ts'

const MX_NAMES = [
  'mx.rt-ok.example',
  'mx1.rt-second.example',
  'mx2.rt-second.example',
  'mx.rt-missing.example',
  'mx.rt-plain.example',
  'mx.rt-sub.example',
  'mx.rt-fwd.example',
  'mx.no-mismatch.example',
]

for (const dialect of DIALECTS) {
  describe(`REQUIRETLS (${dialect})`, () => {
    let dns: DnsServer
    let policies: PolicyServer
    let sinks: Sinks
    let a: Sender
    let caDir: string

    before(async () => {
      dns = await startDnsServer({})
      const ca = await createTestCa()
      policies = await startPolicyServer(ca)
      sinks = await startSinks(ca, MX_NAMES)
      caDir = mkdtempSync(join(tmpdir(), 'postern-ca-'))
      a = await startSender(dialect, dns, sinks.port, {
        env: {
          POSTERN_OUTBOUND_MTA_STS_PORT: String(policies.port),
          POSTERN_OUTBOUND_TLS_CA_FILE: ca.writeTo(caDir),
        },
      })
      for (const [local_part, tls_enforce_out] of [
        ['strict', true],
        ['sub', false],
      ] as const) {
        const r = await a.api.post('/v1/mailboxes', { domain: a.domain, local_part, tls_enforce_out })
        assert.equal(r.status, 201, r.text)
        const p = await a.api.patch(`/v1/mailboxes/${r.body.mailbox.id}`, { password: PASSWORD })
        assert.equal(p.status, 200, p.text)
      }
    })
    after(async () => {
      await a?.server.close()
      await sinks?.close()
      await policies?.close()
      await dns?.close()
      if (caDir) rmSync(caDir, { recursive: true, force: true })
    })

    const route = (domain: string, hosts: [string, string][]) => {
      dns.set(
        domain,
        'MX',
        hosts.map(([name], i) => ({ priority: 10 * (i + 1), exchange: name })),
      )
      for (const [name, ip] of hosts) dns.set(name, 'A', [ip])
    }
    const send = async (to: string, extra: Record<string, unknown> = {}, from = `alice@${a.domain}`) => {
      const r = await a.send.post('/v1/emails', { from, to, subject: 'Hi', text: 'Hello', ...extra })
      assert.equal(r.status, 202, r.text)
      return r.body.id as string
    }
    const finished = (id: string) =>
      waitForEmail(a.api, id, (e) => ['delivered', 'bounced', 'failed'].includes(e.recipients[0].state))
    const mailLine = (sink: ScriptedSink, to: string) => sink.mails.find((m) => m.rcpt.includes(to))

    it('EHLO lists REQUIRETLS only after STARTTLS, on the MX and on submission; MAIL FROM REQUIRETLS in clear text gets 530 5.7.10', async () => {
      const submission = a.server.postern.listeners.find((l) => l.name === 'smtp-submission')?.port as number
      for (const port of [mxPort(a.server), submission]) {
        const c = await RawClient.greeted(port)
        const before = await c.cmd('EHLO client.example', '250')
        assert.doesNotMatch(before, /REQUIRETLS/)
        assert.match(before, /STARTTLS/)
        if (port === mxPort(a.server)) await c.cmd(`MAIL FROM:<x@client.example> REQUIRETLS`, '530 5.7.10')
        await c.cmd('STARTTLS', '220')
        await c.startTls()
        const afterTls = await c.cmd('EHLO client.example', '250')
        assert.match(afterTls, /REQUIRETLS/)
        c.close()
      }
    })

    it('the API option: REQUIRETLS on MAIL FROM to a next hop that offers it, over verified TLS', async () => {
      route('rt-ok.example', [['mx.rt-ok.example', SINK_IP.requiretls]])
      const id = await send('bob@rt-ok.example', { require_tls: true })
      const e = await finished(id)
      assert.equal(e.recipients[0].state, 'delivered', JSON.stringify(e))
      const m = mailLine(sinks.requiretls, 'bob@rt-ok.example')
      assert.match(m?.line ?? '', / REQUIRETLS$/, JSON.stringify(sinks.requiretls.mails))
      assert.equal(m?.tls, true)
    })

    it('a host without REQUIRETLS is skipped for the next MX', async () => {
      route('rt-second.example', [
        ['mx1.rt-second.example', SINK_IP.noRequiretls],
        ['mx2.rt-second.example', SINK_IP.requiretls],
      ])
      const id = await send('bob@rt-second.example', { require_tls: true })
      const e = await finished(id)
      assert.equal(e.recipients[0].state, 'delivered', JSON.stringify(e))
      assert.equal(e.recipients[0].remote_mta ?? 'mx2.rt-second.example', 'mx2.rt-second.example')
      assert.ok(mailLine(sinks.requiretls, 'bob@rt-second.example'))
      assert.equal(mailLine(sinks.noRequiretls, 'bob@rt-second.example'), undefined)
    })

    it('bounces with 5.7.30 when no MX offers REQUIRETLS, and 5.7.10 when none offers TLS; nothing is sent', async () => {
      route('rt-missing.example', [['mx.rt-missing.example', SINK_IP.noRequiretls]])
      const missing = await finished(await send('bob@rt-missing.example', { require_tls: true }))
      assert.equal(missing.recipients[0].state, 'bounced', JSON.stringify(missing))
      assert.equal(missing.recipients[0].last_enhanced_code, '5.7.30')
      assert.equal(mailLine(sinks.noRequiretls, 'bob@rt-missing.example'), undefined)

      route('rt-plain.example', [['mx.rt-plain.example', SINK_IP.plain]])
      const plain = await finished(await send('bob@rt-plain.example', { require_tls: true }))
      assert.equal(plain.recipients[0].state, 'bounced', JSON.stringify(plain))
      assert.equal(plain.recipients[0].last_enhanced_code, '5.7.10')
      assert.ok(
        !sinks.plain.handler.calls.some((c) => c.kind === 'rcpt' && c.to.address === 'bob@rt-plain.example'),
      )

      // The same without the option: delivered as before.
      route('rt-missing2.example', [['mx.rt-missing.example', SINK_IP.noRequiretls]])
      const opportunistic = await finished(await send('bob@rt-missing2.example'))
      assert.equal(opportunistic.recipients[0].state, 'delivered')
      assert.doesNotMatch(mailLine(sinks.noRequiretls, 'bob@rt-missing2.example')?.line ?? 'x', /REQUIRETLS/)
    })

    it('submission: MAIL FROM REQUIRETLS from nodemailer is kept to the next hop', async () => {
      route('rt-sub.example', [['mx.rt-sub.example', SINK_IP.requiretls]])
      const submission = a.server.postern.listeners.find((l) => l.name === 'smtp-submission')?.port as number
      const t = nodemailer.createTransport({
        host: '127.0.0.1',
        port: submission,
        secure: false,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: `sub@${a.domain}`, pass: PASSWORD },
      })
      await t.sendMail({
        from: `sub@${a.domain}`,
        to: 'bob@rt-sub.example',
        subject: 'Secret',
        text: 'Only over TLS',
        envelope: { from: `sub@${a.domain}`, to: ['bob@rt-sub.example'], requireTLSExtensionEnabled: true },
      } as never)
      t.close()
      const deadline = Date.now() + 15_000
      while (!mailLine(sinks.requiretls, 'bob@rt-sub.example') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50))
      const m = mailLine(sinks.requiretls, 'bob@rt-sub.example')
      assert.match(m?.line ?? '', / REQUIRETLS$/, JSON.stringify(sinks.requiretls.mails))
      const row = await a.server.postern.store.db
        .selectFrom('outbound_messages')
        .select(['require_tls', 'origin'])
        .where('origin', '=', 'submission')
        .executeTakeFirstOrThrow()
      assert.equal(Number(row.require_tls), 1)
    })

    it('the MX: mail received with REQUIRETLS for an alias that forwards out keeps it', async () => {
      route('rt-fwd.example', [['mx.rt-fwd.example', SINK_IP.requiretls]])
      const r = await a.api.post('/v1/aliases', {
        address: `fwd@${a.domain}`,
        targets: ['bob@rt-fwd.example'],
      })
      assert.equal(r.status, 201, r.text)
      const c = await RawClient.greeted(mxPort(a.server))
      await c.cmd('EHLO client.example', '250')
      await c.cmd('STARTTLS', '220')
      await c.startTls()
      await c.cmd('EHLO client.example', '250')
      await c.cmd('MAIL FROM:<someone@elsewhere.example> REQUIRETLS', '250')
      await c.cmd(`RCPT TO:<fwd@${a.domain}>`, '250')
      await c.cmd('DATA', '354')
      c.write(
        'From: someone@elsewhere.example\r\nTo: fwd@a.example\r\nSubject: relayed\r\nMessage-ID: <rt1@elsewhere.example>\r\n\r\nHi\r\n.\r\n',
      )
      await c.expect('250 2.0.0')
      c.close()
      const deadline = Date.now() + 15_000
      while (!mailLine(sinks.requiretls, 'bob@rt-fwd.example') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50))
      assert.match(mailLine(sinks.requiretls, 'bob@rt-fwd.example')?.line ?? '', / REQUIRETLS$/)
    })

    it('TLS-Required: No lifts an MTA-STS mismatch; tls_enforce_out still wins over it', async () => {
      const d = 'no-mismatch.example'
      route(d, [[`mx.${d}`, SINK_IP.plain]])
      publish(dns, d, 'n1')
      policies.serve(d, { body: policyText('enforce', ['mx.somewhere-else.example']) })
      const headers = { 'TLS-Required': 'No' }
      const lifted = await finished(await send(`bob@${d}`, { headers }))
      assert.equal(lifted.recipients[0].state, 'delivered', JSON.stringify(lifted))

      const strict = await send(`carol@${d}`, { headers }, `strict@${a.domain}`)
      const e = await waitForEmail(
        a.api,
        strict,
        (x) => x.recipients[0].state === 'deferred' && x.recipients[0].attempts >= 1,
      )
      assert.equal(e.recipients[0].state, 'deferred')
      assert.ok(
        !sinks.plain.handler.calls.some((c) => c.kind === 'rcpt' && c.to.address === `carol@${d}`),
        'never sent under tls_enforce_out',
      )
    })
  })
}
