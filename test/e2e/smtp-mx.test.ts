// Mail over real SMTP into a running server: a real client (nodemailer) and raw transcripts
// reach the MX; the message is stored, authenticated, threaded and searchable through the
// API; refusals answer with the right codes; and every 250 follows its fsyncs and commit.

import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { describe, it } from 'node:test'
import nodemailer from 'nodemailer'
import { type FileOps, nodeFileOps } from '../../src/store/blobs/file-ops.ts'
import { hostedOrg, mail, senderDomain } from '../delivery/helpers.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'

const mxPort = (s: TestServer) => s.postern.listeners.find((l) => l.name === 'smtp-mx')?.port as number

/** Sends raw SMTP lines one at a time and returns every reply. */
async function transcript(port: number, lines: string[]): Promise<string[]> {
  const sock = connect(port, '127.0.0.1')
  const replies: string[] = []
  let buf = ''
  let waiter: ((r: string) => void) | null = null
  sock.on('data', (d) => {
    buf += d
    for (;;) {
      const m = /^(\d{3}) [^\r\n]*\r\n/m.exec(buf)
      if (!m) break
      const end = (m.index ?? 0) + m[0].length
      const reply = buf.slice(0, end)
      buf = buf.slice(end)
      replies.push(reply)
      waiter?.(reply)
      waiter = null
    }
  })
  const next = () => new Promise<string>((r) => (waiter = r))
  const first = next()
  await first
  for (const line of lines) {
    const p = next()
    sock.write(`${line}\r\n`)
    await p
  }
  sock.destroy()
  return replies
}

for (const dialect of DIALECTS) {
  describe(`SMTP MX (${dialect})`, () => {
    it('accepts mail for hosted mailboxes from a real client and makes it readable, authenticated and searchable', async () => {
      const s = await startTestServer(dialect)
      try {
        const { api, domain, ann } = await hostedOrg(s)
        const sender = senderDomain(s.dns, 'partner.example', 'reject')
        const transport = nodemailer.createTransport({
          host: '127.0.0.1',
          port: mxPort(s),
          secure: false,
          tls: { rejectUnauthorized: false },
          name: 'mail.partner.example',
        })
        const raw = await sender.sign(
          mail({
            from: 'alice@partner.example',
            to: `ann@${domain}`,
            subject: 'Contract draft',
            body: 'Please review the indemnity clause.',
          }),
        )
        const info = await transport.sendMail({
          envelope: { from: 'alice@partner.example', to: [`ann@${domain}`] },
          raw,
        })
        assert.match(info.response, /^250 2\.0\.0 Ok: queued as /)
        const list = await api.get(`/v1/messages?mailbox=${ann}`)
        assert.equal(list.status, 200, list.text)
        assert.equal(list.body.data.length, 1)
        const id = list.body.data[0].id
        const msg = await api.get(`/v1/messages/${id}`)
        assert.equal(msg.body.subject, 'Contract draft')
        const rawBack = await api.get(`/v1/messages/${id}/raw`)
        assert.match(rawBack.text, /^Received: from mail\.partner\.example/)
        assert.match(
          rawBack.text,
          /Authentication-Results: mx\.postern\.test;[\s\S]*dkim=pass[\s\S]*dmarc=pass/,
        )
        assert.match(rawBack.text, /with ESMTPS id/, 'the client used STARTTLS')
        const found = await api.get(`/v1/search?mailbox=${ann}&q=indemnity`)
        assert.deepEqual(
          found.body.data.map((m: { id: string }) => m.id),
          [id],
        )
        transport.close()
      } finally {
        await s.close()
      }
    })

    it('answers each refusal with its code', async () => {
      const s = await startTestServer(dialect)
      try {
        const { api, domain, bob } = await hostedOrg(s)
        await api.patch(`/v1/mailboxes/${bob}`, { active: false })
        await api.post('/v1/aliases', { address: `fwd@${domain}`, targets: ['out@elsewhere.example'] })
        // An alias forwarding only to a suppressed address is refused (forwarding: test/e2e/forwarding.test.ts).
        await api.post('/v1/suppressions', { address: 'out@elsewhere.example' })
        const replies = await transcript(mxPort(s), [
          'EHLO client.example',
          'MAIL FROM:<a@sender.example> RET=HDRS ENVID=abc123',
          `RCPT TO:<nobody@${domain}>`,
          'RCPT TO:<victim@not-hosted.example>',
          `RCPT TO:<bob@${domain}>`,
          `RCPT TO:<fwd@${domain}>`,
          `RCPT TO:<ann+tag@${domain}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;ann+2Btag@${domain}`, // xtext: "+" is written +2B
          'DATA',
          `From: a@sender.example\r\nTo: ann+tag@${domain}\r\nSubject: DSN parameters\r\n\r\nhi\r\n.`,
          'QUIT',
        ])
        const codes = replies.map((r) => r.slice(0, 9))
        assert.match(replies[0] as string, /^220 mx\.postern\.test/)
        assert.equal(
          replies[1],
          '250-mx.postern.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-SIZE 52428800\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-DSN\r\n250 STARTTLS\r\n',
          'no AUTH on the MX',
        )
        assert.deepEqual(codes.slice(2), [
          '250 2.1.0',
          '550 5.1.1',
          '550 5.7.1',
          '550 5.2.1',
          '550 5.1.1',
          '250 2.1.5',
          codes[8] as string,
          '250 2.0.0',
          '221 2.0.0',
        ])
        assert.match(codes[8] as string, /^354/)
        // DSN parameters are kept with the message for status notifications (RFC 3461).
        const stored = await s.postern.store.db
          .selectFrom('messages')
          .select('envelope')
          .executeTakeFirstOrThrow()
        const env = JSON.parse(stored.envelope as string)
        assert.equal(env.ret, 'HDRS')
        assert.equal(env.envid, 'abc123')
        assert.deepEqual(env.recipients, [
          { address: `ann+tag@${domain}`, notify: ['SUCCESS', 'FAILURE'], orcpt: `rfc822;ann+tag@${domain}` },
        ])
      } finally {
        await s.close()
      }
    })

    it('answers 250 only after the blob is fsynced and renamed, its directory fsynced, and the rows committed', async () => {
      const events: string[] = []
      const recording: FileOps = {
        ...nodeFileOps,
        async create(path) {
          const f = await nodeFileOps.create(path)
          return {
            write: (c) => f.write(c),
            sync: async () => {
              await f.sync()
              events.push('fsync file')
            },
            close: () => f.close(),
          }
        },
        async rename(a, b) {
          await nodeFileOps.rename(a, b)
          events.push('rename')
        },
        async syncDir(p) {
          await nodeFileOps.syncDir(p)
          events.push('fsync dir')
        },
      }
      const s = await startTestServer(dialect, {
        fileOps: recording,
        onDeliveryCommit: (n) => events.push(`commit ${n}`),
        // Every blob a file, so the file path's order of fsyncs is what is checked here (the
        // inline tier commits small blobs with the rows: test/store/blobs.test.ts).
        env: { POSTERN_SMTP_VERIFY_AUTH: 'false', POSTERN_BLOBS_INLINE_MAX_BYTES: '0' },
      })
      try {
        const { domain } = await hostedOrg(s)
        events.length = 0
        const transport = nodemailer.createTransport({
          host: '127.0.0.1',
          port: mxPort(s),
          secure: false,
          ignoreTLS: true,
          pool: false,
        })
        for (let i = 0; i < 3; i++) {
          const info = await transport.sendMail({
            envelope: { from: 'x@sender.example', to: [`ann@${domain}`] },
            raw: mail({ from: 'x@sender.example', to: `ann@${domain}`, subject: `Durable ${i}` }),
          })
          events.push(`250 ${i}`)
          assert.match(info.response, /^250 /)
        }
        for (let i = 0; i < 3; i++) {
          const at = events.indexOf(`250 ${i}`)
          const before = events.slice(events.indexOf(i === 0 ? (events[0] as string) : `250 ${i - 1}`), at)
          assert.ok(
            before.includes('fsync file'),
            `message ${i}: blob fsynced before 250 (${before.join(', ')})`,
          )
          assert.ok(
            before.lastIndexOf('fsync dir') > before.indexOf('rename'),
            `message ${i}: directory fsynced after the rename, before 250`,
          )
          assert.ok(
            before.some((e) => e.startsWith('commit')),
            `message ${i}: rows committed before 250`,
          )
          assert.ok(
            before.findIndex((e) => e.startsWith('commit')) > before.indexOf('fsync file'),
            `message ${i}: the blob is durable before the rows point at it`,
          )
        }
        transport.close()
      } finally {
        await s.close()
      }
    })
  })
}
