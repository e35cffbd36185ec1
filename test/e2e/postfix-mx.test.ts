// A mail client's message through Postern to a real receiving MX, Debian's Postfix: nodemailer
// submits over 587 with STARTTLS and AUTH, Postern signs it and finds Postfix through the
// loopback DNS (MX pf.example -> mx.pf.example -> 127.0.0.1, outbound.mx_port = Postfix's
// port), Postfix delivers it into a Maildir. The delivered file's DKIM signatures are checked
// by python3-dkim (an independent verifier). Postfix offers DSN, so the client's NOTIFY, ORCPT,
// RET and ENVID go to it and Postfix reports the delivery itself: its success DSN goes to the
// signed return path (Postfix's transport map sends hosted.example back to Postern's MX port),
// and Postern passes it on to the client's mailbox. Postfix runs as a private instance
// (test/helpers/postfix.ts), skipped outside CI when it is missing (test/helpers/tools.ts).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import nodemailer from 'nodemailer'
import { parseDsn } from '../../src/mail/reports.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { freePort, type PostfixMx, startPostfix } from '../helpers/postfix.ts'
import { needs, TOOLS } from '../helpers/tools.ts'
import { type ImapFixture, imapFixture, PASSWORD } from '../imap/helpers.ts'
import { mxPort, pythonDkimVerify, waitForEmail } from '../outbound/helpers.ts'

const PF = 'pf.example'

async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined> | T | null, ms = 20_000) {
  const until = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

for (const dialect of DIALECTS) {
  describe(`Postfix as the receiving MX (${dialect})`, needs(TOOLS.postfix, TOOLS.python3Dkim), () => {
    let f: ImapFixture
    let pf: PostfixMx
    before(async () => {
      const port = await freePort()
      f = await imapFixture(dialect, {
        env: { POSTERN_OUTBOUND_MX_PORT: String(port), POSTERN_OUTBOUND_POLL_MS: '50' },
      })
      f.s.dns.set(PF, 'MX', [{ priority: 10, exchange: `mx.${PF}` }])
      f.s.dns.set(`mx.${PF}`, 'A', ['127.0.0.1'])
      pf = await startPostfix({
        port,
        hostname: `mx.${PF}`,
        domains: [PF],
        mailboxes: [`carol@${PF}`],
        transports: { [f.domain]: `[127.0.0.1]:${mxPort(f.s)}` },
      })
    })
    after(async () => {
      await pf?.stop()
      await f?.close()
    })

    it('delivers a submitted message DKIM-signed, relays the DSN request, and passes on Postfix’s report', async () => {
      const submission = f.s.postern.listeners.find((l) => l.name === 'smtp-submission')?.port as number
      const client = nodemailer.createTransport({
        host: '127.0.0.1',
        port: submission,
        secure: false,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: f.ann.address, pass: PASSWORD },
      })
      const info = await client.sendMail({
        from: `Ann <${f.ann.address}>`,
        to: `carol@${PF}`,
        subject: 'Through Postern to Postfix',
        text: 'Hello Carol, this went through two mail servers.',
        dsn: {
          id: 'pf-envid-1',
          return: 'headers',
          notify: ['success', 'failure'],
          recipient: `carol@${PF}`,
        },
      })
      client.close()
      const id = /Queued as (eml_\S+)/.exec(info.response)?.[1] as string
      assert.ok(id, info.response)
      const e = await waitForEmail(f.api, id, (x) => x.status === 'sent', 30_000)
      assert.equal(e.recipients[0].state, 'delivered')
      assert.equal(e.recipients[0].remote_mta, `mx.${PF}`)

      const [file] = await waitFor('the Maildir file', () => {
        const d = pf.delivered(`carol@${PF}`)
        return d.length ? d : null
      })
      const text = (file as Buffer).toString('utf8')
      assert.match(text, /^Subject: Through Postern to Postfix$/m)
      assert.match(text, /Hello Carol, this went through two mail servers\./)
      // Maildir files have Unix line ends; DKIM is over the message as it travels (CRLF).
      const wire = Buffer.from((file as Buffer).toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1')
      const py = await pythonDkimVerify(wire, f.s.dns.port)
      assert.equal(py.code, 0, py.out)
      assert.match(py.out, /0 pass\n1 pass/, 'both signatures (RSA and Ed25519) verify after Postfix')

      // Postfix took the DSN request (it logs the success notice it sends back) ...
      await waitFor('Postfix success notice', () =>
        /sender delivery status notification/.test(pf.log()) ? true : null,
      )
      // ... and Postern passed that report on to Ann, in place of a notice of its own.
      const notice = await waitFor('the passed-on notice in Ann’s INBOX', async () => {
        const list = await f.api.get(`/v1/messages?mailbox=${f.ann.id}`)
        for (const m of list.body.data as { id: string }[]) {
          const raw = await f.api.get(`/v1/messages/${m.id}/raw`)
          const dsn = await parseDsn(Buffer.from(raw.text, 'utf8'))
          if (dsn) return { dsn, raw: raw.text }
        }
        return null
      })
      assert.equal(notice.dsn.envelopeId, 'pf-envid-1', 'ENVID went to Postfix and came back')
      const r = notice.dsn.recipients[0]
      assert.deepEqual(
        [r?.action, r?.finalRecipient, r?.originalRecipient, r?.remoteMta],
        ['delivered', `carol@${PF}`, `carol@${PF}`, `mx.${PF}`],
      )
      assert.match(notice.raw, /Content-Type: text\/rfc822-headers/)
      assert.doesNotMatch(notice.raw, /Hello Carol/, 'no body returned in a success notice')
    })
  })
}
