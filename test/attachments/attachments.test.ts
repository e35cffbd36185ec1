// Uploaded attachments over a listening server with fetch: upload as multipart/form-data,
// metadata, download headers, use by id in POST /v1/emails (delivered to a hosted mailbox with
// the bytes intact), the size limit on both paths (Content-Length and streamed), malformed
// uploads, who may see which upload, and the purge of expired uploads. After every refusal
// nothing of the upload is left: no row, no blob, no temp file.

import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { purgeAttachments } from '../../src/services/attachments/purge.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type ImapFixture, imapFixture } from '../imap/helpers.ts'
import { PDF_BYTES } from '../messages/fixtures.ts'
import { newKey, upload, waitFor } from './helpers.ts'

const LIMIT = 65_536

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

for (const dialect of DIALECTS) {
  describe(`attachments API (${dialect})`, () => {
    let f: ImapFixture
    let sendKey: string
    let annKey: string
    let bobKey: string

    /** Rows, blobs and temp files, to prove a refused upload left nothing behind. */
    const footprint = async () => {
      const db = f.s.postern.store.db
      const rows = await db.selectFrom('attachments').select('id').execute()
      const blobs = await db.selectFrom('blobs').select('sha256').execute()
      const tmp = await readdir(join(f.s.config.blobs.dir as string, 'tmp')).catch(() => [])
      return { rows: rows.length, blobs: blobs.length, tmp: tmp.length }
    }

    before(async () => {
      f = await imapFixture(dialect, { env: { POSTERN_ATTACHMENTS_MAX_BYTES: String(LIMIT) } })
      sendKey = await newKey(f.api, 'send')
      annKey = await newKey(f.api, 'mailbox', f.ann.id)
      bobKey = await newKey(f.api, 'mailbox', f.bob.id)
    })
    after(() => f.close())

    it('uploads a file, shows its metadata and serves it as a download', async () => {
      const up = await upload(f.s.url, sendKey, [
        { name: 'Rechnung März.pdf', bytes: PDF_BYTES, type: 'application/pdf' },
      ])
      assert.equal(up.status, 201, JSON.stringify(up.body))
      assert.match(up.body.id, /^att_/)
      assert.equal(up.body.filename, 'Rechnung März.pdf')
      assert.equal(up.body.content_type, 'application/pdf')
      assert.equal(up.body.size, PDF_BYTES.length)
      assert.equal(up.body.sha256, sha(PDF_BYTES))
      assert.deepEqual(up.body.draft_ids, [])
      assert.ok(Date.parse(up.body.expires_at) > Date.parse(up.body.created_at))

      const meta = await fetch(`${f.s.url}/v1/attachments/${up.body.id}`, {
        headers: { authorization: `Bearer ${sendKey}` },
      })
      assert.equal(meta.status, 200)
      assert.deepEqual(await meta.json(), up.body)

      const dl = await fetch(`${f.s.url}/v1/attachments/${up.body.id}/content`, {
        headers: { authorization: `Bearer ${sendKey}` },
      })
      assert.equal(dl.status, 200)
      assert.equal(dl.headers.get('content-type'), 'application/pdf')
      assert.equal(dl.headers.get('x-content-type-options'), 'nosniff')
      assert.equal(dl.headers.get('content-security-policy'), 'sandbox')
      const cd = dl.headers.get('content-disposition') ?? ''
      assert.match(
        cd,
        /^attachment; filename="Rechnung M_rz\.pdf"; filename\*=UTF-8''Rechnung%20M%C3%A4rz\.pdf$/,
      )
      assert.deepEqual(Buffer.from(await dl.arrayBuffer()), PDF_BYTES)

      // A type that is not a media type is stored as application/octet-stream.
      const odd = await upload(f.s.url, sendKey, [
        { name: 'x.bin', bytes: Buffer.from('abc'), type: 'not a type' },
      ])
      assert.equal(odd.status, 201)
      assert.equal(odd.body.content_type, 'application/octet-stream')
    })

    it('sends an upload by id; the recipient gets the bytes intact', async () => {
      const bytes = randomBytes(40_000)
      const up = await upload(f.s.url, annKey, [
        { name: 'data.bin', bytes, type: 'application/octet-stream' },
      ])
      assert.equal(up.status, 201, JSON.stringify(up.body))
      assert.equal(up.body.mailbox_id, f.ann.id)
      const sent = await f.api.withKey(annKey).post('/v1/emails', {
        from: f.ann.address,
        to: f.bob.address,
        subject: 'Upload by id',
        text: 'See the attachments.',
        attachments: [
          { id: up.body.id },
          { filename: 'inline.txt', content: Buffer.from('inline').toString('base64') },
        ],
      })
      assert.equal(sent.status, 202, sent.text)
      const msg = await waitFor('delivery to bob', async () => {
        const r = await f.api.get(`/v1/messages?mailbox=${f.bob.id}`)
        return r.body.data?.find((m: { subject: string }) => m.subject === 'Upload by id')
      })
      const detail = await f.api.get(`/v1/messages/${msg.id}`)
      const names = detail.body.attachments.map((a: { filename: string }) => a.filename)
      assert.deepEqual(names, ['data.bin', 'inline.txt'])
      const got = await fetch(`${f.s.url}/v1/messages/${msg.id}/attachments/0`, {
        headers: { cookie: f.api.cookie as string },
      })
      assert.equal(got.status, 200)
      assert.deepEqual(Buffer.from(await got.arrayBuffer()), bytes)
      // The sender's mailbox key filed a Sent copy (save_sent_copy is on by default).
      const copies = await f.api.get(`/v1/messages?mailbox=${f.ann.id}&folder=sent`)
      assert.ok(copies.body.data.some((m: { subject: string }) => m.subject === 'Upload by id'))
    })

    it('refuses an upload over attachments.max_bytes with 413 and keeps nothing', async () => {
      const exact = await upload(f.s.url, sendKey, [{ name: 'exact.bin', bytes: randomBytes(LIMIT) }])
      assert.equal(exact.status, 201, 'exactly the limit is allowed')
      const was = await footprint()
      // Streamed: the Content-Length is within the framing allowance, the file one byte over.
      const over = await upload(f.s.url, sendKey, [{ name: 'over.bin', bytes: randomBytes(LIMIT + 1) }])
      assert.equal(over.status, 413, JSON.stringify(over.body))
      assert.equal(over.body.code, 'ATTACHMENT_TOO_LARGE')
      assert.match(over.headers.get('content-type') ?? '', /^application\/problem\+json/)
      // Refused by Content-Length before the body is read.
      const huge = await upload(f.s.url, sendKey, [{ name: 'huge.bin', bytes: randomBytes(LIMIT * 16) }])
      assert.equal(huge.status, 413)
      assert.equal(huge.body.code, 'ATTACHMENT_TOO_LARGE')
      assert.deepEqual(await footprint(), was)
      // The server still answers on a new request afterwards.
      const ok = await upload(f.s.url, sendKey, [{ name: 'after.txt', bytes: Buffer.from('still here') }])
      assert.equal(ok.status, 201)
    })

    it('refuses malformed uploads with a clear problem and keeps nothing', async () => {
      const was = await footprint()
      const json = await f.api.withKey(sendKey).post('/v1/attachments', { file: 'aGVsbG8=' })
      assert.equal(json.status, 422, json.text)
      assert.equal(json.body.code, 'MULTIPART_REQUIRED')
      const none = await upload(f.s.url, sendKey, [], { note: 'no file here' })
      assert.equal(none.status, 422)
      assert.equal(none.body.code, 'FILE_REQUIRED')
      const two = await upload(f.s.url, sendKey, [
        { name: 'a.txt', bytes: Buffer.from('a') },
        { name: 'b.txt', bytes: Buffer.from('b') },
      ])
      assert.equal(two.status, 422, JSON.stringify(two.body))
      assert.equal(two.body.code, 'ONE_FILE_PER_UPLOAD')
      const blank = await upload(f.s.url, sendKey, [{ name: ' ', bytes: Buffer.from('x') }])
      assert.equal(blank.status, 422, JSON.stringify(blank.body))
      assert.equal(blank.body.code, 'INVALID_ATTACHMENT')
      // A body cut off in the middle of the multipart framing.
      const cut = await fetch(`${f.s.url}/v1/attachments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${sendKey}`, 'content-type': 'multipart/form-data; boundary=XyZ' },
        body: '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhalf a file',
      })
      assert.equal(cut.status, 422, await cut.clone().text())
      assert.equal(((await cut.json()) as { code: string }).code, 'INVALID_MULTIPART')
      assert.deepEqual(await footprint(), was)
    })

    it('shows an upload only to who may use it', async () => {
      const up = await upload(f.s.url, annKey, [{ name: 'ann.txt', bytes: Buffer.from("ann's") }])
      assert.equal(up.status, 201)
      const path = `/v1/attachments/${up.body.id}`
      // Another mailbox's key: 404, and it cannot send it either.
      const bob = f.api.withKey(bobKey)
      assert.equal((await bob.get(path)).status, 404)
      assert.equal((await bob.get(`${path}/content`)).status, 404)
      const stolen = await bob.post('/v1/emails', {
        from: f.bob.address,
        to: f.ann.address,
        subject: 'x',
        text: 'x',
        attachments: [{ id: up.body.id }],
      })
      assert.equal(stolen.status, 404, stolen.text)
      assert.equal(stolen.body.code, 'ATTACHMENT_NOT_FOUND')
      assert.equal(stolen.body.errors[0].field, 'attachments[0].id')
      // An org-wide send key sees it; a session sees only its own uploads.
      assert.equal((await f.api.withKey(sendKey).get(path)).status, 200)
      assert.equal((await f.api.get(path)).status, 404)
      // A read key lacks the send scope.
      const read = await newKey(f.api, 'read')
      const refused = await upload(f.s.url, read, [{ name: 'r.txt', bytes: Buffer.from('r') }])
      assert.equal(refused.status, 403)
      assert.equal(refused.body.code, 'MISSING_SCOPE')
      assert.equal((await f.api.withKey(read).get(path)).status, 403)
      assert.equal((await f.api.withKey(sendKey).get('/v1/attachments/att_nonexistent')).status, 404)
    })

    it('purges expired uploads and releases their blobs', async () => {
      const bytes = randomBytes(1000)
      const up = await upload(f.s.url, sendKey, [{ name: 'old.bin', bytes }])
      assert.equal(up.status, 201)
      const p = f.s.postern
      const ctx = { store: p.store, blobs: p.blobs, clock: { now: () => Date.now() } }
      await purgeAttachments(ctx)
      assert.equal(
        (await f.api.withKey(sendKey).get(`/v1/attachments/${up.body.id}`)).status,
        200,
        'not yet expired',
      )
      const later = { ...ctx, clock: { now: () => Date.parse(up.body.expires_at) + 1 } }
      const r = await purgeAttachments(later)
      assert.ok(r.deleted >= 1)
      assert.equal((await f.api.withKey(sendKey).get(`/v1/attachments/${up.body.id}`)).status, 404)
      const blob = await p.store.db
        .selectFrom('blobs')
        .select(['refcount', 'namespace'])
        .where('sha256', '=', sha(bytes))
        .executeTakeFirstOrThrow()
      assert.equal(Number(blob.refcount), 0, 'the blob is left for the collector')
      await new Promise((r) => setTimeout(r, 5))
      assert.ok((await p.blobs.collect(1)) >= 1, 'the collector deletes it')
      assert.equal(await p.blobs.exists(blob.namespace, sha(bytes)), false)
    })

    it('keeps an expired upload while a draft carries it', async () => {
      const up = await upload(f.s.url, annKey, [{ name: 'kept.txt', bytes: Buffer.from('kept by a draft') }])
      const ann = f.api.withKey(annKey)
      const draft = await ann.post('/v1/drafts', { subject: 'Carries it', attachments: [up.body.id] })
      assert.equal(draft.status, 201, draft.text)
      const p = f.s.postern
      const later = {
        store: p.store,
        blobs: p.blobs,
        clock: { now: () => Date.parse(up.body.expires_at) + 1 },
      }
      await purgeAttachments(later)
      assert.equal((await ann.get(`/v1/attachments/${up.body.id}`)).status, 200, 'a draft keeps it')
      assert.equal((await ann.delete(`/v1/drafts/${draft.body.id}`)).status, 200)
      await purgeAttachments(later)
      assert.equal((await ann.get(`/v1/attachments/${up.body.id}`)).status, 404, 'gone with the draft')
    })
  })
}
