// SMTP submission with real clients: nodemailer over STARTTLS (587) and implicit TLS (465),
// Python's smtplib; the message is queued, DKIM-signed, delivered (here to another hosted
// mailbox) and copied to the sender's Sent folder. Refusals: no AUTH before MAIL, a wrong
// password, a From the mailbox does not own, plain-text AUTH off the trusted addresses, and
// never AUTH on the MX port.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { connect } from 'node:net'
import { describe, it } from 'node:test'
import nodemailer from 'nodemailer'
import { DIALECTS } from '../helpers/dialects.ts'
import { needs, requireTool, TOOLS } from '../helpers/tools.ts'
import { type ImapFixture, imapFixture, PASSWORD, RawImap } from '../imap/helpers.ts'

const port = (f: ImapFixture, name: string) => {
  const l = f.s.postern.listeners.find((x) => x.name === name)
  if (!l) throw new Error(`no ${name} listener`)
  return l.port
}

function transport(f: ImapFixture, implicit: boolean, user = f.ann.address, pass = PASSWORD) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port: port(f, implicit ? 'smtp-submissions' : 'smtp-submission'),
    secure: implicit,
    requireTLS: !implicit,
    tls: { rejectUnauthorized: false },
    auth: { user, pass },
  })
}

async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** A raw SMTP exchange: each line sent after the previous reply; returns the replies. */
async function dialogue(p: number, lines: string[]): Promise<string[]> {
  const sock = connect(p, '127.0.0.1')
  let buf = ''
  const replies: string[] = []
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no reply; have ${JSON.stringify(buf)}`)), 5000)
      const check = () => {
        const m = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(buf)
        if (m) {
          const end = (m.index ?? 0) + m[0].length
          const r = buf.slice(0, end)
          buf = buf.slice(end)
          clearTimeout(t)
          sock.off('data', onData)
          resolve(r)
        }
      }
      const onData = (d: Buffer) => {
        buf += d.toString('latin1')
        check()
      }
      sock.on('data', onData)
      check()
    })
  replies.push(await next())
  for (const line of lines) {
    sock.write(`${line}\r\n`)
    replies.push(await next())
  }
  sock.destroy()
  return replies
}

for (const dialect of DIALECTS) {
  describe(`SMTP submission (${dialect})`, () => {
    it('takes mail from nodemailer on 587 and 465, delivers it and files it in Sent', async () => {
      const f = await imapFixture(dialect)
      try {
        for (const implicit of [false, true]) {
          const t = transport(f, implicit)
          const info = await t.sendMail({
            from: `Ann <${f.ann.address}>`,
            to: f.bob.address,
            subject: `Submitted ${implicit ? '465' : '587'}`,
            text: 'Hello Bob, from a mail client.',
          })
          assert.match(info.response, /^250 2\.0\.0 Queued as eml_/)
          t.close()
        }
        const inbox = await waitFor('delivery to bob', async () => {
          const r = await f.api.get(`/v1/messages?mailbox=${f.bob.id}`)
          return r.body.data?.length === 2 ? r.body.data : null
        })
        assert.deepEqual(inbox.map((m: { subject: string }) => m.subject).sort(), [
          'Submitted 465',
          'Submitted 587',
        ])
        const raw = await f.api.get(`/v1/messages/${inbox[0].id}/raw`)
        assert.match(raw.text, /^DKIM-Signature: /m, 'signed on the way out')
        assert.match(raw.text, /^Message-ID: </m)
        const sent = await f.api.get(`/v1/messages?mailbox=${f.ann.id}&folder=sent`)
        assert.equal(sent.body.data.length, 2, 'a copy of each in Sent')
        const emails = await f.api.get('/v1/emails')
        assert.ok(emails.body.data.length >= 2)
      } finally {
        await f.close()
      }
    })

    it('files no Sent copy when the mailbox turned save_sent_copy off; the client may APPEND its own', async () => {
      const f = await imapFixture(dialect)
      try {
        const off = await f.api.patch(`/v1/mailboxes/${f.ann.id}`, { save_sent_copy: false })
        assert.equal(off.status, 200, off.text)
        assert.equal(off.body.save_sent_copy, false)
        assert.equal((await f.api.get(`/v1/mailboxes/${f.ann.id}`)).body.save_sent_copy, false)
        const raw = `From: ${f.ann.address}\r\nTo: ${f.bob.address}\r\nSubject: Own copy\r\nMessage-ID: <own-1@hosted.example>\r\n\r\nHi\r\n`
        const t = transport(f, false)
        await t.sendMail({ envelope: { from: f.ann.address, to: [f.bob.address] }, raw })
        t.close()
        await waitFor('delivery to bob', async () => {
          const r = await f.api.get(`/v1/messages?mailbox=${f.bob.id}`)
          return r.body.data?.length === 1 ? r.body.data : null
        })
        const sent = await f.api.get(`/v1/messages?mailbox=${f.ann.id}&folder=sent`)
        assert.deepEqual(sent.body.data, [], 'no copy filed by submission')
        // The client's own APPEND is then the one copy.
        const { c } = await RawImap.open(f.imapPort)
        await c.login(f.ann.address)
        c.write(`a1 APPEND Sent (\\Seen) {${raw.length}+}\r\n${raw}\r\n`)
        assert.match(await c.until('a1'), /^a1 OK \[APPENDUID \d+ 1\] /)
        assert.match(await c.cmd('s1', 'STATUS Sent (MESSAGES)'), /MESSAGES 1\)/)
        c.close()
        // Turned back on, the next submission is filed again.
        await f.api.patch(`/v1/mailboxes/${f.ann.id}`, { save_sent_copy: true })
        const t2 = transport(f, false)
        await t2.sendMail({ from: f.ann.address, to: f.bob.address, subject: 'Filed again', text: 'x' })
        t2.close()
        const again = await f.api.get(`/v1/messages?mailbox=${f.ann.id}&folder=sent`)
        assert.deepEqual(again.body.data.map((m: { subject: string }) => m.subject).sort(), [
          'Filed again',
          'Own copy',
        ])
      } finally {
        await f.close()
      }
    })

    it('does not store twice the Sent copy a client APPENDs after submitting', async () => {
      const f = await imapFixture(dialect)
      try {
        const raw = `From: ${f.ann.address}\r\nTo: ${f.bob.address}\r\nSubject: Once\r\nMessage-ID: <once-1@hosted.example>\r\n\r\nHi\r\n`
        const t = transport(f, false)
        await t.sendMail({ envelope: { from: f.ann.address, to: [f.bob.address] }, raw })
        t.close()
        const { c } = await RawImap.open(f.imapPort)
        await c.login(f.ann.address)
        const before = await c.cmd('s1', 'STATUS Sent (MESSAGES UIDNEXT)')
        assert.match(before, /MESSAGES 1 UIDNEXT 2/)
        c.write(`a1 APPEND Sent (\\Seen) {${raw.length}+}\r\n${raw}\r\n`)
        assert.match(
          await c.until('a1'),
          /^a1 OK \[APPENDUID \d+ 1\] /,
          'the copy already there is the answer',
        )
        assert.match(await c.cmd('s2', 'STATUS Sent (MESSAGES)'), /MESSAGES 1\)/)
        c.close()
      } finally {
        await f.close()
      }
    })

    it('refuses without AUTH, with a wrong password and for a From the mailbox does not own', async () => {
      const f = await imapFixture(dialect)
      try {
        const p587 = port(f, 'smtp-submission')
        const r = await dialogue(p587, ['EHLO client.example', `MAIL FROM:<${f.ann.address}>`])
        assert.match(
          r[1] as string,
          /250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n$/,
          'loopback may use AUTH before TLS',
        )
        assert.match(r[2] as string, /^530 5\.7\.0 Authentication required/)
        await assert.rejects(
          transport(f, false, f.ann.address, 'wrong-password-here').sendMail({
            from: f.ann.address,
            to: f.bob.address,
            subject: 'x',
            text: 'x',
          }),
          (err: { responseCode?: number }) => err.responseCode === 535,
        )
        await assert.rejects(
          transport(f, false).sendMail({ from: f.bob.address, to: f.bob.address, subject: 'x', text: 'x' }),
          (err: { responseCode?: number }) => err.responseCode === 553,
        )
        // The envelope is the mailbox's, the From header someone else's.
        await assert.rejects(
          transport(f, false).sendMail({
            envelope: { from: f.ann.address, to: [f.bob.address] },
            from: f.bob.address,
            to: f.bob.address,
            subject: 'x',
            text: 'x',
          }),
          (err: { responseCode?: number; response?: string }) =>
            err.responseCode === 553 && /may not send as/.test(err.response ?? ''),
        )
        const mx = await dialogue(port(f, 'smtp-mx'), ['EHLO client.example', 'AUTH PLAIN AGFAYg=='])
        assert.doesNotMatch(mx[1] as string, /AUTH/)
        assert.match(mx[2] as string, /^502 5\.5\.1 /)
      } finally {
        await f.close()
      }
    })

    it('offers AUTH only after STARTTLS to addresses not trusted for plain text', async () => {
      const f = await imapFixture(dialect, { env: { POSTERN_AUTH_PLAINTEXT_ALLOWED_FROM: '192.0.2.0/24' } })
      try {
        const r = await dialogue(port(f, 'smtp-submission'), ['EHLO client.example', 'AUTH PLAIN AGFAYg=='])
        assert.doesNotMatch(r[1] as string, /AUTH/)
        assert.match(r[2] as string, /^538 5\.7\.11 /)
        const t = transport(f, false)
        await t.sendMail({ from: f.ann.address, to: f.bob.address, subject: 'After TLS', text: 'ok' })
        t.close()
      } finally {
        await f.close()
      }
    })

    it('takes mail from Python smtplib with STARTTLS and LOGIN', needs(TOOLS.python3), async () => {
      requireTool(TOOLS.python3)
      const f = await imapFixture(dialect)
      try {
        const script = [
          'import smtplib, ssl, sys',
          'ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE',
          's = smtplib.SMTP("127.0.0.1", int(sys.argv[1])); s.starttls(context=ctx)',
          's.login(sys.argv[2], sys.argv[3])',
          'msg = "From: " + sys.argv[2] + "\\r\\nTo: " + sys.argv[4] + "\\r\\nSubject: From smtplib\\r\\n\\r\\nHi\\r\\n"',
          'print(s.sendmail(sys.argv[2], [sys.argv[4]], msg)); s.quit()',
        ].join('\n')
        const out = await new Promise<string>((resolve, reject) =>
          execFile(
            '/usr/bin/python3',
            ['-c', script, String(port(f, 'smtp-submission')), f.ann.address, PASSWORD, f.bob.address],
            { timeout: 30_000 },
            (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
          ),
        )
        assert.equal(out.trim(), '{}', 'no recipient refused')
        await waitFor('delivery', async () => {
          const r = await f.api.get(`/v1/messages?mailbox=${f.bob.id}`)
          return r.body.data?.find((m: { subject: string }) => m.subject === 'From smtplib')
        })
      } finally {
        await f.close()
      }
    })
  })
}
