// Search: the query parser (pure, table-driven) and GET /v1/search over real HTTP with each
// operator, free text through the full-text index, and hostile input kept as data.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type MailQuery, parseQuery } from '../../src/services/messages/query.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import type { TestServer } from '../helpers/server.ts'
import {
  deliver,
  type MailOrg,
  mailOrg,
  richMail,
  startMailServer,
  type TestMailbox,
  textMail,
} from './fixtures.ts'

const empty: MailQuery = {
  words: [],
  from: [],
  to: [],
  subject: [],
  has_attachment: null,
  before: null,
  after: null,
  in: [],
  unread: null,
  starred: null,
}

describe('search query parser', () => {
  const cases: [string, Partial<MailQuery>][] = [
    ['hello World', { words: ['hello', 'world'] }],
    ['from:Ann@Example.com', { from: ['ann@example.com'] }],
    ['to:bob subject:"quarterly report"', { to: ['bob'], subject: ['quarterly report'] }],
    ['has:attachment is:unread is:starred', { has_attachment: true, unread: true, starred: true }],
    ['is:read is:unstarred', { unread: false, starred: false }],
    ['before:2026-03-02 after:2026/01/31', { before: Date.UTC(2026, 2, 2), after: Date.UTC(2026, 0, 31) }],
    ['in:Trash in:"Work/2026"', { in: ['Trash', 'Work/2026'] }],
    ['re: "exact phrase" http://x.example', { words: ['re', 'exact', 'phrase', 'http', 'x', 'example'] }],
    ["' OR 1=1 -- from:%_\\", { words: ['or', '1', '1'], from: ['%_\\'] }],
  ]
  for (const [q, want] of cases)
    it(`parses ${JSON.stringify(q)}`, () => assert.deepEqual(parseQuery(q), { ...empty, ...want }))

  for (const bad of ['has:pdf', 'is:maybe', 'before:yesterday', 'after:2026-02-30', 'from:', 'in:""'])
    it(`refuses ${JSON.stringify(bad)}`, () =>
      assert.throws(
        () => parseQuery(bad),
        (err: { code?: string }) => err.code === 'INVALID_QUERY',
      ))
  it('refuses more than 32 terms', () =>
    assert.throws(
      () => parseQuery(Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ')),
      (err: { code?: string }) => err.code === 'INVALID_QUERY',
    ))
})

for (const dialect of DIALECTS) {
  describe(`search (${dialect})`, () => {
    let s: TestServer
    let org: MailOrg
    let box: TestMailbox
    const ids: Record<string, string> = {}

    before(async () => {
      const started = await startMailServer(dialect, { POSTERN_AUTH_SESSION_DAYS: '30' })
      s = started.s
      org = await mailOrg(s)
      box = await org.mailbox('search')
      const at = (day: number) => started.clock.set(Date.UTC(2026, 2, day, 12))
      at(1)
      ids.invoice = await deliver(
        s,
        box,
        textMail({
          from: 'billing@vendor.example',
          fromName: 'Vendor Billing',
          to: 'search@mail.example',
          subject: 'Invoice 100% paid_in_full',
          body: 'Your invoice for the zeppelin rental.',
        }),
      )
      at(3)
      ids.rich = await deliver(s, box, richMail({ to: 'search@mail.example' }))
      at(4)
      ids.lunch = await deliver(
        s,
        box,
        textMail({
          from: 'ann@friends.example',
          fromName: 'Ann Friend',
          to: 'search@mail.example',
          cc: 'Carl Cc <carl@cc.example>',
          subject: 'Lunch on Friday?',
          body: 'Shall we try the new zeppelin-themed diner?',
        }),
      )
      at(6)
      ids.trashed = await deliver(s, box, textMail({ subject: 'Zeppelin spam', body: 'zeppelin offers' }))
      await org.api.delete(`/v1/messages/${ids.trashed}`)
      await org.api.patch(`/v1/messages/${ids.lunch}`, { seen: true, flagged: true })
    })
    after(() => s.close())

    const search = async (q: string) => {
      const r = await org.api.get(`/v1/search?mailbox=${box.id}&q=${encodeURIComponent(q)}`)
      assert.equal(r.status, 200, `${q}: ${r.text}`)
      return (r.body.data as { id: string }[]).map((m) => m.id)
    }

    it('finds free text through the index, all words, the last as a prefix', async () => {
      assert.deepEqual(await search('zeppelin'), [ids.lunch, ids.invoice])
      assert.deepEqual(await search('zeppelin diner'), [ids.lunch])
      assert.deepEqual(await search('zepp'), [ids.lunch, ids.invoice])
      assert.deepEqual(await search('café'), [ids.rich])
      assert.deepEqual(await search('nothingmatches'), [])
    })

    it('applies each operator', async () => {
      assert.deepEqual(await search('from:vendor.example'), [ids.invoice])
      assert.deepEqual(await search('from:"ann friend"'), [ids.lunch])
      assert.deepEqual(await search('to:carl@cc'), [ids.lunch], 'to: looks at Cc too')
      assert.deepEqual(await search('to:dana'), [ids.rich])
      assert.deepEqual(await search('subject:lunch'), [ids.lunch])
      assert.deepEqual(await search('subject:"100%"'), [ids.invoice], 'LIKE wildcards are literal')
      assert.deepEqual(await search('subject:0%'), [ids.invoice])
      assert.deepEqual(await search('subject:d_in'), [ids.invoice])
      assert.deepEqual(await search('subject:%'), [ids.invoice])
      assert.deepEqual(await search('has:attachment'), [ids.rich])
      assert.deepEqual(await search('before:2026-03-04'), [ids.rich, ids.invoice])
      assert.deepEqual(await search('after:2026-03-04'), [ids.lunch], 'after includes the day')
      assert.deepEqual(await search('after:2026-03-02 before:2026-03-04'), [ids.rich])
      assert.deepEqual(await search('is:unread'), [ids.rich, ids.invoice])
      assert.deepEqual(await search('is:starred'), [ids.lunch])
      assert.deepEqual(await search('in:trash'), [ids.trashed])
      assert.deepEqual(await search('in:inbox zeppelin'), [ids.lunch, ids.invoice])
      assert.deepEqual(await search('zeppelin in:trash'), [ids.trashed])
      assert.deepEqual(await search('from:ann is:starred zeppelin'), [ids.lunch])
    })

    it('echoes the parsed query, pages, and refuses bad input', async () => {
      const r = await org.api.get(
        `/v1/search?mailbox=${box.id}&q=${encodeURIComponent('zeppelin after:2026-03-01')}&limit=1`,
      )
      assert.deepEqual(r.body.query.words, ['zeppelin'])
      assert.equal(r.body.query.after, '2026-03-01T00:00:00.000Z')
      assert.deepEqual(
        r.body.data.map((m: { id: string }) => m.id),
        [ids.lunch],
      )
      const next = await org.api.get(
        `/v1/search?mailbox=${box.id}&q=${encodeURIComponent('zeppelin after:2026-03-01')}&limit=1&cursor=${r.body.next_cursor}`,
      )
      assert.deepEqual(
        next.body.data.map((m: { id: string }) => m.id),
        [ids.invoice],
      )
      assert.equal(next.body.next_cursor, null)
      const bad = await org.api.get(`/v1/search?mailbox=${box.id}&q=${encodeURIComponent('before:soon')}`)
      assert.equal(bad.status, 422)
      assert.equal(bad.body.code, 'INVALID_QUERY')
      assert.equal((await org.api.get(`/v1/search?mailbox=${box.id}&q=in:nowhere`)).status, 404)
      assert.equal((await org.api.get(`/v1/search?mailbox=${box.id}`)).status, 400)
      for (const q of [`"'); DROP TABLE messages; --`, 'from:\'"\\', 'NEAR(a b)', 'a* OR b', '"unbalanced'])
        assert.ok(Array.isArray(await search(q)), `${q} is data`)
      assert.deepEqual(await search('subject:lunch'), [ids.lunch], 'the table is still there')
      const viaList = await org.api.get(
        `/v1/messages?mailbox=${box.id}&q=${encodeURIComponent('from:vendor')}`,
      )
      assert.deepEqual(
        viaList.body.data.map((m: { id: string }) => m.id),
        [ids.invoice],
        'q on the list works too',
      )
    })
  })
}
