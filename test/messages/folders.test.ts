// Folders and labels over real HTTP: list with IMAP state and counts, create (name rules,
// clashes, fresh UIDVALIDITY), rename with children, role folders protected, deletion with
// tombstones and where the messages go (Trash for a folder, Archive for a label).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { DIALECTS } from '../helpers/dialects.ts'
import type { TestServer } from '../helpers/server.ts'
import { deliver, type MailOrg, mailOrg, startMailServer, textMail } from './fixtures.ts'

for (const dialect of DIALECTS) {
  describe(`folders and labels (${dialect})`, () => {
    let s: TestServer
    let clock: Awaited<ReturnType<typeof startMailServer>>['clock']
    let org: MailOrg

    before(async () => {
      ;({ s, clock } = await startMailServer(dialect))
      org = await mailOrg(s)
    })
    after(() => s.close())

    it('lists, creates, renames and deletes folders by the rules', async () => {
      const box = await org.mailbox('folders')
      clock.advance(1000)
      const m1 = await deliver(s, box, textMail())
      clock.advance(1000)
      await deliver(s, box, textMail())
      await org.api.patch(`/v1/messages/${m1}`, { seen: true })

      const list = await org.api.get(`/v1/mailboxes/${box.address}/folders`)
      assert.equal(list.status, 200, list.text)
      const inbox = list.body.data.find((f: { role: string }) => f.role === 'inbox')
      assert.equal(inbox.name, 'INBOX')
      assert.equal(inbox.total, 2)
      assert.equal(inbox.unread, 1)
      assert.equal(inbox.uidnext, 3)
      assert.ok(inbox.highestmodseq > 0)
      assert.equal(list.body.data.length, 6)

      const created = await org.api.post(`/v1/mailboxes/${box.id}/folders`, { name: 'Projects' })
      assert.equal(created.status, 201, created.text)
      assert.equal(created.body.role, null)
      assert.equal(created.body.uidnext, 1)
      assert.equal(created.body.subscribed, true)
      const maxBefore = Math.max(...list.body.data.map((f: { uidvalidity: number }) => f.uidvalidity))
      assert.ok(created.body.uidvalidity > maxBefore, 'a new folder gets a UIDVALIDITY above all used')
      const child = await org.api.post(`/v1/mailboxes/${box.id}/folders`, { name: 'Projects/2026' })
      assert.equal(child.body.parent, 'Projects')

      for (const [name, code] of [
        ['projects', 'FOLDER_EXISTS'],
        ['inbox', 'INVALID_FOLDER_NAME'],
        ['/lead', 'INVALID_FOLDER_NAME'],
        ['a//b', 'INVALID_FOLDER_NAME'],
        ['trail/', 'INVALID_FOLDER_NAME'],
        ['wild*', 'INVALID_FOLDER_NAME'],
        ['per%cent', 'INVALID_FOLDER_NAME'],
        ['ctl\u0007', 'INVALID_FOLDER_NAME'],
        [' padded', 'INVALID_FOLDER_NAME'],
      ] as const) {
        const r = await org.api.post(`/v1/mailboxes/${box.id}/folders`, { name })
        assert.equal(r.body.code, code, `${JSON.stringify(name)}: ${r.text}`)
      }

      // Rename takes the children along and keeps UIDVALIDITY.
      await org.api.patch(`/v1/messages/${m1}`, { folders: ['Projects/2026'] })
      const renamed = await org.api.patch(`/v1/mailboxes/${box.id}/folders/${created.body.id}`, {
        name: 'Work',
      })
      assert.equal(renamed.status, 200, renamed.text)
      assert.equal(renamed.body.name, 'Work')
      assert.equal(renamed.body.uidvalidity, created.body.uidvalidity)
      const after = (await org.api.get(`/v1/mailboxes/${box.id}/folders`)).body.data
      const moved = after.find((f: { id: string }) => f.id === child.body.id)
      assert.equal(moved.name, 'Work/2026')
      assert.equal(moved.total, 1)
      const under = await org.api.patch(`/v1/mailboxes/${box.id}/folders/${created.body.id}`, {
        name: 'Work/2026/x',
      })
      assert.equal(under.status, 422)
      const clash = await org.api.patch(`/v1/mailboxes/${box.id}/folders/${created.body.id}`, {
        name: 'Sent',
      })
      assert.equal(clash.status, 409)
      assert.equal(clash.body.code, 'FOLDER_EXISTS')

      // Role folders: the inbox keeps its name, none is deleted; others may be renamed.
      assert.equal(
        (await org.api.patch(`/v1/mailboxes/${box.id}/folders/${inbox.id}`, { name: 'In' })).status,
        409,
      )
      const sent = after.find((f: { role: string }) => f.role === 'sent')
      const sentRenamed = await org.api.patch(`/v1/mailboxes/${box.id}/folders/${sent.id}`, {
        name: 'Sent Items',
      })
      assert.equal(sentRenamed.body.role, 'sent')
      const delRole = await org.api.delete(`/v1/mailboxes/${box.id}/folders/${sent.id}`)
      assert.equal(delRole.status, 409)
      assert.equal(delRole.body.code, 'ROLE_FOLDER')

      // A folder with children is not deleted; deleting one sends its only-copies to Trash.
      const parentDel = await org.api.delete(`/v1/mailboxes/${box.id}/folders/${created.body.id}`)
      assert.equal(parentDel.body.code, 'FOLDER_HAS_CHILDREN')
      const uid = (await org.api.get(`/v1/messages/${m1}`)).body.folders[0].uid
      const del = await org.api.delete(`/v1/mailboxes/${box.id}/folders/${child.body.id}`)
      assert.equal(del.status, 204, del.text)
      assert.deepEqual(
        (await org.api.get(`/v1/messages/${m1}`)).body.folders.map((f: { role: string }) => f.role),
        ['trash'],
      )
      assert.ok(uid > 0)
      const gone = await s.postern.store.db
        .selectFrom('folders')
        .select('id')
        .where('id', '=', child.body.id)
        .execute()
      assert.deepEqual(gone, [])
      assert.equal((await org.api.delete(`/v1/mailboxes/${box.id}/folders/${child.body.id}`)).status, 404)

      // A deleted and re-created name gets a new UIDVALIDITY.
      const again = await org.api.post(`/v1/mailboxes/${box.id}/folders`, { name: 'Work/2026' })
      assert.ok(again.body.uidvalidity > created.body.uidvalidity)

      const unsub = await org.api.patch(`/v1/mailboxes/${box.id}/folders/${again.body.id}`, {
        subscribed: false,
      })
      assert.equal(unsub.body.subscribed, false)
      const other = await org.mailbox('folders-other')
      assert.equal(
        (await org.api.patch(`/v1/mailboxes/${other.id}/folders/${again.body.id}`, { name: 'x' })).status,
        404,
        'a folder is reached only through its own mailbox',
      )
    })

    it('shows labels as role-less folders; deleting one leaves its messages in Archive', async () => {
      const box = await org.mailbox('labelview')
      const two = await org.api.get('/v1/labels')
      assert.equal(two.status, 422, 'several mailboxes: ?mailbox= needed')
      const key = org.api.withKey(box.key)
      const none = await key.get('/v1/labels')
      assert.deepEqual(none.body, { data: [], next_cursor: null })
      const created = await key.post('/v1/labels', { name: 'Receipts' })
      assert.equal(created.status, 201, created.text)
      assert.equal(created.body.mailbox_id, box.id)
      const list = await org.api.get(`/v1/labels?mailbox=${box.id}`)
      assert.deepEqual(
        list.body.data.map((l: { name: string }) => l.name),
        ['Receipts'],
      )
      assert.equal((await org.api.post(`/v1/labels?mailbox=${box.id}`, { name: 'RECEIPTS' })).status, 409)

      clock.advance(1000)
      const only = await deliver(s, box, textMail())
      clock.advance(1000)
      const also = await deliver(s, box, textMail())
      await org.api.patch(`/v1/messages/${only}`, { folders: ['Receipts'] })
      await org.api.patch(`/v1/messages/${also}`, { labels: { add: ['Receipts'] } })
      const counted = (await org.api.get(`/v1/labels?mailbox=${box.id}`)).body.data[0]
      assert.equal(counted.total, 2)
      assert.equal(counted.unread, 2)

      const renamed = await org.api.patch(`/v1/labels/${created.body.id}`, { name: 'Bills' })
      assert.equal(renamed.body.name, 'Bills')
      const folders = (await org.api.get(`/v1/mailboxes/${box.id}/folders`)).body.data
      const inboxId = folders.find((f: { role: string }) => f.role === 'inbox').id
      assert.equal(
        (await org.api.patch(`/v1/labels/${inboxId}`, { name: 'x' })).status,
        404,
        'a role folder is no label',
      )
      assert.equal((await org.api.delete(`/v1/labels/${inboxId}`)).status, 404)

      assert.equal((await org.api.delete(`/v1/labels/${created.body.id}`)).status, 204)
      const roles = async (id: string) =>
        (await org.api.get(`/v1/messages/${id}`)).body.folders.map((f: { role: string }) => f.role)
      assert.deepEqual(await roles(only), ['archive'])
      assert.deepEqual(await roles(also), ['inbox'])
      assert.equal((await org.api.patch(`/v1/labels/${created.body.id}`, { name: 'y' })).status, 404)
    })
  })
}
