// kill -9 of a real `postern serve` process with large (spooled) messages: one cut off in the
// middle of its DATA never becomes visible, and every large message answered 250 is there after
// a restart, byte for byte, its blob intact. The spool file is never the durable copy; the
// blob store's put before the 250 is (kill.test.ts covers small messages the same way).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { mail } from '../delivery/helpers.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { killRig, rawSmtp } from '../helpers/kill-rig.ts'

function large(to: string, subject: string): Buffer {
  const lines: string[] = []
  for (let i = 0; i < 12_000; i++)
    lines.push(i % 9 === 0 ? `.${i} starts with a dot` : `${i} ${'z'.repeat(80)}`)
  return Buffer.from(mail({ from: 'x@sender.example', to, subject, body: lines.join('\r\n') }), 'latin1')
}

const stuffed = (m: Buffer) => Buffer.from(m.toString('latin1').replace(/^\./gm, '..'), 'latin1')

for (const dialect of DIALECTS) {
  describe(`kill -9 with large messages (${dialect})`, () => {
    it('keeps every large message answered 250, intact, and none cut off in DATA', {
      timeout: 180_000,
    }, async () => {
      const rig = await killRig(dialect)
      try {
        const rcpt = `ann@${rig.domain}`
        const start = () => rig.serve()
        const stored = () =>
          rig.inspect(async (p) => {
            const rows = await p.store.db
              .selectFrom('messages')
              .select(['subject', 'org_id', 'blob_sha256'])
              .execute()
            const out = new Map<string, Buffer>()
            for (const r of rows) out.set(r.subject, await p.blobs.get(r.org_id, r.blob_sha256)) // verified read
            return out
          })

        const { child, port } = await start()
        // One large message cut off after most of its text has been spooled.
        const cut = rawSmtp(port)
        await cut.greeting
        await cut.cmd('EHLO killer.example')
        await cut.cmd('MAIL FROM:<x@sender.example>')
        await cut.cmd(`RCPT TO:<${rcpt}>`)
        assert.match(await cut.cmd('DATA'), /^354/)
        const cutText = stuffed(large(rcpt, 'Cut off'))
        cut.write(cutText.subarray(0, cutText.length - 1000))

        // Large messages answered 250 one after another, then kill -9 right after the last 250.
        const sent = new Map<string, Buffer>()
        const c = rawSmtp(port)
        await c.greeting
        await c.cmd('EHLO killer.example')
        for (let i = 0; i < 3; i++) {
          const subject = `Large durable ${i}`
          const m = large(rcpt, subject)
          assert.match(await c.cmd('MAIL FROM:<x@sender.example>'), /^250/)
          assert.match(await c.cmd(`RCPT TO:<${rcpt}>`), /^250/)
          assert.match(await c.cmd('DATA'), /^354/)
          c.write(stuffed(m))
          assert.match(await c.cmd('.'), /^250/)
          sent.set(subject, m)
        }
        child.proc.kill('SIGKILL')
        await child.exited
        c.destroy()
        cut.destroy()

        const after = await stored()
        assert.equal(after.has('Cut off'), false, 'a message cut off in DATA is not stored')
        for (const [subject, m] of sent) {
          const got = after.get(subject)
          assert.ok(got, `${subject} was answered 250 and must survive kill -9`)
          assert.ok(got.subarray(got.length - m.length).equals(m), `${subject} is stored byte for byte`)
        }
      } finally {
        await rig.close()
      }
    })
  })
}
