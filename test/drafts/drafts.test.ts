// Drafts over a listening server (fetch) and a real IMAP client (imapflow): create, list, read,
// update (IMAP sees the old message expunged and the new one arrive), delete, send (delivered
// with the upload intact, moved to Sent, gone from Drafts); a draft a mail client APPENDed is
// listed, adopted on its first API update and sendable; refusals (foreign From, bad address,
// unknown upload, no recipient, other mailbox, wrong scope) keep everything as it was; with
// save_sent_copy off a sent draft leaves no Sent copy.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { ImapFlow } from 'imapflow'
import { newKey, upload, waitFor } from '../attachments/helpers.ts'
import type { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type ImapFixture, imapFixture, PASSWORD } from '../imap/helpers.ts'

async function imap(f: ImapFixture): Promise<ImapFlow> {
  const c = new ImapFlow({
    host: '127.0.0.1',
    port: f.imapsPort,
    secure: true,
    tls: { rejectUnauthorized: false },
    auth: { user: f.ann.address, pass: PASSWORD },
    logger: false,
  })
  await c.connect()
  return c
}

/** Every message of a folder as imapflow sees it: uid, flags, subject, and the source. */
async function folder(f: ImapFixture, name: string) {
  const c = await imap(f)
  try {
    const lock = await c.getMailboxLock(name)
    try {
      const out: { uid: number; flags: string[]; subject: string; source: string }[] = []
      if ((c.mailbox as { exists: number }).exists === 0) return out
      for await (const m of c.fetch('1:*', { uid: true, flags: true, envelope: true, source: true }))
        out.push({
          uid: m.uid,
          flags: [...(m.flags ?? [])],
          subject: m.envelope?.subject ?? '',
          source: m.source?.toString('utf8') ?? '',
        })
      return out
    } finally {
      lock.release()
    }
  } finally {
    await c.logout()
  }
}

const subjects = async (api: Api, mailbox: string, f: string) =>
  (await api.get(`/v1/messages?mailbox=${mailbox}&folder=${f}`)).body.data.map(
    (m: { subject: string }) => m.subject,
  )

for (const dialect of DIALECTS) {
  describe(`drafts API (${dialect})`, () => {
    let f: ImapFixture
    let annKey: string
    let ann: Api

    before(async () => {
      f = await imapFixture(dialect)
      annKey = await newKey(f.api, 'mailbox', f.ann.id)
      ann = f.api.withKey(annKey)
    })
    after(() => f.close())

    it('creates, lists, reads, updates and deletes a draft; IMAP sees each change', async () => {
      const up = await upload(f.s.url, annKey, [
        { name: 'plan.txt', bytes: Buffer.from('the plan'), type: 'text/plain' },
      ])
      assert.equal(up.status, 201)
      const created = await ann.post('/v1/drafts', {
        to: `Bob <${f.bob.address}>`,
        bcc: 'hidden@elsewhere.example',
        subject: 'Plan, first go',
        text: 'Here is the plan.',
        attachments: [up.body.id],
      })
      assert.equal(created.status, 201, created.text)
      const d = created.body
      assert.match(d.id, /^drf_/)
      assert.equal(d.source, 'api')
      assert.equal(d.from, f.ann.address, 'the mailbox is the default From')
      assert.deepEqual(d.to, [`Bob <${f.bob.address}>`])
      assert.deepEqual(d.bcc, ['hidden@elsewhere.example'])
      assert.deepEqual(
        d.attachments.map((a: { id: string; filename: string }) => [a.id, a.filename]),
        [[up.body.id, 'plan.txt']],
      )
      assert.deepEqual((await ann.get(`/v1/attachments/${up.body.id}`)).body.draft_ids, [d.id])

      const listed = await ann.get('/v1/drafts')
      assert.equal(listed.status, 200)
      assert.deepEqual(
        listed.body.data.map((x: { id: string }) => x.id),
        [d.id],
      )
      assert.deepEqual((await ann.get(`/v1/drafts/${d.id}`)).body, d)
      // The owner's session reaches the mailbox too (it names it).
      assert.equal((await f.api.get(`/v1/drafts?mailbox=${f.ann.address}`)).body.data.length, 1)
      const msg = await f.api.get(`/v1/messages/${d.message_id}`)
      assert.equal(msg.body.draft, true)

      const before = await folder(f, 'Drafts')
      assert.equal(before.length, 1)
      assert.ok(before[0]?.flags.includes('\\Draft'), `flags ${before[0]?.flags}`)
      assert.ok(before[0]?.flags.includes('$draft'), `flags ${before[0]?.flags}`)
      assert.equal(before[0]?.subject, 'Plan, first go')
      assert.match(before[0]?.source ?? '', /^Bcc: hidden@elsewhere\.example\r$/m, 'a stored draft keeps Bcc')
      assert.match(before[0]?.source ?? '', /plan\.txt/)

      const patched = await ann.patch(`/v1/drafts/${d.id}`, { subject: 'Plan, second go' })
      assert.equal(patched.status, 200, patched.text)
      assert.equal(patched.body.id, d.id, 'the draft keeps its id')
      assert.notEqual(patched.body.message_id, d.message_id, 'a new message holds it')
      assert.equal(patched.body.subject, 'Plan, second go')
      assert.equal(patched.body.text, 'Here is the plan.', 'fields not given keep their value')
      assert.equal(patched.body.attachments.length, 1)
      assert.equal((await f.api.get(`/v1/messages/${d.message_id}`)).status, 404, 'the old message is gone')
      const after1 = await folder(f, 'Drafts')
      assert.equal(after1.length, 1)
      assert.ok((after1[0]?.uid ?? 0) > (before[0]?.uid ?? 0), 'IMAP sees a new UID')
      assert.equal(after1[0]?.subject, 'Plan, second go')

      const bare = await ann.patch(`/v1/drafts/${d.id}`, { attachments: [], bcc: [] })
      assert.deepEqual(bare.body.attachments, [])
      assert.deepEqual(bare.body.bcc, [])
      assert.deepEqual((await ann.get(`/v1/attachments/${up.body.id}`)).body.draft_ids, [])

      const del = await ann.delete(`/v1/drafts/${d.id}`)
      assert.equal(del.status, 200, del.text)
      assert.equal((await ann.get(`/v1/drafts/${d.id}`)).status, 404)
      assert.equal((await ann.delete(`/v1/drafts/${d.id}`)).status, 404)
      assert.deepEqual(await folder(f, 'Drafts'), [])
      assert.deepEqual((await ann.get('/v1/drafts')).body.data, [])
    })

    it('sends a draft: delivered with its upload intact, moved to Sent, gone from Drafts', async () => {
      const bytes = randomBytes(20_000)
      const up = await upload(f.s.url, annKey, [{ name: 'report.bin', bytes }])
      const d = (
        await ann.post('/v1/drafts', {
          to: f.bob.address,
          subject: 'Report attached',
          html: '<p>See the report.</p>',
          attachments: [up.body.id],
        })
      ).body
      const sent = await ann.post(`/v1/drafts/${d.id}/send`)
      assert.equal(sent.status, 202, sent.text)
      assert.match(sent.body.id, /^eml_/)
      assert.equal(sent.body.draft_id, d.id)
      const got = await waitFor('delivery to bob', async () => {
        const r = await f.api.get(`/v1/messages?mailbox=${f.bob.id}`)
        return r.body.data?.find((m: { subject: string }) => m.subject === 'Report attached')
      })
      const part = await fetch(`${f.s.url}/v1/messages/${got.id}/attachments/0`, {
        headers: { cookie: f.api.cookie as string },
      })
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes)
      assert.deepEqual(await subjects(f.api, f.ann.id, 'sent'), ['Report attached'])
      assert.equal((await ann.get(`/v1/drafts/${d.id}`)).status, 404)
      assert.equal((await f.api.get(`/v1/messages/${d.message_id}`)).status, 404, 'the draft message is gone')
      const sentImap = await folder(f, 'Sent')
      assert.equal(sentImap.length, 1)
      assert.ok(!sentImap[0]?.flags.includes('\\Draft'), 'the Sent copy is no draft')
      assert.equal((await ann.post(`/v1/drafts/${d.id}/send`)).status, 404, 'sent once only')
      const email = await ann.get(`/v1/emails/${sent.body.id}`)
      assert.equal(email.status, 200)
    })

    it('lists a draft a mail client APPENDed, adopts it on update and sends it', async () => {
      const raw = [
        `From: Ann <${f.ann.address}>`,
        `To: ${f.bob.address}`,
        'Bcc: quiet@elsewhere.example',
        'Subject: From Thunderbird',
        'Message-ID: <tb-draft-1@hosted.example>',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="b1"',
        '',
        '--b1',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'Written in a mail client.',
        '--b1',
        'Content-Type: application/pdf; name="notes.pdf"',
        'Content-Disposition: attachment; filename="notes.pdf"',
        'Content-Transfer-Encoding: base64',
        '',
        Buffer.from('%PDF-1.4 notes').toString('base64'),
        '--b1--',
        '',
      ].join('\r\n')
      const c = await imap(f)
      await c.append('Drafts', raw, ['\\Draft', '\\Seen'])
      await c.logout()
      const listed = (await ann.get('/v1/drafts')).body.data
      assert.equal(listed.length, 1)
      const d = listed[0]
      assert.equal(d.source, 'imap')
      assert.equal(d.id, d.message_id)
      assert.equal(d.subject, 'From Thunderbird')
      assert.deepEqual(d.to, [f.bob.address])
      assert.deepEqual(
        d.attachments.map((a: { id: null; filename: string }) => [a.id, a.filename]),
        [[null, 'notes.pdf']],
      )

      const adopted = await ann.patch(`/v1/drafts/${d.id}`, { subject: 'From Thunderbird, edited' })
      assert.equal(adopted.status, 200, adopted.text)
      assert.match(adopted.body.id, /^drf_/)
      assert.equal(adopted.body.source, 'api')
      assert.equal(adopted.body.text, 'Written in a mail client.')
      assert.deepEqual(adopted.body.bcc, ['quiet@elsewhere.example'])
      assert.equal(adopted.body.attachments[0].filename, 'notes.pdf')
      assert.match(adopted.body.attachments[0].id, /^att_/)
      const drafts = await folder(f, 'Drafts')
      assert.deepEqual(
        drafts.map((m) => m.subject),
        ['From Thunderbird, edited'],
      )

      const sent = await ann.post(`/v1/drafts/${adopted.body.id}/send`)
      assert.equal(sent.status, 202, sent.text)
      await waitFor('delivery to bob', async () => {
        const r = await f.api.get(`/v1/messages?mailbox=${f.bob.id}`)
        return r.body.data?.find((m: { subject: string }) => m.subject === 'From Thunderbird, edited')
      })
      assert.deepEqual(await folder(f, 'Drafts'), [])

      // A client-stored draft can be sent as it is, too.
      const c2 = await imap(f)
      await c2.append('Drafts', raw.replace('From Thunderbird', 'Straight from IMAP'), ['\\Draft'])
      await c2.logout()
      const second = (await ann.get('/v1/drafts')).body.data[0]
      const r = await ann.post(`/v1/drafts/${second.id}/send`)
      assert.equal(r.status, 202, r.text)
      assert.deepEqual((await ann.get('/v1/drafts')).body.data, [])
      assert.ok((await subjects(f.api, f.ann.id, 'sent')).includes('Straight from IMAP'))
    })

    it('refuses bad drafts and other mailboxes, and changes nothing', async () => {
      const d = (await ann.post('/v1/drafts', { subject: 'No recipient yet', text: 'draft' })).body
      const state = async () => ({
        drafts: (await ann.get('/v1/drafts')).body.data,
        imap: (await folder(f, 'Drafts')).map((m) => [m.uid, m.subject]),
      })
      const was = await state()

      const foreign = await ann.post('/v1/drafts', { from: f.bob.address, to: f.bob.address, subject: 'x' })
      assert.equal(foreign.status, 403, foreign.text)
      assert.equal(foreign.body.code, 'SENDER_NOT_ALLOWED')
      const patchForeign = await ann.patch(`/v1/drafts/${d.id}`, { from: f.bob.address })
      assert.equal(patchForeign.status, 403)
      const badTo = await ann.post('/v1/drafts', { to: 'not an address', subject: 'x' })
      assert.equal(badTo.status, 422, badTo.text)
      assert.equal(badTo.body.errors[0].field, 'to[0]')
      const badReply = await ann.post('/v1/drafts', { in_reply_to: 'a b c' })
      assert.equal(badReply.status, 422)
      const crlf = await ann.patch(`/v1/drafts/${d.id}`, { subject: 'evil\r\nBcc: x@y.example' })
      assert.equal(crlf.status, 422)
      const unknown = await ann.post('/v1/drafts', { attachments: ['att_00000000000000000000000000'] })
      assert.equal(unknown.status, 404)
      assert.equal(unknown.body.code, 'ATTACHMENT_NOT_FOUND')
      const extra = await ann.post('/v1/drafts', { subject: 'x', priority: 'high' })
      assert.equal(extra.status, 400)
      const move = await ann.patch(`/v1/drafts/${d.id}`, { mailbox: f.bob.id })
      assert.equal(move.status, 400, 'a draft stays in its mailbox')
      const noRcpt = await ann.post(`/v1/drafts/${d.id}/send`)
      assert.equal(noRcpt.status, 422, noRcpt.text)

      // Another mailbox's key, a read key and a send key.
      const bob = f.api.withKey(await newKey(f.api, 'mailbox', f.bob.id))
      for (const [method, path] of [
        ['GET', `/v1/drafts/${d.id}`],
        ['PATCH', `/v1/drafts/${d.id}`],
        ['DELETE', `/v1/drafts/${d.id}`],
        ['POST', `/v1/drafts/${d.id}/send`],
      ] as const) {
        const r = await bob.req(method, path, method === 'PATCH' ? { subject: 'taken' } : undefined)
        assert.equal(r.status, 404, `${method} ${path} as bob: ${r.text}`)
      }
      assert.deepEqual((await bob.get('/v1/drafts')).body.data, [])
      const bobsInAnn = await bob.post('/v1/drafts', { mailbox: f.ann.id, subject: 'x' })
      assert.equal(bobsInAnn.status, 404)
      const read = f.api.withKey(await newKey(f.api, 'read'))
      assert.equal((await read.get(`/v1/drafts?mailbox=${f.ann.id}`)).status, 200)
      const readWrite = await read.post('/v1/drafts', { mailbox: f.ann.id, subject: 'x' })
      assert.equal(readWrite.status, 403)
      assert.equal(readWrite.body.code, 'MISSING_SCOPE')
      assert.equal((await read.post(`/v1/drafts/${d.id}/send`)).status, 403)
      const send = f.api.withKey(await newKey(f.api, 'send'))
      assert.equal((await send.get('/v1/drafts')).status, 403)

      assert.deepEqual(await state(), was)
      assert.equal((await ann.delete(`/v1/drafts/${d.id}`)).status, 200)
    })

    it('with save_sent_copy off, a sent draft and an API send leave no Sent copy', async () => {
      const off = await f.api.patch(`/v1/mailboxes/${f.ann.id}`, { save_sent_copy: false })
      assert.equal(off.status, 200, off.text)
      assert.equal(off.body.save_sent_copy, false)
      try {
        const sentBefore = await subjects(f.api, f.ann.id, 'sent')
        const d = (await ann.post('/v1/drafts', { to: f.bob.address, subject: 'No copy, draft', text: 'x' }))
          .body
        assert.equal((await ann.post(`/v1/drafts/${d.id}/send`)).status, 202)
        const api = await ann.post('/v1/emails', {
          from: f.ann.address,
          to: f.bob.address,
          subject: 'No copy, API',
          text: 'x',
        })
        assert.equal(api.status, 202)
        await waitFor('both at bob', async () => {
          const r = await f.api.get(`/v1/messages?mailbox=${f.bob.id}`)
          const s = r.body.data.map((m: { subject: string }) => m.subject)
          return s.includes('No copy, draft') && s.includes('No copy, API')
        })
        assert.deepEqual(await subjects(f.api, f.ann.id, 'sent'), sentBefore)
        assert.deepEqual((await ann.get('/v1/drafts')).body.data, [], 'the draft is gone all the same')
      } finally {
        await f.api.patch(`/v1/mailboxes/${f.ann.id}`, { save_sent_copy: true })
      }
    })
  })
}
