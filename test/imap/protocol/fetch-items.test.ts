// FETCH data items (src/imap/protocol/fetch-items.ts): macros, every fetch-att, section specs
// and partials per RFC 9051, the response labels, and what needs the body or sets \Seen.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  itemsNeedBody,
  itemsSetSeen,
  parseFetchItems,
  sectionLabel,
} from '../../../src/imap/protocol/fetch-items.ts'
import { ArgReader, ImapSyntaxError } from '../../../src/imap/protocol/parser.ts'
import type { FetchItem } from '../../../src/imap/protocol/types.ts'

const parse = (text: string): FetchItem[] => {
  const r = new ArgReader(Buffer.from(text))
  const items = parseFetchItems(r)
  r.end()
  return items
}
const one = (text: string) => {
  const items = parse(text)
  assert.equal(items.length, 1)
  return items[0] as FetchItem
}
const section = (text: string) => {
  const item = one(text)
  assert.equal(item.kind, 'SECTION')
  return item as Extract<FetchItem, { kind: 'SECTION' }>
}
const bad = (text: string, re?: RegExp) =>
  assert.throws(
    () => parse(text),
    (err: unknown) => {
      assert.ok(err instanceof ImapSyntaxError, `${text}: expected ImapSyntaxError, got ${err}`)
      if (re) assert.match(err.message, re, text)
      return true
    },
  )
const kinds = (items: FetchItem[]) => items.map((i) => i.kind)

describe('parseFetchItems', () => {
  it('expands the macros', () => {
    assert.deepEqual(kinds(parse('ALL')), ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'])
    assert.deepEqual(kinds(parse('fast')), ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'])
    assert.deepEqual(kinds(parse('Full')), ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'])
  })

  it('macros only stand alone', () => {
    bad('(ALL)', /Unknown FETCH item ALL/)
    bad('(FLAGS FAST)', /Unknown FETCH item FAST/)
    bad('ALLX', /Unknown FETCH item ALLX/)
  })

  it('every simple fetch-att, alone and in any case', () => {
    for (const k of [
      'FLAGS',
      'UID',
      'INTERNALDATE',
      'RFC822.SIZE',
      'ENVELOPE',
      'BODYSTRUCTURE',
      'BODY',
      'RFC822',
      'RFC822.HEADER',
      'RFC822.TEXT',
    ]) {
      assert.deepEqual(one(k), { kind: k })
      assert.deepEqual(one(k.toLowerCase()), { kind: k })
    }
  })

  it('lists keep the order', () => {
    assert.deepEqual(kinds(parse('(UID FLAGS)')), ['UID', 'FLAGS'])
    assert.deepEqual(kinds(parse('(FLAGS BODY[] UID RFC822.SIZE)')), [
      'FLAGS',
      'SECTION',
      'UID',
      'RFC822.SIZE',
    ])
    assert.deepEqual(kinds(parse('(body)')), ['BODY'])
  })

  it('bad lists', () => {
    bad('()', /empty/)
    bad('(FLAGS', /Missing '\)'/)
    bad('(FLAGS UID', /Missing '\)'/)
    bad('(FLAGS  UID)', /FETCH item/)
    bad('( FLAGS)', /FETCH item/)
    bad('(FLAGS )', /FETCH item/)
    bad('((FLAGS))', /FETCH item/)
    bad('FLAGS)', /end of command/)
    bad('FLAGS UID', /end of command/)
    bad('', /FETCH item/)
  })

  it('unknown items are named', () => {
    bad('FOO', /^Unknown FETCH item FOO$/)
    bad('(FLAGS XYZZY)', /Unknown FETCH item XYZZY/)
    bad('BINARY[HEADER]')
    bad('BINARY.PEEK', /Unknown FETCH item BINARY\.PEEK/)
    bad('RFC822[]', /Unknown FETCH item RFC822\[/)
    bad('MODSEQ[1]', /Unknown FETCH item MODSEQ\[/)
    bad('FLAGS<0.1>', /Unknown FETCH item FLAGS/)
  })
})

describe('sections', () => {
  it('BODY[] and BODY.PEEK[]', () => {
    assert.deepEqual(one('BODY[]'), { kind: 'SECTION', peek: false, section: { part: [] } })
    assert.deepEqual(one('body.peek[]'), { kind: 'SECTION', peek: true, section: { part: [] } })
  })

  it('HEADER, TEXT, HEADER.FIELDS and HEADER.FIELDS.NOT', () => {
    assert.deepEqual(section('BODY[HEADER]').section, { part: [], text: 'HEADER' })
    assert.deepEqual(section('BODY[text]').section, { part: [], text: 'TEXT' })
    assert.deepEqual(section('BODY.PEEK[HEADER.FIELDS (From To "Message-ID" {7}\r\nsubject)]').section, {
      part: [],
      text: 'HEADER.FIELDS',
      fields: ['FROM', 'TO', 'MESSAGE-ID', 'SUBJECT'],
    })
    assert.deepEqual(section('BODY[header.fields.not (received)]').section, {
      part: [],
      text: 'HEADER.FIELDS.NOT',
      fields: ['RECEIVED'],
    })
  })

  it('part paths, with HEADER, TEXT, MIME and HEADER.FIELDS after them', () => {
    assert.deepEqual(section('BODY[1]').section, { part: [1] })
    assert.deepEqual(section('BODY[1.2.3]').section, { part: [1, 2, 3] })
    assert.deepEqual(section('BODY[1.2.MIME]').section, { part: [1, 2], text: 'MIME' })
    assert.deepEqual(section('BODY[1.HEADER]').section, { part: [1], text: 'HEADER' })
    assert.deepEqual(section('BODY[4.2.TEXT]').section, { part: [4, 2], text: 'TEXT' })
    assert.deepEqual(section('BODY[3.HEADER.FIELDS (X-A)]').section, {
      part: [3],
      text: 'HEADER.FIELDS',
      fields: ['X-A'],
    })
    assert.deepEqual(section('BODY[10.20]').section, { part: [10, 20] })
  })

  it('partials', () => {
    assert.deepEqual(section('BODY[]<0.2048>').partial, { start: 0, length: 2048 })
    assert.deepEqual(section('BODY.PEEK[1.TEXT]<100.1>').partial, { start: 100, length: 1 })
    assert.equal(section('BODY[]').partial, undefined)
    assert.deepEqual(kinds(parse('(BODY.PEEK[HEADER.FIELDS (DATE)]<0.10> UID)')), ['SECTION', 'UID'])
  })

  it('bad sections', () => {
    bad('BODY[MIME]', /MIME needs a part/)
    bad('BODY[0]', /start at 1/)
    bad('BODY[1.0]', /start at 1/)
    bad('BODY[01]', /start at 1/)
    bad('BODY[1.]', /Invalid section/)
    bad('BODY[1..2]', /Invalid section/)
    bad('BODY[.1]', /Invalid section/)
    bad('BODY[HEADERS]', /Invalid section HEADERS/)
    bad('BODY[TEXT.1]', /Invalid section/)
    bad('BODY[1.2.MIME.TEXT]', /Invalid section/)
    bad('BODY[4294967296]', /range/)
    bad('BODY[HEADER', /'\]'/)
    bad('BODY[1', /'\]'/)
    bad('BODY[ ]', /Invalid section/)
    bad('BODY[HEADER.FIELDS]', /SP after HEADER.FIELDS/)
    bad('BODY[HEADER.FIELDS ()]', /string or atom/)
    bad('BODY[HEADER.FIELDS FROM]', /list of header field names/)
    bad('BODY[HEADER.FIELDS (FROM]', /Missing '\)'/) // `]` is an ASTRING-CHAR: the name is FROM]
    bad('BODY[HEADER.FIELDS (FROM "TO"]', /SP or '\)'/)
    bad('BODY[HEADER.FIELDS (FROM))]', /'\]'/)
    bad('BODY[HEADER.FIELDS ("a b")]', /header field name/)
    bad('BODY[HEADER.FIELDS ("x:y")]', /header field name/)
    bad('BODY[HEADER.FIELDS ("")]', /header field name/)
    bad('BODY[HEADER.FIELDS ("é")]', /header field name/)
    bad('BODY[TEXT (FROM)]', /'\]'/)
    bad('BODY.PEEK', /needs a section/)
    bad('BODY<0.10>', /needs a section/)
  })

  it('bad partials', () => {
    bad('BODY[]<0.0>', /non-zero/)
    bad('BODY[]<0.00>', /non-zero/)
    bad('BODY[]<0>', /'\.'/)
    bad('BODY[]<0.10', /'>'/)
    bad('BODY[]<.10>', /number/)
    bad('BODY[]<-1.10>', /number/)
    bad('BODY[]<0.99999999999999999>', /range/)
  })
})

describe('sectionLabel', () => {
  const label = (text: string) => sectionLabel(section(text))

  it('writes the item as servers name it, without .PEEK', () => {
    assert.equal(label('BODY[]'), 'BODY[]')
    assert.equal(label('BODY.PEEK[]'), 'BODY[]')
    assert.equal(label('body.peek[text]'), 'BODY[TEXT]')
    assert.equal(label('BODY[1.2.TEXT]'), 'BODY[1.2.TEXT]')
    assert.equal(label('BODY[1.2]'), 'BODY[1.2]')
    assert.equal(label('BODY[2.MIME]'), 'BODY[2.MIME]')
    assert.equal(label('BODY.PEEK[HEADER.FIELDS (from to)]'), 'BODY[HEADER.FIELDS (FROM TO)]')
    assert.equal(label('BODY[1.HEADER.FIELDS.NOT (X)]'), 'BODY[1.HEADER.FIELDS.NOT (X)]')
  })

  it('a partial shows only its origin octet', () => {
    assert.equal(label('BODY[]<0.100>'), 'BODY[]<0>')
    assert.equal(label('BODY.PEEK[1.TEXT]<512.1024>'), 'BODY[1.TEXT]<512>')
  })

  it('quotes field names that are not atoms', () => {
    assert.equal(label('BODY[HEADER.FIELDS ("X(A)" "B\\\\")]'), 'BODY[HEADER.FIELDS ("X(A)" "B\\\\")]')
    assert.equal(label('BODY[HEADER.FIELDS ("A]")]'), 'BODY[HEADER.FIELDS ("A]")]')
    assert.equal(label('BODY[HEADER.FIELDS (A])]'), 'BODY[HEADER.FIELDS ("A]")]')
  })
})

describe('itemsNeedBody and itemsSetSeen', () => {
  it('needs the body for structure and content items only', () => {
    for (const k of ['FLAGS', 'UID', 'INTERNALDATE', 'RFC822.SIZE'])
      assert.equal(itemsNeedBody(parse(k)), false, k)
    assert.equal(itemsNeedBody(parse('FAST')), false)
    for (const k of [
      'ENVELOPE',
      'BODYSTRUCTURE',
      'BODY',
      'RFC822',
      'RFC822.HEADER',
      'RFC822.TEXT',
      'BODY.PEEK[]',
    ]) {
      assert.equal(itemsNeedBody(parse(`(UID ${k})`)), true, k)
    }
    assert.equal(itemsNeedBody(parse('ALL')), true)
    assert.equal(itemsNeedBody([]), false)
  })

  it('sets \\Seen for BODY[] without PEEK, RFC822 and RFC822.TEXT', () => {
    for (const k of ['BODY[]', 'BODY[1.TEXT]<0.10>', 'RFC822', 'RFC822.TEXT', 'body[header]']) {
      assert.equal(itemsSetSeen(parse(`(FLAGS ${k})`)), true, k)
    }
    for (const k of [
      'BODY.PEEK[]',
      'RFC822.HEADER',
      'RFC822.SIZE',
      'BODY',
      'BODYSTRUCTURE',
      'ENVELOPE',
      'FULL',
    ]) {
      assert.equal(itemsSetSeen(parse(k)), false, k)
    }
  })
})
