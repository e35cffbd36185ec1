// The trash-purge job with a manual clock: messages in Trash for more than 30 days are deleted
// for good (rows, memberships with tombstones, blob references); younger ones stay; a message
// also in another folder only leaves Trash.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { addToFolder } from '../../src/services/messages/folder-ops.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { deliver, mailOrg, startMailServer, textMail } from './fixtures.ts'

const DAY = 86_400_000

for (const dialect of DIALECTS) {
  describe(`trash purge (${dialect})`, () => {
    it('deletes what has been in Trash for more than 30 days, and only that', async () => {
      const { s, clock } = await startMailServer(dialect)
      try {
        const org = await mailOrg(s)
        const box = await org.mailbox('purge')
        const key = org.api.withKey(box.key)
        const db = s.postern.store.db
        const old = await deliver(s, box, textMail({ subject: 'old' }))
        const copied = await deliver(s, box, textMail({ subject: 'copied' }))
        const kept = await deliver(s, box, textMail({ subject: 'kept' }))
        await key.delete(`/v1/messages/${old}`)
        await key.delete(`/v1/messages/${copied}`)
        // An IMAP client copied `copied` back to the inbox without expunging it from Trash.
        const inbox = await db
          .selectFrom('folders')
          .select(['id', 'mailbox_id', 'org_id'])
          .where('mailbox_id', '=', box.id)
          .where('role', '=', 'inbox')
          .executeTakeFirstOrThrow()
        await addToFolder(db, inbox, copied, clock.now())
        const row = await db
          .selectFrom('messages')
          .selectAll()
          .where('id', '=', old)
          .executeTakeFirstOrThrow()
        const refcount = async () =>
          Number(
            (
              await db
                .selectFrom('blobs')
                .select('refcount')
                .where('namespace', '=', row.org_id)
                .where('sha256', '=', row.blob_sha256)
                .executeTakeFirstOrThrow()
            ).refcount,
          )
        assert.equal(await refcount(), 1)

        clock.advance(20 * DAY)
        await key.delete(`/v1/messages/${kept}`)

        clock.advance(10 * DAY - 1000) // `old` has been in Trash for just under 30 days
        let run = await s.postern.jobs.runNow('trash-purge')
        assert.equal(run.last_status, 'ok', run.last_error ?? '')
        assert.equal((await key.get(`/v1/messages/${old}`)).status, 200)

        clock.advance(2000)
        run = await s.postern.jobs.runNow('trash-purge')
        assert.equal(run.last_status, 'ok', run.last_error ?? '')
        assert.equal((await key.get(`/v1/messages/${old}`)).status, 404, 'purged')
        assert.equal(
          await db.selectFrom('messages').select('id').where('id', '=', old).executeTakeFirst(),
          undefined,
        )
        assert.equal(await refcount(), 0, 'its blob reference is released')
        const copy = await key.get(`/v1/messages/${copied}`)
        assert.deepEqual(
          copy.body.folders.map((f: { role: string }) => f.role),
          ['inbox'],
          'a message also elsewhere only leaves Trash',
        )
        const stays = await key.get(`/v1/messages/${kept}`)
        assert.deepEqual(
          stays.body.folders.map((f: { role: string }) => f.role),
          ['trash'],
          '10 days in Trash: kept',
        )
        const trashFolder = await db
          .selectFrom('folders')
          .select('id')
          .where('mailbox_id', '=', box.id)
          .where('role', '=', 'trash')
          .executeTakeFirstOrThrow()
        const tombs = await db
          .selectFrom('expunged')
          .select('uid')
          .where('folder_id', '=', trashFolder.id)
          .execute()
        assert.equal(tombs.length, 2, 'both Trash memberships that ended left tombstones')

        clock.advance(21 * DAY)
        await s.postern.jobs.runNow('trash-purge')
        assert.equal((await key.get(`/v1/messages/${kept}`)).status, 404)
        const jobs = await s.postern.jobs.list()
        assert.equal(jobs.find((j) => j.name === 'trash-purge')?.interval_ms, DAY, 'runs daily')
      } finally {
        await s.close()
      }
    })
  })
}
