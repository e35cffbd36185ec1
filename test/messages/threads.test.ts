// Threads over real HTTP: the list (snippet, counts, participants, labels, unread and folder
// filters, cursor pages), one thread with its messages, actions on every message (read, star,
// archive, trash, spam, move, labels), bulk with a result per id, and deletion only from Trash.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { DIALECTS } from '../helpers/dialects.ts'
import type { TestServer } from '../helpers/server.ts'
import { deliver, type MailOrg, mailOrg, startMailServer, type TestMailbox, textMail } from './fixtures.ts'

for (const dialect of DIALECTS) {
  describe(`threads (${dialect})`, () => {
    let s: TestServer
    let clock: Awaited<ReturnType<typeof startMailServer>>['clock']
    let org: MailOrg

    before(async () => {
      ;({ s, clock } = await startMailServer(dialect))
      org = await mailOrg(s)
    })
    after(() => s.close())

    /** A conversation of `n` messages (root plus replies); returns the thread id and message ids. */
    async function conversation(box: TestMailbox, tag: string, n: number) {
      const ids: string[] = []
      for (let i = 0; i < n; i++) {
        clock.advance(1000)
        ids.push(
          await deliver(
            s,
            box,
            textMail({
              subject: i === 0 ? `Topic ${tag}` : `Re: Topic ${tag}`,
              messageId: `<${tag}.${i}@outside.example>`,
              inReplyTo: i === 0 ? undefined : `<${tag}.${i - 1}@outside.example>`,
              from: `person${i}@outside.example`,
              fromName: `Person ${i}`,
              to: box.address,
              body: `${tag} message ${i}`,
            }),
          ),
        )
      }
      const m = (await org.api.get(`/v1/messages/${ids[0]}`)).body
      return { thread: m.thread_id as string, ids }
    }

    const folderRoles = async (messageId: string) =>
      (await org.api.get(`/v1/messages/${messageId}`)).body.folders.map(
        (f: { role: string | null; name: string }) => f.role ?? f.name,
      )

    it('lists threads with snippet, counts, participants and labels, newest activity first', async () => {
      const box = await org.mailbox('tlist')
      const a = await conversation(box, 'a', 3)
      const b = await conversation(box, 'b', 1)
      await org.api.patch(`/v1/messages/${a.ids[0]}`, { seen: true })
      await org.api.post(`/v1/labels?mailbox=${box.id}`, { name: 'Team' })
      await org.api.patch(`/v1/messages/${a.ids[1]}`, { labels: { add: ['Team'] } })

      const r = await org.api.get(`/v1/threads?mailbox=${box.id}`)
      assert.equal(r.status, 200, r.text)
      assert.deepEqual(
        r.body.data.map((t: { id: string }) => t.id),
        [b.thread, a.thread],
      )
      const ta = r.body.data[1]
      assert.equal(ta.subject, 'Topic a')
      assert.equal(ta.snippet, 'a message 2')
      assert.equal(ta.message_count, 3)
      assert.equal(ta.unread_count, 2)
      assert.deepEqual(
        ta.participants.map((p: { address: string }) => p.address),
        ['person0@outside.example', 'person1@outside.example', 'person2@outside.example', box.address],
      )
      assert.deepEqual(
        ta.labels.map((l: { name: string }) => l.name),
        ['Team'],
      )
      assert.equal(ta.starred, false)

      const page1 = await org.api.get(`/v1/threads?mailbox=${box.id}&limit=1`)
      assert.equal(page1.body.data.length, 1)
      const page2 = await org.api.get(
        `/v1/threads?mailbox=${box.id}&limit=1&cursor=${page1.body.next_cursor}`,
      )
      assert.deepEqual(
        page2.body.data.map((t: { id: string }) => t.id),
        [a.thread],
      )
      assert.equal(page2.body.next_cursor, null)

      await org.api.patch(`/v1/threads/${b.thread}`, { read: true })
      const unread = await org.api.get(`/v1/threads?mailbox=${box.id}&unread=true`)
      assert.deepEqual(
        unread.body.data.map((t: { id: string }) => t.id),
        [a.thread],
      )
      const read = await org.api.get(`/v1/threads?mailbox=${box.id}&unread=false`)
      assert.deepEqual(
        read.body.data.map((t: { id: string }) => t.id),
        [b.thread],
      )
      const labelled = await org.api.get(`/v1/threads?mailbox=${box.id}&folder=Team`)
      assert.deepEqual(
        labelled.body.data.map((t: { id: string }) => t.id),
        [a.thread],
      )

      const one = await org.api.get(`/v1/threads/${a.thread}`)
      assert.equal(one.status, 200, one.text)
      assert.deepEqual(
        one.body.messages.map((m: { id: string }) => m.id),
        a.ids,
        'messages oldest first',
      )
      assert.equal(one.body.messages[0].text, undefined)
      const bodies = await org.api.get(`/v1/threads/${a.thread}?bodies=true`)
      assert.equal(bodies.body.messages[2].text.trim(), 'a message 2')
      assert.equal((await org.api.get('/v1/threads/thr_nope')).status, 404)
    })

    it('applies read, star, archive, spam, trash and move to every message of a thread', async () => {
      const box = await org.mailbox('tactions')
      const c = await conversation(box, 'c', 2)
      const star = await org.api.patch(`/v1/threads/${c.thread}`, { read: true, star: true })
      assert.equal(star.status, 200, star.text)
      assert.equal(star.body.unread_count, 0)
      assert.equal(star.body.starred, true)

      const archived = await org.api.patch(`/v1/threads/${c.thread}`, { archive: true })
      assert.deepEqual(
        archived.body.folders.map((f: { role: string }) => f.role),
        ['archive'],
      )
      for (const id of c.ids) assert.deepEqual(await folderRoles(id), ['archive'])
      assert.deepEqual(
        (await org.api.get(`/v1/threads?mailbox=${box.id}&folder=inbox`)).body.data,
        [],
        'archived threads leave the inbox',
      )
      await org.api.patch(`/v1/threads/${c.thread}`, { archive: false })
      for (const id of c.ids) assert.deepEqual(await folderRoles(id), ['inbox'])

      const spam = await org.api.patch(`/v1/threads/${c.thread}`, { spam: true })
      assert.deepEqual(
        spam.body.folders.map((f: { role: string }) => f.role),
        ['junk'],
      )
      const junkMsg = (await org.api.get(`/v1/messages/${c.ids[0]}`)).body
      assert.ok(junkMsg.keywords.includes('$Junk'))
      assert.deepEqual((await org.api.get(`/v1/threads?mailbox=${box.id}`)).body.data, [], 'Junk is left out')
      await org.api.patch(`/v1/threads/${c.thread}`, { spam: false })
      const notJunk = (await org.api.get(`/v1/messages/${c.ids[0]}`)).body
      assert.deepEqual(
        notJunk.folders.map((f: { role: string }) => f.role),
        ['inbox'],
      )
      assert.ok(notJunk.keywords.includes('$NotJunk') && !notJunk.keywords.includes('$Junk'))

      await org.api.post(`/v1/mailboxes/${box.id}/folders`, { name: 'Projects' })
      const moved = await org.api.patch(`/v1/threads/${c.thread}`, { move: 'Projects' })
      assert.equal(moved.status, 200, moved.text)
      for (const id of c.ids) assert.deepEqual(await folderRoles(id), ['Projects'])

      const trashed = await org.api.patch(`/v1/threads/${c.thread}`, { trash: true })
      assert.deepEqual(
        trashed.body.folders.map((f: { role: string }) => f.role),
        ['trash'],
      )
      await org.api.patch(`/v1/threads/${c.thread}`, { trash: false })
      for (const id of c.ids) assert.deepEqual(await folderRoles(id), ['inbox'])

      await org.api.post(`/v1/labels?mailbox=${box.id}`, { name: 'Tagged' })
      await org.api.patch(`/v1/threads/${c.thread}`, { labels: { add: ['Tagged'] } })
      const moveToTrash = await org.api.patch(`/v1/threads/${c.thread}`, { move: 'Trash' })
      assert.deepEqual(
        moveToTrash.body.folders.map((f: { role: string }) => f.role),
        ['trash'],
        'a move to Trash is trashing: labels go too',
      )
      await org.api.patch(`/v1/threads/${c.thread}`, { trash: false })

      const both = await org.api.patch(`/v1/threads/${c.thread}`, { trash: true, archive: true })
      assert.equal(both.status, 422)
      assert.equal(both.body.code, 'CONFLICTING_ACTIONS')
      for (const id of c.ids) assert.deepEqual(await folderRoles(id), ['inbox'], 'nothing applied')

      await org.api.post(`/v1/labels?mailbox=${box.id}`, { name: 'Keep' })
      const labelled = await org.api.patch(`/v1/threads/${c.thread}`, { labels: { add: ['Keep'] } })
      assert.deepEqual(
        labelled.body.labels.map((l: { name: string }) => l.name),
        ['Keep'],
      )
      const unlabelled = await org.api.patch(`/v1/threads/${c.thread}`, { labels: { remove: ['Keep'] } })
      assert.deepEqual(unlabelled.body.labels, [])
      assert.equal((await org.api.patch(`/v1/threads/${c.thread}`, { move: 'Nowhere' })).status, 404)
    })

    it('runs one action on many threads and reports each id', async () => {
      const box = await org.mailbox('tbulk')
      const d = await conversation(box, 'd', 1)
      const e = await conversation(box, 'e', 2)
      const r = await org.api.post('/v1/threads/bulk', {
        ids: [d.thread, e.thread, 'thr_unknown', d.thread],
        action: { archive: true, read: true },
      })
      assert.equal(r.status, 200, r.text)
      assert.deepEqual(r.body.results, [
        { id: d.thread, ok: true, status: 200 },
        { id: e.thread, ok: true, status: 200 },
        {
          id: 'thr_unknown',
          ok: false,
          status: 404,
          code: 'THREAD_NOT_FOUND',
          detail: 'No thread thr_unknown that you can read.',
        },
      ])
      for (const id of [...d.ids, ...e.ids]) assert.deepEqual(await folderRoles(id), ['archive'])
      const tooMany = await org.api.post('/v1/threads/bulk', {
        ids: Array.from({ length: 101 }, (_, i) => `thr_${i}`),
        action: { read: true },
      })
      assert.equal(tooMany.status, 400)
      const conflicting = await org.api.post('/v1/threads/bulk', {
        ids: [d.thread],
        action: { spam: true, trash: true },
      })
      assert.equal(conflicting.status, 422)
    })

    it('deletes a thread only when all its messages are only in Trash', async () => {
      const box = await org.mailbox('tdelete')
      const f = await conversation(box, 'f', 2)
      const early = await org.api.delete(`/v1/threads/${f.thread}`)
      assert.equal(early.status, 409)
      assert.equal(early.body.code, 'THREAD_NOT_IN_TRASH')
      await org.api.delete(`/v1/messages/${f.ids[0]}`)
      assert.equal(
        (await org.api.delete(`/v1/threads/${f.thread}`)).status,
        409,
        'one message is still in the inbox',
      )
      await org.api.patch(`/v1/threads/${f.thread}`, { trash: true })
      const del = await org.api.delete(`/v1/threads/${f.thread}`)
      assert.equal(del.status, 204, del.text)
      assert.equal((await org.api.get(`/v1/threads/${f.thread}`)).status, 404)
      for (const id of f.ids) assert.equal((await org.api.get(`/v1/messages/${id}`)).status, 404)
      const rows = await s.postern.store.db
        .selectFrom('messages')
        .select('id')
        .where('id', 'in', f.ids)
        .execute()
      assert.deepEqual(rows, [])
    })
  })
}
