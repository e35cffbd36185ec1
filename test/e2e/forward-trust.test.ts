// Two Postern instances on one loopback DNS server: A forwards (alias with outside targets,
// SRS, ARC seal) to B. ARC trust at the receiver: mail of a p=reject domain that only SPF
// authenticated at A fails DMARC at B; B trusts A's sealing domain a.example
// (smtp.arc_trusted_sealers) but not a2.example, so the copy sealed by a.example is filed in
// the inbox with the override in its stored summary, and the one sealed by a2.example is
// refused (550 5.7.1). Bounces of forwards: a target B refuses with 5xx gives the original
// sender a DSN from <>; a forward of null-sender mail that fails is dropped, never bounced.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { hostedOrg, mail, senderDomain } from '../delivery/helpers.ts'
import { verifiedDomain } from '../domains/helpers.ts'
import type { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { mxPort, waitForEmail } from '../outbound/helpers.ts'
import { RawClient } from '../smtp/helpers.ts'

async function smtpSend(port: number, from: string, to: string, body: string): Promise<string> {
  const c = await RawClient.greeted(port)
  try {
    await c.cmd('EHLO client.sender.example', '250')
    await c.cmd(`MAIL FROM:<${from}>`, '250')
    await c.cmd(`RCPT TO:<${to}>`, '250')
    await c.cmd('DATA', '354')
    const stuffed = body.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..')
    c.write(`${stuffed}${stuffed.endsWith('\r\n') ? '' : '\r\n'}.\r\n`)
    const data = (await c.reply(15_000)) as string
    c.send('QUIT')
    return data
  } finally {
    c.close()
  }
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await probe()
    if (v) return v
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function messages(api: Api, mailbox: string, folder = 'inbox'): Promise<any[]> {
  const r = await api.get(`/v1/messages?mailbox=${mailbox}&folder=${folder}&limit=100`)
  assert.equal(r.status, 200, r.text)
  return r.body.data
}

/** The newest forward queued by A for the given alias. */
async function forwardOf(s: TestServer, via: string): Promise<{ id: string; dsn_to: string | null }> {
  const rows = await s.postern.store.db
    .selectFrom('outbound_messages')
    .select(['id', 'dsn_to', 'headers_json'])
    .where('origin', '=', 'forward')
    .orderBy('created_at', 'desc')
    .execute()
  const row = rows.find((r) => JSON.parse(r.headers_json as string).forwarded_for === via)
  assert.ok(row, `no forward for ${via}`)
  return row
}

for (const dialect of DIALECTS) {
  describe(`forward trust and bounces (${dialect})`, () => {
    let dns: DnsServer
    let a: TestServer
    let b: TestServer
    let aApi: Api
    let bApi: Api
    let bAnn: string
    before(async () => {
      dns = await startDnsServer({})
      b = await startTestServer(dialect, {
        dns,
        env: { POSTERN_HOSTNAME: 'mx.b.example', POSTERN_SMTP_ARC_TRUSTED_SEALERS: 'a.example' },
      })
      const bOrg = await hostedOrg(b, 'b.example')
      bApi = bOrg.api
      bAnn = bOrg.ann
      dns.set('mx.b.example', 'A', ['127.0.0.1'])
      // ann@b.example's own mail reaches A unsigned: b.example asks for nothing (p=none).
      dns.set('_dmarc.b.example', 'TXT', [['v=DMARC1; p=none']])
      a = await startTestServer(dialect, {
        dns,
        env: {
          POSTERN_HOSTNAME: 'mx.a.example',
          POSTERN_OUTBOUND_MX_PORT: String(mxPort(b)),
          POSTERN_OUTBOUND_POLL_MS: '50',
          POSTERN_OUTBOUND_RETRY_INTERVALS: '200ms,400ms',
        },
      })
      const aOrg = await hostedOrg(a, 'a.example')
      aApi = aOrg.api
      await verifiedDomain(aApi, dns, 'a2.example')
      dns.set('mx.a.example', 'A', ['127.0.0.1'])
      for (const [address, target] of [
        ['trusted@a.example', 'ann@b.example'],
        ['untrusted@a2.example', 'ann@b.example'],
        ['nowhere@a.example', 'nobody@b.example'],
        ['nowhere2@a.example', 'nobody2@b.example'],
      ]) {
        const r = await aApi.post('/v1/aliases', { address, targets: [target] })
        assert.equal(r.status, 201, r.text)
      }
      // strict.example: p=reject, SPF for 127.0.0.1; its mail is sent unsigned, so only SPF
      // (which forwarding breaks) authenticates it.
      senderDomain(dns, 'strict.example', 'reject')
    })
    after(async () => {
      await a?.close()
      await b?.close()
      await dns?.close()
    })

    it("a trusted sealer's ARC lifts the DMARC policy: filed in the inbox, the override in its summary", async () => {
      const body = mail({ from: 'ceo@strict.example', to: 'trusted@a.example', subject: 'Via trusted' })
      assert.match(await smtpSend(mxPort(a), 'ceo@strict.example', 'trusted@a.example', body), /^250/)
      const m = await until('the trusted forward at B', async () =>
        (await messages(bApi, bAnn)).find((x) => x.subject === 'Via trusted'),
      )
      const full = await bApi.get(`/v1/messages/${m.id}`)
      assert.equal(full.status, 200, full.text)
      const summary = full.body.auth_results as string
      assert.match(summary, /dmarc=fail/, summary)
      assert.match(summary, /arc=pass/, summary)
      assert.match(summary, /trusted sealer a\.example/, summary)
      assert.ok(!(full.body.folders ?? []).some((f: { role?: string }) => f.role === 'junk'))
    })

    it('a sealer not trusted: the DMARC policy applies (B refuses, the forward bounces)', async () => {
      const body = mail({ from: 'ceo@strict.example', to: 'untrusted@a2.example', subject: 'Via untrusted' })
      assert.match(await smtpSend(mxPort(a), 'ceo@strict.example', 'untrusted@a2.example', body), /^250/)
      const f = await forwardOf(a, 'untrusted@a2.example')
      const e = await waitForEmail(aApi, f.id, (x) => x.recipients[0].state === 'bounced')
      assert.equal(e.recipients[0].last_code, 550)
      assert.match(e.recipients[0].last_response ?? '', /DMARC/)
      assert.ok(!(await messages(bApi, bAnn)).some((x) => x.subject === 'Via untrusted'))
    })

    it("a forward refused with 5xx bounces to the original sender, from <>; a null sender's is dropped", async () => {
      const body = mail({ from: 'ann@b.example', to: 'nowhere@a.example', subject: 'Lost in forwarding' })
      assert.match(await smtpSend(mxPort(a), 'ann@b.example', 'nowhere@a.example', body), /^250/)
      const f = await forwardOf(a, 'nowhere@a.example')
      assert.equal(f.dsn_to, 'ann@b.example')
      await waitForEmail(aApi, f.id, (x) => x.recipients[0].state === 'bounced')
      const dsn = await until('the bounce at ann@b.example', async () =>
        // The notice's From (postern@mx.a.example) is unsigned here, so B may file it in Junk.
        [...(await messages(bApi, bAnn)), ...(await messages(bApi, bAnn, 'junk'))].find(
          (x) => x.subject === 'Undelivered Mail Returned to Sender',
        ),
      )
      const raw = await bApi.get(`/v1/messages/${dsn.id}/raw`)
      assert.match(raw.text, /multipart\/report/i)
      assert.match(raw.text, /Final-Recipient: rfc822; ?nobody@b\.example/i)
      assert.match(raw.text, /Status: 5\.1\.1/)
      const env = await b.postern.store.db
        .selectFrom('messages')
        .select('envelope')
        .where('id', '=', dsn.id)
        .executeTakeFirstOrThrow()
      assert.equal(JSON.parse(env.envelope as string).mail_from, '')

      // The same from the null sender (another target: the first is suppressed after its bounce):
      // no notice is queued for its failure.
      const nul = mail({ from: 'mailer-daemon@b.example', to: 'nowhere2@a.example', subject: 'Null bounce' })
      assert.match(await smtpSend(mxPort(a), '', 'nowhere2@a.example', nul), /^250/)
      const g = await forwardOf(a, 'nowhere2@a.example')
      assert.notEqual(g.id, f.id)
      assert.equal(g.dsn_to, null)
      await waitForEmail(aApi, g.id, (x) => x.recipients[0].state === 'bounced')
      const notices = await a.postern.store.db
        .selectFrom('outbound_messages')
        .select(['id', 'tags'])
        .where('origin', '=', 'system')
        .execute()
      assert.ok(!notices.some((n) => JSON.parse(n.tags as string).email_id === g.id))
      assert.equal(notices.filter((n) => JSON.parse(n.tags as string).email_id === f.id).length, 1)
    })
  })
}
