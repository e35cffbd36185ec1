// kill -9 of a real `postern serve` process taking mail for an alias that forwards outside:
// every message acknowledged with 250 must be in the outbound queue after the kill, its
// signed bytes readable, together with the alias's local copy (one transaction, one promise).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { mail } from '../delivery/helpers.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { killRig } from '../helpers/kill-rig.ts'
import { RawClient } from '../smtp/helpers.ts'

for (const dialect of DIALECTS) {
  describe(`forwarding under kill -9 (${dialect})`, () => {
    it('keeps every acknowledged forward queued with its local copy', async () => {
      const rig = await killRig(dialect, {
        env: {
          // No queue worker: the forwards stay queued for the check.
          POSTERN_ROLES: 'http,smtp',
          POSTERN_RATE_LIMITS_FORWARD_ALIAS: '100000/1h',
        },
        prepare: async (api, d) => {
          const made = await api.post('/v1/aliases', {
            address: `out@${d}`,
            targets: ['far@elsewhere.example', `ann@${d}`],
          })
          assert.equal(made.status, 201, made.text)
        },
      })
      try {
        const domain = rig.domain
        const { child, port } = await rig.serve()
        const acknowledged: string[] = []
        const senders = Array.from({ length: 3 }, async (_, k) => {
          const c = await RawClient.greeted(port)
          try {
            await c.cmd('EHLO killer.example', '250')
            for (let i = 0; i < 40; i++) {
              const subject = `Forwarded ${k}-${i}`
              await c.cmd('MAIL FROM:<x@sender.example>', '250')
              await c.cmd(`RCPT TO:<out@${domain}>`, '250')
              await c.cmd('DATA', '354')
              c.write(`${mail({ from: 'x@sender.example', to: `out@${domain}`, subject })}.\r\n`)
              const reply = await c.reply()
              if (reply?.startsWith('250')) acknowledged.push(subject)
              else break
            }
          } catch {
            // the server was killed under us
          } finally {
            c.close()
          }
        })
        while (acknowledged.length < 15) await new Promise((r) => setTimeout(r, 5))
        child.proc.kill('SIGKILL')
        await child.exited
        await Promise.allSettled(senders)

        await rig.inspect(async (p) => {
          const queued = await p.store.db
            .selectFrom('outbound_messages')
            .select(['subject', 'org_id', 'blob_sha256', 'status', 'mail_from'])
            .where('origin', '=', 'forward')
            .execute()
          const local = await p.store.db.selectFrom('messages').select('subject').execute()
          for (const subject of acknowledged) {
            const q = queued.find((x) => x.subject === subject)
            assert.ok(q, `${subject} was acknowledged with 250: its forward must survive kill -9`)
            assert.equal(q.status, 'queued')
            assert.match(q.mail_from, /^SRS0=.*=sender\.example=x@/)
            const bytes = await p.blobs.get(q.org_id, q.blob_sha256 as string) // verified read
            assert.match(bytes.toString('latin1'), /^DKIM-Signature:/)
            assert.ok(
              local.some((m) => m.subject === subject),
              `${subject}: the local copy too`,
            )
          }
          // Nothing half-done: every forward has its local copy and the other way round.
          assert.equal(queued.length, local.length)
        })
      } finally {
        await rig.close()
      }
    })
  })
}
