// kill -9 of a real `postern serve` process: in the middle of DATA (nothing half-written may
// become visible) and right after 250s (everything acknowledged must be there after a
// restart, its blob intact). The page cache survives SIGKILL, so this proves the ordering
// and atomicity of the writes; the fsync ordering itself is proven in smtp-mx.test.ts.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { mail } from '../delivery/helpers.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { killRig, rawSmtp } from '../helpers/kill-rig.ts'

for (const dialect of DIALECTS) {
  describe(`kill -9 (${dialect})`, () => {
    it('loses nothing acknowledged and shows nothing half-written', async () => {
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
            for (const r of rows) await p.blobs.get(r.org_id, r.blob_sha256) // verified read: throws if corrupt
            const memberships = await p.store.db.selectFrom('folder_messages').select('message_id').execute()
            const refs = await p.store.db.selectFrom('blobs').select(['refcount']).execute()
            return {
              subjects: rows.map((r) => r.subject),
              memberships: memberships.length,
              refsum: refs.reduce((n, r) => n + r.refcount, 0),
            }
          })

        // 1. Killed in the middle of DATA: nothing becomes visible.
        let { child, port } = await start()
        const c1 = rawSmtp(port)
        await c1.greeting
        await c1.cmd('EHLO killer.example')
        await c1.cmd('MAIL FROM:<x@sender.example>')
        await c1.cmd(`RCPT TO:<${rcpt}>`)
        assert.match(await c1.cmd('DATA'), /^354/)
        c1.write(mail({ from: 'x@sender.example', to: rcpt, subject: 'Half written' }).slice(0, 120))
        await new Promise((r) => setTimeout(r, 200))
        child.proc.kill('SIGKILL')
        await child.exited
        c1.destroy()
        let after = await stored()
        assert.deepEqual(after.subjects, [], 'a message cut off in DATA is not stored')

        // 2. Killed right after 250s, with more messages in flight: every 250 is there.
        ;({ child, port } = await start())
        const acknowledged: string[] = []
        const senders = Array.from({ length: 4 }, async (_, k) => {
          const c = rawSmtp(port)
          await c.greeting
          await c.cmd('EHLO killer.example')
          for (let i = 0; i < 50; i++) {
            const subject = `Durable ${k}-${i}`
            if (!(await c.cmd('MAIL FROM:<x@sender.example>')).startsWith('250')) break
            await c.cmd(`RCPT TO:<${rcpt}>`)
            const go = await c.cmd('DATA')
            if (!go.startsWith('354')) break
            const p = c.next()
            c.write(`${mail({ from: 'x@sender.example', to: rcpt, subject })}.\r\n`)
            const reply = await p
            if (reply.startsWith('250')) acknowledged.push(subject)
            else break
          }
          c.destroy()
        })
        while (acknowledged.length < 20) await new Promise((r) => setTimeout(r, 5))
        child.proc.kill('SIGKILL')
        await child.exited
        await Promise.race([Promise.allSettled(senders), new Promise((r) => setTimeout(r, 2000))])
        after = await stored()
        for (const subject of acknowledged)
          assert.ok(
            after.subjects.includes(subject),
            `${subject} was acknowledged with 250 and must survive kill -9`,
          )
        assert.equal(after.memberships, after.subjects.length, 'every stored message is in a folder')
        assert.equal(after.refsum, after.subjects.length, 'every stored message holds its blob reference')

        // 3. A restarted server carries on.
        ;({ child, port } = await start())
        const c3 = rawSmtp(port)
        await c3.greeting
        await c3.cmd('EHLO killer.example')
        await c3.cmd('MAIL FROM:<x@sender.example>')
        await c3.cmd(`RCPT TO:<${rcpt}>`)
        await c3.cmd('DATA')
        const p3 = c3.next()
        c3.write(`${mail({ from: 'x@sender.example', to: rcpt, subject: 'After restart' })}.\r\n`)
        assert.match(await p3, /^250/)
        c3.destroy()
        child.proc.kill('SIGTERM')
        assert.equal(await child.exited, 0)
        assert.ok((await stored()).subjects.includes('After restart'))
      } finally {
        await rig.close()
      }
    })
  })
}
