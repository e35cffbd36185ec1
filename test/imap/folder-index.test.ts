// The in-memory folder index (services/mailstore/folder-index.ts) behind STATUS, SELECT's
// counts and SEARCH over flags, checked against the database after every kind of change made
// around it: APPENDs, STOREs and EXPUNGEs from another IMAP session, flag changes and deletes
// through the HTTP API, SMTP deliveries, a MOVE out of the folder. The session asking never
// makes the changes itself, so the index can learn of them only from the store.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { sql } from 'kysely'
import { mail } from '../delivery/helpers.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { imapFixture, RawImap, smtpDeliver } from './helpers.ts'

for (const dialect of DIALECTS) {
  describe(`IMAP folder index (${dialect})`, () => {
    it('keeps STATUS and SEARCH equal to the database through changes made elsewhere', async () => {
      const f = await imapFixture(dialect)
      const db = f.s.postern.store.db
      const asker = (await RawImap.open(f.imapPort)).c
      const actor = (await RawImap.open(f.imapPort)).c
      try {
        await asker.login(f.ann.address)
        await actor.login(f.ann.address)
        await actor.cmd('s', 'SELECT INBOX')
        await asker.cmd('c', 'CREATE Other')
        await asker.cmd('e', 'EXAMINE INBOX')

        /** The truth, read straight from the tables. */
        const truth = async () => {
          const r = await sql<{ n: number; seen: number; deleted: number; size: number }>`
            SELECT count(*) AS n,
              sum(CASE WHEN EXISTS (SELECT 1 FROM message_keywords k WHERE k.message_id = fm.message_id AND k.keyword = '\\Seen') THEN 1 ELSE 0 END) AS seen,
              sum(CASE WHEN EXISTS (SELECT 1 FROM message_keywords k WHERE k.message_id = fm.message_id AND k.keyword = '\\Deleted') THEN 1 ELSE 0 END) AS deleted,
              sum(m.size) AS size
            FROM folder_messages fm JOIN messages m ON m.id = fm.message_id JOIN folders fo ON fo.id = fm.folder_id
            WHERE fo.mailbox_id = ${f.ann.id} AND fo.role = 'inbox' AND m.deleted_at IS NULL`.execute(db)
          const row = r.rows[0]
          const unseenUids = await sql<{ uid: number }>`
            SELECT fm.uid FROM folder_messages fm JOIN folders fo ON fo.id = fm.folder_id
            WHERE fo.mailbox_id = ${f.ann.id} AND fo.role = 'inbox'
              AND NOT EXISTS (SELECT 1 FROM message_keywords k WHERE k.message_id = fm.message_id AND k.keyword = '\\Seen')
            ORDER BY fm.uid`.execute(db)
          const n = Number(row?.n ?? 0)
          return {
            status: `MESSAGES ${n} UNSEEN ${n - Number(row?.seen ?? 0)} DELETED ${Number(row?.deleted ?? 0)} SIZE ${Number(row?.size ?? 0)}`,
            unseen: unseenUids.rows.map((u) => Number(u.uid)),
          }
        }
        let tag = 0
        const check = async (step: string) => {
          const want = await truth()
          const st = await asker.cmd(`t${++tag}`, 'STATUS INBOX (MESSAGES UNSEEN DELETED SIZE)')
          assert.match(
            st,
            new RegExp(`^\\* STATUS "INBOX" \\(${want.status}\\)\\r\\n`),
            `STATUS after ${step}`,
          )
          // A fresh SELECT in the asking session, then a UID SEARCH over flags.
          await asker.cmd(`t${++tag}`, 'EXAMINE INBOX')
          const se = await asker.cmd(`t${++tag}`, 'UID SEARCH UNSEEN')
          const got = (/^\* SEARCH ?([\d ]*)\r\n/m.exec(se)?.[1] ?? '').split(' ').filter(Boolean).map(Number)
          assert.deepEqual(got, want.unseen, `UID SEARCH UNSEEN after ${step}`)
          const large = await asker.cmd(`t${++tag}`, 'UID SEARCH LARGER 1')
          assert.ok(/^\* SEARCH/m.test(large))
        }

        let seed = 11
        const rand = (n: number) => {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff
          return seed % n
        }
        const appendOne = async (i: number) => {
          const m = `Subject: m${i}\r\nMessage-ID: <ix${i}@a.example>\r\n\r\n${'x'.repeat(rand(500))}\r\n`
          actor.write(`a${i} APPEND INBOX {${Buffer.byteLength(m)}+}\r\n${m}\r\n`)
          await actor.until(`a${i}`)
        }
        for (let i = 0; i < 8; i++) await appendOne(i)
        await check('appends')
        for (let step = 0; step < 24; step++) {
          const kind = rand(7)
          const what = ['append', 'store seen', 'store deleted', 'expunge', 'api patch', 'smtp', 'move'][kind]
          if (kind === 0) await appendOne(100 + step)
          else if (kind === 1 || kind === 2) {
            const flag = kind === 1 ? '\\Seen' : '\\Deleted'
            await actor.cmd(`x${step}`, `STORE 1:* ${rand(2) ? '+' : '-'}FLAGS (${flag})`)
            await actor.cmd(`y${step}`, `STORE ${1 + rand(3)} +FLAGS (${flag})`)
          } else if (kind === 3) await actor.cmd(`x${step}`, 'EXPUNGE')
          else if (kind === 4) {
            const list = await f.api.get(`/v1/messages?mailbox=${f.ann.id}&limit=100`)
            const msgs = list.body.data as { id: string }[]
            const target = msgs[rand(Math.max(1, msgs.length))]
            if (target) {
              if (rand(3) === 0) await f.api.delete(`/v1/messages/${target.id}`)
              else await f.api.patch(`/v1/messages/${target.id}`, { seen: rand(2) === 0 })
            }
          } else if (kind === 5)
            await smtpDeliver(
              f.smtpPort,
              'someone@sender.example',
              f.ann.address,
              mail({ from: 'someone@sender.example', to: f.ann.address, subject: `smtp ${step}` }),
            )
          else await actor.cmd(`x${step}`, 'MOVE 1 Other')
          await actor.cmd(`n${step}`, 'NOOP')
          await check(`${what} (step ${step})`)
        }
      } finally {
        asker.close()
        actor.close()
        await f.close()
      }
    })

    it('answers SELECT, STATUS and STORE from many sessions at once (no refresh waits on another)', async () => {
      // A refresh inside SELECT's transaction once waited for a STATUS refresh that was queued
      // behind that same transaction for SQLite's one connection: both hung for good.
      const f = await imapFixture(dialect)
      const sessions: RawImap[] = []
      try {
        const loader = (await RawImap.open(f.imapPort)).c
        sessions.push(loader)
        await loader.login(f.ann.address)
        for (let i = 0; i < 20; i++) {
          const m = `Subject: c${i}\r\n\r\nbody ${i}\r\n`
          loader.write(`a${i} APPEND INBOX {${Buffer.byteLength(m)}+}\r\n${m}\r\n`)
          await loader.until(`a${i}`)
        }
        for (let k = 0; k < 10; k++) {
          const c = (await RawImap.open(f.imapPort)).c
          sessions.push(c)
          await c.login(f.ann.address)
          await c.cmd('s', 'SELECT INBOX')
        }
        const mix = (k: number, i: number) =>
          [
            `STORE ${1 + ((k + i) % 20)} +FLAGS (\\Seen)`,
            'STATUS INBOX (MESSAGES UNSEEN)',
            'SELECT INBOX',
            'UID SEARCH UNSEEN',
            `FETCH ${1 + (i % 10)}:${10 + (i % 10)} (UID BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])`,
            `FETCH ${1 + (k % 20)} BODY.PEEK[]`,
          ][(k + i) % 6] as string
        let appended = 0
        const appending = (async () => {
          for (let i = 0; i < 30; i++) {
            const m = `Subject: late${i}\r\n\r\nbody\r\n`
            loader.write(`l${i} APPEND INBOX {${Buffer.byteLength(m)}+}\r\n${m}\r\n`)
            await loader.until(`l${i}`)
            appended++
          }
        })()
        await Promise.all(
          sessions.slice(1).map(async (c, k) => {
            for (let i = 0; i < 120; i++) {
              const r = await c.cmd(`m${i}`, mix(k, i))
              assert.match(r, new RegExp(`^m${i} OK`, 'm'), mix(k, i))
            }
          }),
        )
        await appending
        assert.equal(appended, 30)
        const st = await loader.cmd('z', 'STATUS INBOX (MESSAGES)')
        assert.match(st, /MESSAGES 50/)
      } finally {
        for (const c of sessions) c.close()
        await f.close()
      }
    })
  })
}
