// SEARCH programs (src/imap/protocol/search-keys.ts): every RFC 3501 key, CHARSET, the RFC
// examples, nesting and size limits, and malformed programs.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ArgReader, ImapSyntaxError, MAX_DEPTH } from '../../../src/imap/protocol/parser.ts'
import { BadCharsetError, MAX_SEARCH_KEYS, parseSearch } from '../../../src/imap/protocol/search-keys.ts'
import type { SearchKey, SearchProgram } from '../../../src/imap/protocol/types.ts'

const parse = (text: string): SearchProgram => {
  const r = new ArgReader(Buffer.from(text))
  const p = parseSearch(r)
  assert.ok(r.atEnd(), 'parseSearch reads to the end')
  r.end()
  return p
}
const key = (text: string): SearchKey => parse(text).key
const bad = (text: string, re?: RegExp) =>
  assert.throws(
    () => parse(text),
    (err: unknown) => {
      assert.ok(err instanceof ImapSyntaxError, `${text}: expected ImapSyntaxError, got ${err}`)
      if (re) assert.match(err.message, re, text)
      return true
    },
  )

describe('parseSearch: keys', () => {
  it('flag keys', () => {
    const cases: Array<[string, string, boolean]> = [
      ['ANSWERED', '\\Answered', true],
      ['DELETED', '\\Deleted', true],
      ['DRAFT', '\\Draft', true],
      ['FLAGGED', '\\Flagged', true],
      ['SEEN', '\\Seen', true],
      ['UNANSWERED', '\\Answered', false],
      ['UNDELETED', '\\Deleted', false],
      ['UNDRAFT', '\\Draft', false],
      ['UNFLAGGED', '\\Flagged', false],
      ['UNSEEN', '\\Seen', false],
    ]
    for (const [k, flag, set] of cases) {
      assert.deepEqual(key(k), { op: 'flag', flag, set }, k)
      assert.deepEqual(key(k.toLowerCase()), { op: 'flag', flag, set }, k)
    }
  })

  it('KEYWORD and UNKEYWORD keep the keyword as sent', () => {
    assert.deepEqual(key('KEYWORD $Forwarded'), { op: 'flag', flag: '$Forwarded', set: true })
    assert.deepEqual(key('unkeyword NonJunk'), { op: 'flag', flag: 'NonJunk', set: false })
    bad('KEYWORD \\Seen', /atom/)
    bad('KEYWORD', /SP after KEYWORD/)
  })

  it('ALL, NEW, OLD, RECENT', () => {
    assert.deepEqual(key('ALL'), { op: 'all' })
    assert.deepEqual(key('NEW'), { op: 'new' })
    assert.deepEqual(key('OLD'), { op: 'recent', set: false })
    assert.deepEqual(key('RECENT'), { op: 'recent', set: true })
  })

  it('address and subject keys become header keys', () => {
    for (const k of ['BCC', 'CC', 'FROM', 'SUBJECT', 'TO']) {
      assert.deepEqual(key(`${k.toLowerCase()} "Smith"`), { op: 'header', field: k, value: 'Smith' })
    }
    assert.deepEqual(key('FROM smith@example.com'), {
      op: 'header',
      field: 'FROM',
      value: 'smith@example.com',
    })
  })

  it('HEADER field value, field uppercased', () => {
    assert.deepEqual(key('HEADER Message-ID "<a@b>"'), { op: 'header', field: 'MESSAGE-ID', value: '<a@b>' })
    assert.deepEqual(key('HEADER X-Spam ""'), { op: 'header', field: 'X-SPAM', value: '' })
    bad('HEADER X-Spam', /SP after the header field name/)
  })

  it('BODY and TEXT', () => {
    assert.deepEqual(key('BODY hello'), { op: 'body', value: 'hello' })
    assert.deepEqual(key('TEXT "string not in mailbox"'), { op: 'text', value: 'string not in mailbox' })
    assert.deepEqual(key('TEXT {6}\r\nXXXXXX'), { op: 'text', value: 'XXXXXX' })
  })

  it('date keys', () => {
    const d = { year: 1994, month: 2, day: 1 }
    assert.deepEqual(key('BEFORE 1-Feb-1994'), { op: 'date', which: 'internal', cmp: 'before', date: d })
    assert.deepEqual(key('ON "1-Feb-1994"'), { op: 'date', which: 'internal', cmp: 'on', date: d })
    assert.deepEqual(key('SINCE 01-feb-1994'), { op: 'date', which: 'internal', cmp: 'since', date: d })
    assert.deepEqual(key('SENTBEFORE 1-Feb-1994'), { op: 'date', which: 'sent', cmp: 'before', date: d })
    assert.deepEqual(key('SENTON 1-Feb-1994'), { op: 'date', which: 'sent', cmp: 'on', date: d })
    assert.deepEqual(key('SENTSINCE 1-Feb-1994'), { op: 'date', which: 'sent', cmp: 'since', date: d })
    bad('SINCE 30-Feb-1994', /date/)
    bad('SINCE yesterday', /date/)
    bad('SINCE', /SP after SINCE/)
  })

  it('LARGER and SMALLER', () => {
    assert.deepEqual(key('LARGER 1024'), { op: 'size', cmp: 'larger', n: 1024 })
    assert.deepEqual(key('SMALLER 0'), { op: 'size', cmp: 'smaller', n: 0 })
    assert.deepEqual(key('LARGER 10000000000'), { op: 'size', cmp: 'larger', n: 10000000000 })
    bad('LARGER x', /number/)
  })

  it('sequence sets and UID sets', () => {
    assert.deepEqual(key('1:5,7'), {
      op: 'seq',
      set: {
        ranges: [
          { from: 1, to: 5 },
          { from: 7, to: 7 },
        ],
      },
    })
    assert.deepEqual(key('*'), { op: 'seq', set: { ranges: [{ from: '*', to: '*' }] } })
    assert.deepEqual(key('UID 100:*'), { op: 'uid', set: { ranges: [{ from: 100, to: '*' }] } })
    bad('0', /sequence number 0/)
    bad('UID 0:5', /sequence number 0/)
    bad('UID', /SP after UID/)
    const many = Array.from({ length: 10001 }, (_, i) => String(i + 1)).join(',')
    bad(`UID ${many}`, /ranges/)
  })

  it('NOT, OR and parenthesised lists', () => {
    assert.deepEqual(key('NOT SEEN'), { op: 'not', key: { op: 'flag', flag: '\\Seen', set: true } })
    assert.deepEqual(key('OR SEEN FLAGGED'), {
      op: 'or',
      a: { op: 'flag', flag: '\\Seen', set: true },
      b: { op: 'flag', flag: '\\Flagged', set: true },
    })
    assert.deepEqual(key('OR (SEEN FLAGGED) DELETED'), {
      op: 'or',
      a: {
        op: 'and',
        keys: [
          { op: 'flag', flag: '\\Seen', set: true },
          { op: 'flag', flag: '\\Flagged', set: true },
        ],
      },
      b: { op: 'flag', flag: '\\Deleted', set: true },
    })
    assert.deepEqual(key('(SEEN)'), { op: 'flag', flag: '\\Seen', set: true })
    assert.deepEqual(key('NOT (1:3)'), {
      op: 'not',
      key: { op: 'seq', set: { ranges: [{ from: 1, to: 3 }] } },
    })
    assert.deepEqual(key('OR NOT FROM a TO b'), {
      op: 'or',
      a: { op: 'not', key: { op: 'header', field: 'FROM', value: 'a' } },
      b: { op: 'header', field: 'TO', value: 'b' },
    })
  })
})

describe('parseSearch: programs', () => {
  it('the RFC 3501 examples', () => {
    assert.deepEqual(parse('FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"'), {
      charset: null,
      key: {
        op: 'and',
        keys: [
          { op: 'flag', flag: '\\Flagged', set: true },
          { op: 'date', which: 'internal', cmp: 'since', date: { year: 1994, month: 2, day: 1 } },
          { op: 'not', key: { op: 'header', field: 'FROM', value: 'Smith' } },
        ],
      },
    })
    assert.deepEqual(parse('CHARSET UTF-8 TEXT {6}\r\nXXXXXX'), {
      charset: 'UTF-8',
      key: { op: 'text', value: 'XXXXXX' },
    })
  })

  it('one key is itself, several are an and', () => {
    assert.deepEqual(parse('ALL'), { charset: null, key: { op: 'all' } })
    assert.deepEqual(parse('SEEN UNDELETED').key, {
      op: 'and',
      keys: [
        { op: 'flag', flag: '\\Seen', set: true },
        { op: 'flag', flag: '\\Deleted', set: false },
      ],
    })
  })

  it('CHARSET US-ASCII and UTF-8, any case, quoted or not', () => {
    assert.equal(parse('CHARSET us-ascii ALL').charset, 'US-ASCII')
    assert.equal(parse('charset "utf-8" ALL').charset, 'UTF-8')
    assert.equal(parse('CHARSET {5}\r\nUTF-8 ALL').charset, 'UTF-8')
    assert.deepEqual(parse('CHARSET UTF-8 SUBJECT "日本語"').key, {
      op: 'header',
      field: 'SUBJECT',
      value: '日本語',
    })
  })

  it('another charset is a BadCharsetError', () => {
    assert.throws(() => parse('CHARSET ISO-8859-1 ALL'), BadCharsetError)
    assert.throws(
      () => parse('CHARSET KOI8-R TEXT x'),
      (err: unknown) => err instanceof BadCharsetError && err.charset === 'KOI8-R',
    )
  })

  it('CHARSET needs an argument and a key after it', () => {
    bad('CHARSET', /SP after CHARSET/)
    bad('CHARSET UTF-8', /SP after the charset/)
    bad('CHARSET UTF-8 ', /search key/)
  })

  it('malformed programs', () => {
    bad('', /search key/)
    bad('ALL ', /search key/)
    bad('ALL  SEEN', /search key/)
    bad('FOO', /^Unknown search key FOO$/)
    bad('SEEN BOGUS', /Unknown search key BOGUS/)
    bad('FROM', /SP after FROM/)
    bad('FROM (x)', /string or atom/)
    bad('NOT', /SP after NOT/)
    bad('OR SEEN', /SP after the first OR key/)
    bad('()', /Empty search key list/)
    bad('(SEEN', /Missing '\)'/)
    bad('(SEEN FLAGGED', /Missing '\)'/)
    bad('SEEN)', /Unbalanced/)
    bad(')', /Unbalanced/)
    bad('(SEEN))', /Unbalanced/)
    bad('((SEEN)', /Missing '\)'/)
    bad('( SEEN)', /search key/)
    bad('(SEEN )', /search key/)
    bad('TEXT {10}\r\nshort', /announced size/)
    bad('TEXT {3}\r\na\0b', /NUL/)
    bad('TEXT "a\\qb"', /escaped/)
  })
})

describe('parseSearch: limits', () => {
  it(`nesting up to MAX_DEPTH (${MAX_DEPTH}) is fine, deeper is an error`, () => {
    const nots = (n: number) => `${'NOT '.repeat(n)}SEEN`
    let k = key(nots(MAX_DEPTH))
    for (let i = 0; i < MAX_DEPTH; i++) {
      assert.equal(k.op, 'not')
      k = (k as Extract<SearchKey, { op: 'not' }>).key
    }
    assert.deepEqual(k, { op: 'flag', flag: '\\Seen', set: true })
    bad(nots(MAX_DEPTH + 1), /^Search program nested too deeply$/)
    bad(nots(100000), /nested too deeply/)
    const parens = (n: number) => `${'('.repeat(n)}SEEN${')'.repeat(n)}`
    assert.deepEqual(key(parens(MAX_DEPTH)), { op: 'flag', flag: '\\Seen', set: true })
    bad(parens(MAX_DEPTH + 1), /nested too deeply/)
    bad(parens(100000), /nested too deeply/)
    bad(`${'OR SEEN '.repeat(MAX_DEPTH + 1)}SEEN`, /nested too deeply/)
    bad(`${'OR '.repeat(MAX_DEPTH + 1)}SEEN`, /nested too deeply/)
    assert.doesNotThrow(() => key(`${'OR SEEN '.repeat(MAX_DEPTH)}SEEN`))
  })

  it(`at most MAX_SEARCH_KEYS (${MAX_SEARCH_KEYS}) keys`, () => {
    const flat = (n: number) => Array.from({ length: n }, () => 'SEEN').join(' ')
    const k = key(flat(MAX_SEARCH_KEYS))
    assert.equal(k.op === 'and' && k.keys.length, MAX_SEARCH_KEYS)
    bad(flat(MAX_SEARCH_KEYS + 1), /too many keys/)
    // Keys inside lists and under NOT count too.
    bad(`(${flat(MAX_SEARCH_KEYS)})`, /too many keys/)
    bad(Array.from({ length: 501 }, () => 'NOT SEEN').join(' '), /too many keys/)
  })
})
