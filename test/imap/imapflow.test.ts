// imapflow, a real IMAP client, against Postern over TLS (port 993): APPEND then FETCH of
// binary-exact messages, IDLE hearing an SMTP delivery, MOVE with UIDPLUS, flags shared with
// the HTTP API both ways, folders with hierarchy.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ImapFlow } from 'imapflow'
import { mail } from '../delivery/helpers.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type ImapFixture, imapFixture, PASSWORD, smtpDeliver } from './helpers.ts'

function client(f: ImapFixture, user = f.ann.address): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port: f.imapsPort,
    secure: true,
    tls: { rejectUnauthorized: false },
    auth: { user, pass: PASSWORD },
    logger: false,
  })
}

/** A multipart message with 8-bit text, a binary attachment and odd but legal line content. */
function tricky(n: number): Buffer {
  const bin = Buffer.alloc(300)
  for (let i = 0; i < bin.length; i++) bin[i] = (i * 37 + n) & 0xff
  return Buffer.concat([
    Buffer.from(
      [
        'From: =?utf-8?q?Ren=C3=A9e?= <renee@a.example>',
        'To: ann@hosted.example',
        `Subject: Test ${n} =?utf-8?b?w6nDqMOg?=`,
        'Date: Sat, 21 Nov 2026 08:00:00 +0000',
        `Message-ID: <t${n}@a.example>`,
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="b1"',
        '',
        'preamble',
        '--b1',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        '',
        'Grüße aus Köln. A line with trailing spaces   ',
        '.a line starting with a dot',
        '--b1',
        'Content-Type: application/octet-stream',
        'Content-Transfer-Encoding: base64',
        'Content-Disposition: attachment; filename="x.bin"',
        '',
        bin.toString('base64'),
        '--b1--',
        '',
      ].join('\r\n'),
      'utf8',
    ),
  ])
}

for (const dialect of DIALECTS) {
  describe(`IMAP with imapflow (${dialect})`, () => {
    it('appends and fetches back byte-identical messages, with their structure', async () => {
      const f = await imapFixture(dialect)
      const c = client(f)
      try {
        await c.connect()
        const sent = [tricky(1), tricky(2)]
        const uids: number[] = []
        for (const m of sent) {
          const r = await c.append('INBOX', m, ['\\Seen'], new Date('2026-11-30T12:00:00Z'))
          assert.ok(r !== false && r.uid, 'APPENDUID gives the uid')
          uids.push(r.uid as number)
        }
        const lock = await c.getMailboxLock('INBOX')
        try {
          let i = 0
          for await (const msg of c.fetch('1:*', {
            uid: true,
            flags: true,
            source: true,
            envelope: true,
            bodyStructure: true,
            internalDate: true,
            size: true,
          })) {
            const want = sent[i] as Buffer
            assert.equal(msg.uid, uids[i])
            assert.ok(msg.source?.equals(want), 'the exact bytes come back')
            assert.equal(msg.size, want.length)
            assert.ok(msg.flags?.has('\\Seen'))
            assert.equal(new Date(msg.internalDate as Date).toISOString(), '2026-11-30T12:00:00.000Z')
            assert.equal(msg.envelope?.subject, `Test ${i + 1} éèà`)
            assert.equal(msg.envelope?.from?.[0]?.address, 'renee@a.example')
            assert.equal(msg.bodyStructure?.type, 'multipart/mixed')
            const parts = msg.bodyStructure?.childNodes ?? []
            assert.equal(parts.length, 2)
            assert.equal(parts[1]?.disposition, 'attachment')
            i++
          }
          assert.equal(i, 2)
          const { content } = await c.download('1', '2', { uid: false })
          const chunks: Buffer[] = []
          for await (const chunk of content ?? []) chunks.push(chunk as Buffer)
          const expectBin = Buffer.alloc(300)
          for (let k = 0; k < 300; k++) expectBin[k] = (k * 37 + 1) & 0xff
          assert.ok(Buffer.concat(chunks).equals(expectBin), 'the attachment decodes to its bytes')
        } finally {
          lock.release()
        }
      } finally {
        await c.logout().catch(() => {})
        await f.close()
      }
    })

    it('hears an SMTP delivery while idling, and moves with UIDPLUS', async () => {
      const f = await imapFixture(dialect)
      const c = client(f)
      try {
        await c.connect()
        const lock = await c.getMailboxLock('INBOX')
        try {
          const exists = new Promise<number>((resolve) => c.on('exists', (d) => resolve(d.count)))
          void c.idle().catch(() => {}) // starts IDLE; it ends when the next command is sent
          await smtpDeliver(
            f.smtpPort,
            'someone@sender.example',
            f.ann.address,
            mail({ from: 'someone@sender.example', to: f.ann.address, subject: 'While idle' }),
          )
          assert.equal(await exists, 1)
          const moved = await c.messageMove('1', 'Archive', { uid: false })
          assert.ok(moved, 'MOVE answered')
          assert.equal(moved.destination, 'Archive')
          assert.equal(moved.uidMap?.size, 1, 'COPYUID maps the moved message')
          const st = await c.status('Archive', { messages: true })
          assert.equal(st !== false && st.messages, 1)
          const api = await f.api.get(`/v1/messages?mailbox=${f.ann.id}&folder=archive`)
          assert.equal(api.status, 200, api.text)
        } finally {
          lock.release()
        }
      } finally {
        await c.logout().catch(() => {})
        await f.close()
      }
    })

    it('shares flags and keywords with the HTTP API both ways, and manages folders', async () => {
      const f = await imapFixture(dialect)
      const c = client(f)
      try {
        await c.connect()
        await c.append('INBOX', tricky(3))
        const lock = await c.getMailboxLock('INBOX')
        try {
          await c.messageFlagsAdd('1', ['\\Flagged', '$Important'])
          const list = await f.api.get(`/v1/messages?mailbox=${f.ann.id}`)
          const m = list.body.data[0]
          assert.equal(m.flagged, true)
          assert.deepEqual(m.keywords, ['$Important'])
          const r = await f.api.patch(`/v1/messages/${m.id}`, {
            seen: true,
            keywords: { remove: ['$Important'] },
          })
          assert.equal(r.status, 200, r.text)
          const back = await c.fetchOne('1', { flags: true })
          assert.ok(back && back.flags?.has('\\Seen'))
          assert.ok(back && !back.flags?.has('$Important'))
        } finally {
          lock.release()
        }
        await c.mailboxCreate(['Projects', 'Déjà vu'])
        const boxes = await c.list()
        const names = boxes.map((b) => b.path)
        assert.ok(names.includes('Projects/Déjà vu'), names.join(','))
        assert.equal(boxes.find((b) => b.path === 'Sent')?.specialUse, '\\Sent')
        await c.mailboxRename('Projects/Déjà vu', 'Projects/Done')
        await c.mailboxDelete('Projects/Done')
        const folders = await f.api.get(`/v1/mailboxes/${f.ann.id}/folders`)
        assert.ok(!JSON.stringify(folders.body).includes('Projects/Done'))
      } finally {
        await c.logout().catch(() => {})
        await f.close()
      }
    })

    it("keeps mailboxes apart: bob cannot see or touch ann's folders", async () => {
      const f = await imapFixture(dialect)
      const a = client(f)
      const b = client(f, f.bob.address)
      try {
        await a.connect()
        await a.append('INBOX', tricky(4))
        await a.mailboxCreate('Secret')
        await b.connect()
        const st = await b.status('INBOX', { messages: true })
        assert.equal(st !== false && st.messages, 0)
        const names = (await b.list()).map((x) => x.path)
        assert.ok(!names.includes('Secret'))
        await assert.rejects(b.mailboxOpen('Secret'))
      } finally {
        await a.logout().catch(() => {})
        await b.logout().catch(() => {})
        await f.close()
      }
    })
  })
}
