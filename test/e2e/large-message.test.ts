// Large messages over real SMTP: text past the spool threshold (256 KB) goes to a spool file
// while it arrives. A large message sent with DATA (dot-stuffed) or BDAT is stored byte for
// byte; one over smtp.max_message_bytes is refused with 552 after its end and leaves nothing
// (no row, no blob, no spool file) while the session goes on; many at once all arrive.

import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { SPOOL_THRESHOLD_BYTES } from '../../src/roles/smtp.ts'
import { hostedOrg, mail } from '../delivery/helpers.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'

const mxPort = (s: TestServer) => s.postern.listeners.find((l) => l.name === 'smtp-mx')?.port as number

/** A raw SMTP client that reads whole replies (multi-line ones too) in order. */
function client(port: number) {
  const sock: Socket = connect(port, '127.0.0.1')
  let buf = ''
  const replies: string[] = []
  const waiting: ((r: string) => void)[] = []
  sock.setEncoding('latin1')
  sock.on('data', (d: string) => {
    buf += d
    for (;;) {
      const m = /^\d{3} [^\r\n]*\r\n/m.exec(buf)
      if (!m) break
      const end = m.index + m[0].length
      const reply = buf.slice(0, end)
      buf = buf.slice(end)
      const w = waiting.shift()
      if (w) w(reply)
      else replies.push(reply)
    }
  })
  sock.on('error', () => {})
  const next = () => {
    const r = replies.shift()
    return r !== undefined ? Promise.resolve(r) : new Promise<string>((resolve) => waiting.push(resolve))
  }
  return {
    next,
    async cmd(line: string) {
      sock.write(`${line}\r\n`)
      return next()
    },
    write: (data: Buffer | string) => sock.write(data),
    close: () => sock.destroy(),
  }
}

/** A message of about `bytes` octets whose lines often start with a dot. */
function largeMessage(to: string, subject: string, bytes: number): Buffer {
  const lines: string[] = []
  for (let i = 0, n = 0; n < bytes; i++) {
    const line =
      i % 5 === 0 ? `.${i} dot-first line ${'y'.repeat(i % 70)}` : `${i} ${'x'.repeat(60 + (i % 17))}`
    lines.push(line)
    n += line.length + 2
  }
  return Buffer.from(mail({ from: 'big@sender.example', to, subject, body: lines.join('\r\n') }), 'latin1')
}

const dotStuffed = (m: Buffer) => Buffer.from(m.toString('latin1').replace(/^\./gm, '..'), 'latin1')

async function sendData(c: ReturnType<typeof client>, to: string, message: Buffer): Promise<string> {
  assert.match(await c.cmd('MAIL FROM:<big@sender.example>'), /^250/)
  assert.match(await c.cmd(`RCPT TO:<${to}>`), /^250/)
  assert.match(await c.cmd('DATA'), /^354/)
  c.write(dotStuffed(message))
  return c.cmd('.')
}

/** The stored bytes of every message in the installation, by subject. */
async function storedBySubject(s: TestServer): Promise<Map<string, Buffer>> {
  const rows = await s.postern.store.db
    .selectFrom('messages')
    .select(['subject', 'org_id', 'blob_sha256'])
    .execute()
  const out = new Map<string, Buffer>()
  for (const r of rows) out.set(r.subject, await s.postern.blobs.get(r.org_id, r.blob_sha256))
  return out
}

const spoolFiles = (s: TestServer) =>
  readdirSync(join(s.config.blobs.dir as string, 'tmp')).filter((f) => f.startsWith('spool-'))

/** True when `stored` is Postern's trace fields followed by exactly `sent`. */
function storedIntact(stored: Buffer | undefined, sent: Buffer): boolean {
  if (!stored || stored.length <= sent.length) return false
  return (
    stored.subarray(stored.length - sent.length).equals(sent) &&
    /^Received: /.test(stored.toString('latin1', 0, 10))
  )
}

for (const dialect of DIALECTS) {
  describe(`large messages over SMTP (${dialect})`, () => {
    it('stores a spooled message byte for byte, sent with DATA and with BDAT', {
      timeout: 120_000,
    }, async () => {
      const s = await startTestServer(dialect)
      try {
        const { domain } = await hostedOrg(s)
        const to = `ann@${domain}`
        const viaData = largeMessage(to, 'Large by DATA', 3 * 1024 * 1024)
        const viaBdat = largeMessage(to, 'Large by BDAT', 2 * 1024 * 1024 + 123)
        assert.ok(viaBdat.length > SPOOL_THRESHOLD_BYTES * 4)
        const c = client(mxPort(s))
        assert.match(await c.next(), /^220/)
        assert.match(await c.cmd('EHLO big.sender.example'), /CHUNKING/)
        assert.match(await sendData(c, to, viaData), /^250/)

        assert.match(await c.cmd('MAIL FROM:<big@sender.example>'), /^250/)
        assert.match(await c.cmd(`RCPT TO:<${to}>`), /^250/)
        const chunk = 700_001
        for (let i = 0; i < viaBdat.length; i += chunk) {
          const part = viaBdat.subarray(i, i + chunk)
          const last = i + chunk >= viaBdat.length
          c.write(`BDAT ${part.length}${last ? ' LAST' : ''}\r\n`)
          c.write(part)
          assert.match(await c.next(), /^250/)
        }
        assert.match(await c.cmd('QUIT'), /^221/)
        c.close()

        const stored = await storedBySubject(s)
        assert.ok(storedIntact(stored.get('Large by DATA'), viaData), 'the DATA message is stored intact')
        assert.ok(storedIntact(stored.get('Large by BDAT'), viaBdat), 'the BDAT message is stored intact')
        assert.deepEqual(spoolFiles(s), [], 'no spool file is left')
      } finally {
        await s.close()
      }
    })

    it('refuses a message over max_message_bytes with 552 after its end, keeping nothing', {
      timeout: 120_000,
    }, async () => {
      const s = await startTestServer(dialect, {
        env: { POSTERN_SMTP_MAX_MESSAGE_BYTES: String(1024 * 1024) },
      })
      try {
        const { domain } = await hostedOrg(s)
        const to = `ann@${domain}`
        const c = client(mxPort(s))
        assert.match(await c.next(), /^220/)
        await c.cmd('EHLO big.sender.example')
        const reply = await sendData(c, to, largeMessage(to, 'Too large', 3 * 1024 * 1024))
        assert.match(reply, /^552 5\.3\.4/)
        assert.deepEqual(spoolFiles(s), [], 'the spooled text was removed')

        // BDAT too: the chunk past the limit is refused, and the ones pipelined after it.
        assert.match(await c.cmd('MAIL FROM:<big@sender.example>'), /^250/)
        assert.match(await c.cmd(`RCPT TO:<${to}>`), /^250/)
        const body = largeMessage(to, 'Too large by BDAT', 2 * 1024 * 1024)
        const half = Math.floor(body.length / 2)
        c.write(`BDAT ${half}\r\n`)
        c.write(body.subarray(0, half))
        assert.match(await c.next(), /^552/)
        c.write(`BDAT ${body.length - half} LAST\r\n`)
        c.write(body.subarray(half))
        assert.match(await c.next(), /^5\d\d/)
        assert.match(await c.cmd('RSET'), /^250/)

        // The session goes on: a small message on the same connection is taken.
        assert.match(
          await sendData(c, to, Buffer.from(mail({ from: 'big@sender.example', to, subject: 'Small' }))),
          /^250/,
        )
        c.close()
        const stored = await storedBySubject(s)
        assert.deepEqual([...stored.keys()], ['Small'], 'only the small message is stored')
        const blobs = await s.postern.store.db.selectFrom('blobs').select('sha256').execute()
        assert.equal(blobs.length, 1, 'no blob of the refused messages')
        assert.deepEqual(spoolFiles(s), [])
      } finally {
        await s.close()
      }
    })

    it('takes many large messages at once, each intact', { timeout: 180_000 }, async () => {
      const s = await startTestServer(dialect, { env: { POSTERN_SMTP_VERIFY_AUTH: 'false' } })
      try {
        const { domain } = await hostedOrg(s)
        const to = `bob@${domain}`
        const sent = Array.from({ length: 8 }, (_, i) =>
          largeMessage(to, `Parallel ${i}`, 600_000 + i * 1000),
        )
        const replies = await Promise.all(
          sent.map(async (m) => {
            const c = client(mxPort(s))
            await c.next()
            await c.cmd('EHLO big.sender.example')
            const r = await sendData(c, to, m)
            c.close()
            return r
          }),
        )
        for (const r of replies) assert.match(r, /^250/)
        const stored = await storedBySubject(s)
        for (const [i, m] of sent.entries())
          assert.ok(storedIntact(stored.get(`Parallel ${i}`), m), `message ${i} intact`)
        assert.deepEqual(spoolFiles(s), [])
      } finally {
        await s.close()
      }
    })
  })
}
