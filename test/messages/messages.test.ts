// Messages over real HTTP: list, filters and cursor pages; one message parsed; raw and
// attachment downloads and their headers; broken and absurd MIME; flags, keywords, folders
// and labels with their IMAP bookkeeping (UIDs, MODSEQ, tombstones); delete to Trash, then
// for good (blob reference released).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { ApiResponse } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import type { TestServer } from '../helpers/server.ts'
import {
  deliver,
  type MailOrg,
  mailOrg,
  manyPartsMail,
  PDF_BYTES,
  PNG_BYTES,
  richMail,
  startMailServer,
  textMail,
} from './fixtures.ts'

for (const dialect of DIALECTS) {
  describe(`messages (${dialect})`, () => {
    let s: TestServer
    let clock: Awaited<ReturnType<typeof startMailServer>>['clock']
    let org: MailOrg

    before(async () => {
      ;({ s, clock } = await startMailServer(dialect))
      org = await mailOrg(s)
    })
    after(() => s.close())

    const db = () => s.postern.store.db
    const memberships = (messageId: string) =>
      db()
        .selectFrom('folder_messages as fm')
        .innerJoin('folders as f', 'f.id', 'fm.folder_id')
        .select(['f.name', 'f.role', 'fm.uid', 'fm.modseq', 'fm.folder_id'])
        .where('fm.message_id', '=', messageId)
        .orderBy('f.name')
        .execute()

    it('lists newest first, filters by folder, thread and unread, and pages with a cursor', async () => {
      const box = await org.mailbox('list')
      const ids: string[] = []
      for (let i = 0; i < 7; i++) {
        clock.advance(1000)
        ids.push(await deliver(s, box, textMail({ subject: `Message ${i}`, body: `number ${i}` })))
      }
      const all = await org.api.get(`/v1/messages?mailbox=${box.id}`)
      assert.equal(all.status, 200, all.text)
      assert.deepEqual(
        all.body.data.map((m: { id: string }) => m.id),
        [...ids].reverse(),
      )
      const first = all.body.data[0]
      assert.equal(first.subject, 'Message 6')
      assert.deepEqual(first.from, { name: 'Sender', address: 'sender@outside.example' })
      assert.equal(first.seen, false)
      assert.equal(first.preview, 'number 6')
      assert.match(first.received_at, /^2026-03-01T12:00:07\.000Z$/)
      assert.deepEqual(
        first.folders.map((f: { role: string }) => f.role),
        ['inbox'],
      )
      assert.equal(all.body.next_cursor, null)

      // Pages of 3: 3 + 3 + 1, no overlap, same order.
      const seen: string[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const page: ApiResponse = await org.api.get(
          `/v1/messages?mailbox=${encodeURIComponent(box.address)}&limit=3${cursor ? `&cursor=${cursor}` : ''}`,
        )
        assert.equal(page.status, 200, page.text)
        seen.push(...page.body.data.map((m: { id: string }) => m.id))
        cursor = page.body.next_cursor
        pages++
      } while (cursor)
      assert.equal(pages, 3)
      assert.deepEqual(seen, [...ids].reverse())
      const bad = await org.api.get(`/v1/messages?mailbox=${box.id}&cursor=not-a-cursor`)
      assert.equal(bad.status, 422)
      assert.equal(bad.body.code, 'INVALID_CURSOR')

      // Read two, then unread=true lists the other five.
      for (const id of ids.slice(0, 2))
        assert.equal((await org.api.patch(`/v1/messages/${id}`, { seen: true })).status, 200)
      const unread = await org.api.get(`/v1/messages?mailbox=${box.id}&unread=true`)
      assert.deepEqual(
        unread.body.data.map((m: { id: string }) => m.id),
        ids.slice(2).reverse(),
      )
      const read = await org.api.get(`/v1/messages?mailbox=${box.id}&unread=false`)
      assert.equal(read.body.data.length, 2)

      // Folder by role, name or id; Trash and Junk are left out without a folder.
      await org.api.delete(`/v1/messages/${ids[0]}`)
      const inbox = await org.api.get(`/v1/messages?mailbox=${box.id}&folder=inbox`)
      assert.equal(inbox.body.data.length, 6)
      const trash = await org.api.get(`/v1/messages?mailbox=${box.id}&folder=Trash`)
      assert.deepEqual(
        trash.body.data.map((m: { id: string }) => m.id),
        [ids[0]],
      )
      const trashId = trash.body.data[0].folders[0].id
      const byId = await org.api.get(`/v1/messages?folder=${trashId}`)
      assert.equal(byId.status, 200, 'a folder id names the mailbox too')
      assert.equal(byId.body.data.length, 1)
      assert.equal((await org.api.get(`/v1/messages?mailbox=${box.id}`)).body.data.length, 6)
      assert.equal((await org.api.get(`/v1/messages?mailbox=${box.id}&folder=nope`)).status, 404)

      // Thread filter: a reply joins the first message's thread.
      clock.advance(1000)
      const root = await deliver(s, box, textMail({ subject: 'Plans', messageId: '<root@x>' }))
      clock.advance(1000)
      const reply = await deliver(
        s,
        box,
        textMail({ subject: 'Re: Plans', inReplyTo: '<root@x>', references: '<root@x>' }),
      )
      const rootMsg = (await org.api.get(`/v1/messages/${root}`)).body
      const inThread = await org.api.get(`/v1/messages?thread=${rootMsg.thread_id}`)
      assert.deepEqual(
        inThread.body.data.map((m: { id: string }) => m.id),
        [reply, root],
      )
    })

    it('needs ?mailbox= when the caller reads several mailboxes, not when it reads one', async () => {
      await org.mailbox('second')
      const r = await org.api.get('/v1/messages')
      assert.equal(r.status, 422)
      assert.equal(r.body.code, 'MAILBOX_REQUIRED')
      const box = await org.mailbox('solo', { owned: false })
      const key = org.api.withKey(box.key)
      clock.advance(1000)
      const id = await deliver(s, box, textMail({ subject: 'For the key' }))
      const own = await key.get('/v1/messages')
      assert.equal(own.status, 200, 'a mailbox key needs no ?mailbox=')
      assert.deepEqual(
        own.body.data.map((m: { id: string }) => m.id),
        [id],
      )
    })

    it('returns parsed fields, text and HTML as stored, headers, attachments, folders and flags', async () => {
      const box = await org.mailbox('rich')
      clock.advance(1000)
      const id = await deliver(s, box, richMail())
      const r = await org.api.get(`/v1/messages/${id}`)
      assert.equal(r.status, 200, r.text)
      const m = r.body
      assert.equal(m.subject, 'Résumé attached')
      assert.deepEqual(m.from, { name: 'Ann Example', address: 'ann@outside.example' })
      assert.deepEqual(m.to, [
        { name: 'Bob', address: 'bob@mail.example' },
        { name: '', address: 'carl@outside.example' },
      ])
      assert.deepEqual(m.cc, [{ name: 'Dana D.', address: 'dana@outside.example' }])
      assert.deepEqual(m.reply_to, [{ name: '', address: 'replies@outside.example' }])
      assert.equal(m.sent_at, '2026-03-02T09:30:00.000Z')
      assert.equal(m.message_id_header, '<rich@outside.example>')
      assert.equal(m.envelope_from, 'sender@outside.example')
      assert.equal(m.text.trim(), 'Café plans for Tuesday.')
      assert.match(m.html, /<img src="cid:logo@x">/, 'cid links are kept')
      assert.match(m.html, /<script>alert\(1\)<\/script>/, 'html is returned as stored')
      assert.equal(m.has_attachments, true)
      assert.equal(m.parse_warning, null)
      assert.deepEqual(m.attachments, [
        {
          index: 0,
          filename: 'résumé.pdf',
          content_type: 'application/pdf',
          size: PDF_BYTES.length,
          content_id: null,
          disposition: 'attachment',
        },
        {
          index: 1,
          filename: 'logo.png',
          content_type: 'image/png',
          size: PNG_BYTES.length,
          content_id: 'logo@x',
          disposition: 'inline',
        },
      ])
      const header = (name: string) => m.headers.find((h: { name: string }) => h.name === name)?.value
      assert.equal(header('X-Custom'), 'folded value', 'headers are unfolded')
      assert.match(header('Received') ?? '', /by mx\.postern\.test/, 'the trace header of delivery is there')
      assert.equal(header('Subject'), '=?UTF-8?Q?R=C3=A9sum=C3=A9_attached?=')
      assert.deepEqual(
        m.folders.map((f: { role: string; uid: number }) => [f.role, f.uid]),
        [['inbox', 1]],
      )
      assert.equal(m.seen, false)
      assert.equal(m.flagged, false)
      assert.equal(m.answered, false)
      assert.deepEqual(m.keywords, [])
      assert.equal((await org.api.get('/v1/messages/msg_nope')).status, 404)
    })

    it('serves the raw message and attachments as downloads with safe headers', async () => {
      const box = await org.mailbox('downloads')
      clock.advance(1000)
      const id = await deliver(s, box, richMail())
      const raw = await fetch(`${s.url}/v1/messages/${id}/raw`, { headers: { cookie: org.api.cookie ?? '' } })
      assert.equal(raw.status, 200)
      assert.equal(raw.headers.get('content-type'), 'message/rfc822')
      assert.equal(raw.headers.get('x-content-type-options'), 'nosniff')
      assert.equal(raw.headers.get('content-security-policy'), 'sandbox')
      assert.equal(
        raw.headers.get('content-disposition'),
        `attachment; filename="${id}.eml"; filename*=UTF-8''${id}.eml`,
      )
      const rawText = await raw.text()
      assert.match(rawText, /^Received: from client\.outside\.example/)
      assert.ok(rawText.endsWith(richMail()), 'the stored bytes are the received ones after the trace fields')

      const pdf = await fetch(`${s.url}/v1/messages/${id}/attachments/0`, {
        headers: { cookie: org.api.cookie ?? '' },
      })
      assert.equal(pdf.status, 200)
      assert.equal(pdf.headers.get('content-type'), 'application/pdf')
      assert.equal(pdf.headers.get('x-content-type-options'), 'nosniff')
      assert.equal(pdf.headers.get('content-security-policy'), 'sandbox')
      assert.equal(
        pdf.headers.get('content-disposition'),
        `attachment; filename="r_sum_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`,
      )
      assert.deepEqual(Buffer.from(await pdf.arrayBuffer()), PDF_BYTES)
      const png = await fetch(`${s.url}/v1/messages/${id}/attachments/1`, {
        headers: { cookie: org.api.cookie ?? '' },
      })
      assert.deepEqual(Buffer.from(await png.arrayBuffer()), PNG_BYTES)
      const missing = await org.api.get(`/v1/messages/${id}/attachments/2`)
      assert.equal(missing.status, 404)
      assert.equal(missing.body.code, 'ATTACHMENT_NOT_FOUND')
      assert.equal((await org.api.get(`/v1/messages/${id}/attachments/-1`)).status, 400)
    })

    it('lists broken and absurd MIME, shows it flattened, and keeps the raw bytes readable', async () => {
      const box = await org.mailbox('broken')
      clock.advance(1000)
      const garbage = Buffer.concat([
        Buffer.from('Subject: broken \xff\xfe\r\nContent-Type: multipart/mixed; boundary=\r\n', 'latin1'),
        Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0a, 0x0d, 0x00]),
      ])
      const broken = await deliver(s, box, garbage)
      clock.advance(1000)
      const absurd = await deliver(s, box, manyPartsMail(1500, 'Absurd'))
      const list = await org.api.get(`/v1/messages?mailbox=${box.id}`)
      assert.deepEqual(
        list.body.data.map((m: { id: string }) => m.id),
        [absurd, broken],
      )
      const started = Date.now()
      const a = await org.api.get(`/v1/messages/${absurd}`)
      assert.equal(a.status, 200, a.text)
      assert.ok(Date.now() - started < 4000, 'an absurd message does not hold up the request')
      assert.match(a.body.parse_warning, /more than 1000 MIME parts/)
      assert.equal(a.body.text, null)
      assert.equal(a.body.headers.find((h: { name: string }) => h.name === 'Subject')?.value, 'Absurd')
      const absurdRaw = await fetch(`${s.url}/v1/messages/${absurd}/raw`, {
        headers: { cookie: org.api.cookie ?? '' },
      })
      assert.equal(absurdRaw.status, 200)
      assert.match(await absurdRaw.text(), /part 1499/)

      const b = await org.api.get(`/v1/messages/${broken}`)
      assert.equal(b.status, 200, b.text)
      const raw = await fetch(`${s.url}/v1/messages/${broken}/raw`, {
        headers: { cookie: org.api.cookie ?? '' },
      })
      assert.equal(raw.status, 200)
      const bytes = Buffer.from(await raw.arrayBuffer())
      assert.ok(
        bytes.subarray(bytes.length - garbage.length).equals(garbage),
        'raw bytes come back unchanged',
      )
    })

    it('changes flags and keywords with a new MODSEQ, and validates keywords', async () => {
      const box = await org.mailbox('flags')
      clock.advance(1000)
      const id = await deliver(s, box, textMail())
      const before = (await memberships(id))[0]
      assert.ok(before)
      const r = await org.api.patch(`/v1/messages/${id}`, {
        seen: true,
        flagged: true,
        keywords: { add: ['$Important', 'project-x', 'odd}~|chars'] },
      })
      assert.equal(r.status, 200, r.text)
      assert.equal(r.body.seen, true)
      assert.equal(r.body.flagged, true)
      assert.equal(r.body.answered, false)
      assert.deepEqual(r.body.keywords, ['$Important', 'odd}~|chars', 'project-x'])
      const afterFlags = (await memberships(id))[0]
      assert.ok(afterFlags && afterFlags.modseq > before.modseq, 'the membership got a higher MODSEQ')
      assert.equal(afterFlags.uid, before.uid, 'flags keep the UID')
      const folder = await db()
        .selectFrom('folders')
        .select('highestmodseq')
        .where('id', '=', before.folder_id)
        .executeTakeFirstOrThrow()
      assert.equal(folder.highestmodseq, afterFlags.modseq)

      const r2 = await org.api.patch(`/v1/messages/${id}`, {
        keywords: { remove: ['$important', 'odd}~|chars'] },
        seen: false,
      })
      assert.deepEqual(r2.body.keywords, ['project-x'], 'keywords match ignoring case')
      assert.equal(r2.body.seen, false)
      assert.ok(((await memberships(id))[0]?.modseq ?? 0) > afterFlags.modseq)

      const unchanged = (await memberships(id))[0]?.modseq
      assert.equal((await org.api.patch(`/v1/messages/${id}`, { seen: false })).status, 200)
      assert.equal((await memberships(id))[0]?.modseq, unchanged, 'no change, no new MODSEQ')

      for (const bad of ['has space', 'paren(', '\\Seen', 'quote"', 'star*', 'brace{', 'bracket]', 'é', '']) {
        const res = await org.api.patch(`/v1/messages/${id}`, { keywords: { add: [bad] } })
        assert.ok(
          res.status === 422 || res.status === 400,
          `${JSON.stringify(bad)}: ${res.status} ${res.text}`,
        )
      }
      const bad = await org.api.patch(`/v1/messages/${id}`, { keywords: { add: ['ok', 'not ok'] } })
      assert.equal(bad.body.code, 'INVALID_KEYWORD')
      assert.deepEqual(
        (await org.api.get(`/v1/messages/${id}`)).body.keywords,
        ['project-x'],
        'nothing applied',
      )
    })

    it('moves between folders with a new UID in the target and a tombstone in the source', async () => {
      const box = await org.mailbox('moves')
      clock.advance(1000)
      const other = await deliver(s, box, textMail())
      clock.advance(1000)
      const id = await deliver(s, box, textMail())
      await org.api.patch(`/v1/messages/${other}`, { folders: ['archive'] })
      const [inbox] = await memberships(id)
      assert.ok(inbox)
      const r = await org.api.patch(`/v1/messages/${id}`, { folders: ['Archive'] })
      assert.equal(r.status, 200, r.text)
      assert.deepEqual(
        r.body.folders.map((f: { role: string; uid: number }) => [f.role, f.uid]),
        [['archive', 2]],
        'the next UID of Archive',
      )
      const tomb = await db()
        .selectFrom('expunged')
        .selectAll()
        .where('folder_id', '=', inbox.folder_id)
        .where('uid', '=', inbox.uid)
        .executeTakeFirst()
      assert.ok(tomb, 'the inbox UID has a tombstone')
      assert.ok(tomb.modseq > inbox.modseq)
      const back = await org.api.patch(`/v1/messages/${id}`, { folders: ['inbox', 'archive'] })
      assert.deepEqual(
        back.body.folders.map((f: { role: string; uid: number }) => [f.role, f.uid]).sort(),
        [
          ['archive', 2],
          ['inbox', 3],
        ],
        'a UID is never reused',
      )
      const none = await org.api.patch(`/v1/messages/${id}`, { folders: [] })
      assert.equal(none.status, 400)
      assert.equal((await org.api.patch(`/v1/messages/${id}`, { folders: ['Nowhere'] })).status, 404)
    })

    it('adds and removes labels; a message losing its last folder lands in Archive', async () => {
      const box = await org.mailbox('labels')
      const work = await org.api.post(`/v1/labels?mailbox=${box.id}`, { name: 'Work' })
      assert.equal(work.status, 201, work.text)
      await org.api.post(`/v1/labels?mailbox=${box.id}`, { name: 'Later' })
      clock.advance(1000)
      const id = await deliver(s, box, textMail())
      const r = await org.api.patch(`/v1/messages/${id}`, { labels: { add: [work.body.id, 'later'] } })
      assert.equal(r.status, 200, r.text)
      assert.deepEqual(
        r.body.labels.map((l: { name: string }) => l.name),
        ['Later', 'Work'],
      )
      assert.equal(r.body.folders.length, 3)
      const byLabel = await org.api.get(`/v1/messages?mailbox=${box.id}&folder=Work`)
      assert.deepEqual(
        byLabel.body.data.map((m: { id: string }) => m.id),
        [id],
      )
      const notLabel = await org.api.patch(`/v1/messages/${id}`, { labels: { add: ['inbox'] } })
      assert.equal(notLabel.status, 404, 'role folders are not labels')
      assert.equal(notLabel.body.code, 'LABEL_NOT_FOUND')
      await org.api.patch(`/v1/messages/${id}`, { folders: ['Work'] })
      const last = await org.api.patch(`/v1/messages/${id}`, { labels: { remove: ['Work'] } })
      assert.deepEqual(
        last.body.folders.map((f: { role: string }) => f.role),
        ['archive'],
      )
    })

    it('deletes to Trash, then for good from Trash: rows, index and blob reference go', async () => {
      const box = await org.mailbox('delete')
      clock.advance(1000)
      const id = await deliver(s, box, textMail({ subject: 'Doomed', body: 'zebracorn' }))
      const row = await db().selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
      const refs = async () =>
        Number(
          (
            await db()
              .selectFrom('blobs')
              .select('refcount')
              .where('namespace', '=', row.org_id)
              .where('sha256', '=', row.blob_sha256)
              .executeTakeFirstOrThrow()
          ).refcount,
        )
      const used = async () =>
        Number(
          (
            await db()
              .selectFrom('mailboxes')
              .select('used_bytes')
              .where('id', '=', box.id)
              .executeTakeFirstOrThrow()
          ).used_bytes,
        )
      assert.equal(await refs(), 1)
      const usedBefore = await used()
      const [inbox] = await memberships(id)

      const first = await org.api.delete(`/v1/messages/${id}`)
      assert.equal(first.status, 200, first.text)
      assert.deepEqual(first.body, { id, result: 'trashed' })
      assert.deepEqual(
        (await memberships(id)).map((m) => m.role),
        ['trash'],
      )
      assert.equal(await refs(), 1)
      const found = await org.api.get(`/v1/search?mailbox=${box.id}&q=zebracorn in:trash`)
      assert.equal(found.body.data.length, 1)

      const [trash] = await memberships(id)
      const second = await org.api.delete(`/v1/messages/${id}`)
      assert.deepEqual(second.body, { id, result: 'deleted' })
      assert.equal((await org.api.get(`/v1/messages/${id}`)).status, 404)
      assert.equal(
        await db().selectFrom('messages').select('id').where('id', '=', id).executeTakeFirst(),
        undefined,
      )
      assert.equal(await refs(), 0, 'the blob reference is released')
      assert.equal(await used(), usedBefore - Number(row.size))
      for (const m of [inbox, trash]) {
        assert.ok(m)
        const tomb = await db()
          .selectFrom('expunged')
          .select('uid')
          .where('folder_id', '=', m.folder_id)
          .where('uid', '=', m.uid)
          .executeTakeFirst()
        assert.ok(tomb, `${m.name} has a tombstone`)
      }
      const gone = await org.api.get(`/v1/search?mailbox=${box.id}&q=zebracorn in:trash`)
      assert.equal(gone.body.data.length, 0, 'the index no longer finds it')
      const thread = await db()
        .selectFrom('threads')
        .select('id')
        .where('id', '=', row.thread_id as string)
        .executeTakeFirst()
      assert.equal(thread, undefined, 'the thread went with its only message')
      assert.equal((await org.api.delete(`/v1/messages/${id}`)).status, 404)
    })
  })
}
