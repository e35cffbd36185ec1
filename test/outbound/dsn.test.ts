// DSN (RFC 3461/3464) and SMTPUTF8 (RFC 6531) semantics of mail a client submits on 587,
// end to end: raw SMTP submission with AUTH, the queue, two receiving MX servers on one port
// (Postern's own SMTP server on 127.0.0.1, which offers DSN and SMTPUTF8, and a scripted one on
// 127.0.0.2 that offers neither), found through MX records in the loopback DNS; notices land
// in the sender's own INBOX (a mailbox here) and are read back over the API.
// Covered: NOTIFY/ORCPT/RET/ENVID relayed to a DSN hop (and none of them to the plain hop),
// relayed/delivered/delayed/failed notices, RET=HDRS and full returns, NOTIFY=NEVER, the
// default NOTIFY (failure only), a next hop's success report passed on, and 553 5.6.7.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type Dsn, parseDsn } from '../../src/mail/reports.ts'
import type { RcptTo } from '../../src/smtp/handler.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type ImapFixture, imapFixture, PASSWORD } from '../imap/helpers.ts'
import { fakeHandler, RawClient, startSmtp, type TestSmtp } from '../smtp/helpers.ts'
import { basic, type Scripted, scripted } from '../smtp/scripted-server.ts'
import { mxPort, waitForEmail } from './helpers.ts'

const DSN_HOP = 'dsn.example' // MX on 127.0.0.1: Postern's SMTP server (DSN, SMTPUTF8)
const PLAIN_HOP = 'plain.example' // MX on 127.0.0.2: no DSN, no SMTPUTF8

/** The DSN hop: `gone-*` is 550 5.1.1, `temp-*` always 451 4.2.0, anything else accepted. */
function dsnHopHandler() {
  return fakeHandler({
    rcpt: async (to: RcptTo) => {
      const local = to.address.split('@')[0] as string
      if (local.startsWith('gone-')) return { code: 550, enhanced: '5.1.1', message: 'No such user' }
      if (local.startsWith('temp-')) return { code: 451, enhanced: '4.2.0', message: 'Mailbox busy' }
      return null
    },
  })
}

const submissionPort = (f: ImapFixture) =>
  f.s.postern.listeners.find((l) => l.name === 'smtp-submission')?.port as number

interface Submit {
  mail?: string
  rcpts: string[]
  body?: string
  subject: string
  extraHeader?: string
}

for (const dialect of DIALECTS) {
  describe(`DSN and SMTPUTF8 for submitted mail (${dialect})`, () => {
    let f: ImapFixture
    let hop: TestSmtp
    let plain: Scripted
    before(async () => {
      hop = await startSmtp({ handler: dsnHopHandler() })
      plain = await scripted(basic(['PIPELINING', '8BITMIME', 'SIZE 10000000']), undefined, {
        host: '127.0.0.2',
        port: hop.port,
      })
      f = await imapFixture(dialect, {
        env: {
          POSTERN_OUTBOUND_MX_PORT: String(hop.port),
          POSTERN_OUTBOUND_POLL_MS: '50',
          POSTERN_OUTBOUND_RETRY_INTERVALS: '300ms',
          POSTERN_OUTBOUND_DELAY_NOTICE_SECONDS: '1',
          POSTERN_OUTBOUND_LIFETIME_SECONDS: '5',
        },
      })
      f.s.dns.set(DSN_HOP, 'MX', [{ priority: 10, exchange: `mx.${DSN_HOP}` }])
      f.s.dns.set(`mx.${DSN_HOP}`, 'A', ['127.0.0.1'])
      f.s.dns.set(PLAIN_HOP, 'MX', [{ priority: 10, exchange: `mx.${PLAIN_HOP}` }])
      f.s.dns.set(`mx.${PLAIN_HOP}`, 'A', ['127.0.0.2'])
    })
    after(async () => {
      await f?.close()
      await hop?.close()
      await plain?.close()
    })

    /** Submits over 587 with AUTH PLAIN (loopback may before TLS); resolves with the email id. */
    async function submit(s: Submit): Promise<string> {
      const c = await RawClient.greeted(submissionPort(f))
      try {
        await c.cmd('EHLO client.example', '250')
        const auth = Buffer.from(`\0${f.ann.address}\0${PASSWORD}`).toString('base64')
        await c.cmd(`AUTH PLAIN ${auth}`, '235')
        await c.cmd(`MAIL FROM:<${f.ann.address}>${s.mail ? ` ${s.mail}` : ''}`, '250')
        for (const r of s.rcpts) await c.cmd(`RCPT TO:${r}`, '250')
        await c.cmd('DATA', '354')
        const to = s.rcpts.map((r) => r.replace(/ .*$/, '')).join(', ')
        c.socket.write(
          Buffer.from(
            `From: Ann <${f.ann.address}>\r\nTo: ${to}\r\nSubject: ${s.subject}\r\n${s.extraHeader ?? ''}\r\n${s.body ?? 'The body line of the message.'}\r\n.\r\n`,
            'utf8',
          ),
        )
        const queued = await c.expect('250 2.0.0 Queued as ')
        await c.cmd('QUIT', '221')
        return queued.slice('250 2.0.0 Queued as '.length).trim()
      } finally {
        c.socket.destroy()
      }
    }

    /** Every notice in Ann's INBOX: its raw text, the parsed report and its envelope sender. */
    async function notices(): Promise<{ raw: string; dsn: Dsn; envelopeFrom: string | null }[]> {
      const list = await f.api.get(`/v1/messages?mailbox=${f.ann.id}&limit=100`)
      assert.equal(list.status, 200, list.text)
      const out: { raw: string; dsn: Dsn; envelopeFrom: string | null }[] = []
      for (const m of list.body.data as { id: string }[]) {
        const raw = await f.api.get(`/v1/messages/${m.id}/raw`)
        const dsn = await parseDsn(Buffer.from(raw.text, 'utf8'))
        if (!dsn) continue
        const one = await f.api.get(`/v1/messages/${m.id}`)
        out.push({ raw: raw.text, dsn, envelopeFrom: one.body.envelope_from })
      }
      return out
    }

    /** Waits for the notices whose Original-Envelope-Id is `envid` to number `n`. */
    async function noticesFor(envid: string, n: number, ms = 15_000) {
      const until = Date.now() + ms
      let got: Awaited<ReturnType<typeof notices>> = []
      while (Date.now() < until) {
        got = (await notices()).filter((x) => x.dsn.envelopeId === envid)
        if (got.length >= n) return got
        await new Promise((r) => setTimeout(r, 100))
      }
      assert.fail(`expected ${n} notices for ${envid}, got ${got.length}`)
    }

    it('relays NOTIFY, ORCPT, RET and ENVID to a next hop that offers DSN, and sends no notice itself', async () => {
      const id = await submit({
        mail: 'RET=HDRS ENVID=relay+2B1',
        rcpts: [`<bob@${DSN_HOP}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Bbob@${DSN_HOP}`],
        subject: 'Relayed with DSN',
      })
      const e = await waitForEmail(f.api, id, (x) => x.status === 'sent')
      assert.equal(e.recipients[0].state, 'delivered')
      const mail = hop.handler.calls.flatMap((c) =>
        c.kind === 'mail' && c.from.address.includes(id) ? [c.from] : [],
      )
      assert.equal(mail.length, 1)
      assert.deepEqual([mail[0]?.ret, mail[0]?.envid], ['HDRS', 'relay+1'])
      const rcpt = hop.handler.calls.flatMap((c) =>
        c.kind === 'rcpt' && c.from.address.includes(id) ? [c.to] : [],
      )
      assert.deepEqual(rcpt, [
        { address: `bob@${DSN_HOP}`, notify: ['SUCCESS', 'FAILURE'], orcpt: `rfc822;orig+bob@${DSN_HOP}` },
      ])

      // The hop reports success itself, to the signed return path: Postern passes that on.
      const returnPath = mail[0]?.address as string
      const mx = await RawClient.greeted(mxPort(f.s))
      await mx.cmd('EHLO mx.dsn.example', '250')
      await mx.cmd('MAIL FROM:<>', '250')
      await mx.cmd(`RCPT TO:<${returnPath}>`, '250')
      await mx.cmd('DATA', '354')
      mx.write(
        [
          'From: MAILER-DAEMON@mx.dsn.example',
          `To: ${returnPath}`,
          'Subject: Successful Mail Delivery Report',
          'MIME-Version: 1.0',
          'Content-Type: multipart/report; report-type=delivery-status; boundary="r1"',
          '',
          '--r1',
          'Content-Type: text/plain',
          '',
          'Delivered.',
          '--r1',
          'Content-Type: message/delivery-status',
          '',
          'Reporting-MTA: dns; mx.dsn.example',
          'Original-Envelope-Id: relay+1',
          '',
          `Final-Recipient: rfc822; bob@${DSN_HOP}`,
          'Action: delivered',
          'Status: 2.0.0',
          'Diagnostic-Code: smtp; 250 2.0.0 delivered to mailbox',
          '',
          '--r1--',
          '.',
          '',
        ].join('\r\n'),
      )
      await mx.expect('250')
      mx.socket.destroy()
      const [passed] = await noticesFor('relay+1', 1)
      assert.equal(passed?.dsn.recipients[0]?.action, 'delivered')
      assert.equal(passed?.dsn.recipients[0]?.remoteMta, 'mx.dsn.example')
      assert.match(passed?.raw ?? '', /^Diagnostic-Code: smtp; 250 2\.0\.0 delivered to mailbox\r$/m)
      // Exactly one: the relay itself (to a DSN hop) gave no notice of Postern's own.
      assert.equal((await noticesFor('relay+1', 1)).length, 1)
    })

    it('sends a "relayed" notice for NOTIFY=SUCCESS when the next hop has no DSN, and no DSN parameters to it', async () => {
      const id = await submit({
        mail: 'ENVID=plain-1 RET=FULL',
        rcpts: [`<carol@${PLAIN_HOP}> NOTIFY=SUCCESS ORCPT=rfc822;carol@${PLAIN_HOP}`],
        subject: 'Relayed without DSN',
      })
      await waitForEmail(f.api, id, (x) => x.status === 'sent')
      const session = plain.sessions.find((s) => s.some((l) => l.includes(id))) as string[]
      const mail = session.find((l) => l.startsWith('MAIL FROM:')) as string
      const rcpt = session.find((l) => l.startsWith('RCPT TO:')) as string
      assert.doesNotMatch(mail, /RET=|ENVID=/)
      assert.equal(rcpt, `RCPT TO:<carol@${PLAIN_HOP}>`)

      const [n] = await noticesFor('plain-1', 1)
      const r = n?.dsn.recipients[0]
      assert.deepEqual(
        [r?.action, r?.status, r?.finalRecipient, r?.originalRecipient, r?.remoteMta],
        ['relayed', '2.0.0', `carol@${PLAIN_HOP}`, `carol@${PLAIN_HOP}`, `mx.${PLAIN_HOP}`],
      )
      const raw = n?.raw ?? ''
      assert.equal(n?.envelopeFrom, '', 'sent from the null reverse path')
      assert.match(raw, /^Auto-Submitted: auto-replied\r$/m)
      assert.match(raw, /^Subject: Successful Mail Delivery Report/m)
      // A success notice returns only the header section, even with RET=FULL.
      assert.match(raw, /Content-Type: text\/rfc822-headers/)
      assert.match(raw, /Subject: Relayed without DSN/)
      assert.doesNotMatch(raw, /The body line of the message/)
    })

    it('sends a "delivered" notice for NOTIFY=SUCCESS delivered into a mailbox here', async () => {
      await submit({
        mail: 'ENVID=local-1',
        rcpts: [`<${f.bob.address}> NOTIFY=SUCCESS`],
        subject: 'To Bob',
      })
      const [n] = await noticesFor('local-1', 1)
      assert.deepEqual(
        [n?.dsn.recipients[0]?.action, n?.dsn.recipients[0]?.finalRecipient, n?.dsn.reportingMta],
        ['delivered', f.bob.address, 'mx.postern.test'],
      )
    })

    it('bounces with the whole message, or only its headers with RET=HDRS; NOTIFY=NEVER gets none', async () => {
      const never = await submit({
        mail: 'ENVID=never-1',
        rcpts: [`<gone-never@${DSN_HOP}> NOTIFY=NEVER`],
        subject: 'Never tell',
      })
      await waitForEmail(f.api, never, (x) => x.status === 'failed')
      const hdrs = await submit({
        mail: 'RET=HDRS ENVID=hdrs-1',
        rcpts: [`<gone-1@${DSN_HOP}>`],
        subject: 'Headers only back',
      })
      const full = await submit({
        mail: 'ENVID=full-1',
        rcpts: [`<gone-2@${DSN_HOP}> NOTIFY=FAILURE ORCPT=rfc822;gone-2@${DSN_HOP}`],
        subject: 'All of it back',
      })
      for (const id of [hdrs, full]) await waitForEmail(f.api, id, (x) => x.status === 'failed')

      const [h] = await noticesFor('hdrs-1', 1)
      const hr = h?.dsn.recipients[0]
      assert.deepEqual([hr?.action, hr?.status, hr?.finalRecipient], ['failed', '5.1.1', `gone-1@${DSN_HOP}`])
      assert.match(h?.raw ?? '', /Diagnostic-Code: smtp; 550 5\.1\.1 No such user/)
      assert.match(h?.raw ?? '', /^Subject: Undelivered Mail Returned to Sender/m)
      assert.match(h?.raw ?? '', /Content-Type: text\/rfc822-headers/)
      assert.match(h?.raw ?? '', /Subject: Headers only back/)
      assert.doesNotMatch(h?.raw ?? '', /The body line of the message/)

      const [fl] = await noticesFor('full-1', 1)
      assert.equal(fl?.dsn.recipients[0]?.originalRecipient, `gone-2@${DSN_HOP}`)
      assert.match(fl?.raw ?? '', /Content-Type: message\/rfc822/)
      assert.match(fl?.raw ?? '', /Subject: All of it back[\s\S]*The body line of the message/)
      assert.match(fl?.raw ?? '', /^DKIM-Signature: /m, 'the message as it was sent, signature and all')

      // The NOTIFY=NEVER bounce was recorded (state, event) but mailed to nobody: the two
      // later bounces arrived, and none for it.
      assert.equal((await notices()).filter((x) => x.dsn.envelopeId === 'never-1').length, 0)
      const e = await waitForEmail(f.api, never, (x) => x.recipients[0].state === 'bounced')
      assert.equal(e.recipients[0].last_enhanced_code, '5.1.1')
    })

    it('fails a UTF-8 address meeting a next hop without SMTPUTF8 with 553 5.6.7; ASCII recipients still go', async () => {
      const id = await submit({
        mail: 'SMTPUTF8 ENVID=utf8-1',
        rcpts: [`<j\u00f6rg@${PLAIN_HOP}>`, `<dave@${PLAIN_HOP}>`],
        subject: 'Gr\u00fc\u00dfe',
      })
      const e = await waitForEmail(f.api, id, (x) => x.status === 'sent')
      const by = Object.fromEntries(e.recipients.map((r: { address: string }) => [r.address, r]))
      assert.equal(by[`j\u00f6rg@${PLAIN_HOP}`].state, 'bounced')
      assert.deepEqual(
        [by[`j\u00f6rg@${PLAIN_HOP}`].last_code, by[`j\u00f6rg@${PLAIN_HOP}`].last_enhanced_code],
        [553, '5.6.7'],
      )
      assert.equal(by[`dave@${PLAIN_HOP}`].state, 'delivered')
      const session = plain.sessions.find((s) => s.some((l) => l.includes(id))) as string[]
      assert.ok(!session.some((l) => l.includes('j\u00f6rg')), 'the UTF-8 address never went on the wire')
      assert.ok(!session.some((l) => l.includes('SMTPUTF8')))

      const [n] = await noticesFor('utf8-1', 1)
      assert.match(n?.raw ?? '', /multipart\/report; report-type=global-delivery-status/)
      const r = n?.dsn.recipients[0]
      assert.deepEqual([r?.action, r?.status], ['failed', '5.6.7'])
      assert.equal(r?.finalRecipient, `j\u00f6rg@${PLAIN_HOP}`)
      assert.match(r?.diagnosticCode ?? '', /^553 5\.6\.7 /)
      assert.equal(n?.dsn.recipients.length, 1, 'dave was delivered and asked for no success notice')
    })

    it('sends one delay notice per recipient that asked (NOTIFY=DELAY), then the failure when it expires', async () => {
      const id = await submit({
        mail: 'ENVID=delay-1',
        rcpts: [`<temp-a@${DSN_HOP}> NOTIFY=DELAY,FAILURE`, `<temp-b@${DSN_HOP}>`],
        subject: 'Slow one',
      })
      const [d] = await noticesFor('delay-1', 1)
      assert.equal(d?.dsn.recipients.length, 1, 'only temp-a asked for delay notices')
      const dr = d?.dsn.recipients[0]
      assert.deepEqual(
        [dr?.action, dr?.status, dr?.finalRecipient],
        ['delayed', '4.2.0', `temp-a@${DSN_HOP}`],
      )
      assert.match(d?.raw ?? '', /^Will-Retry-Until: /m)
      assert.match(d?.raw ?? '', /^Subject: Delayed Mail/m)
      assert.match(d?.raw ?? '', /Content-Type: text\/rfc822-headers/)

      await waitForEmail(f.api, id, (x) => x.status === 'failed', 20_000)
      const all = await noticesFor('delay-1', 2)
      assert.equal(all.length, 2, 'one delay notice, however many retries, then one failure')
      const failed = all.find((x) => x.dsn.recipients.every((r) => r.action === 'failed'))
      assert.deepEqual(failed?.dsn.recipients.map((r) => [r.finalRecipient, r.status]).sort(), [
        [`temp-a@${DSN_HOP}`, '5.4.7'],
        [`temp-b@${DSN_HOP}`, '5.4.7'],
      ])
    })
  })
}
