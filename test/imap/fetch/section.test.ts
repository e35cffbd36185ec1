import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { partialOf, sectionBytes } from '../../../src/imap/fetch/section.ts'
import type { Section } from '../../../src/imap/protocol/types.ts'
import { parseMimeTree } from '../../../src/mail/mime-tree.ts'

const crlf = (...lines: string[]): Buffer => Buffer.from(lines.join('\r\n'), 'utf8')

const raw = crlf(
  'Received: one',
  'Subject: Test',
  'received: two',
  '\tfolded',
  'Content-Type: multipart/mixed; boundary=o',
  '',
  'preamble',
  '--o',
  'Content-Type: text/plain',
  '',
  'first',
  '--o',
  'Content-Type: multipart/alternative; boundary=a',
  '',
  '--a',
  '',
  'alt one',
  '--a',
  'Content-Type: text/html',
  '',
  'alt two',
  '--a--',
  '--o',
  'Content-Type: message/rfc822',
  'Content-Description: fwd',
  '',
  'Subject: inner',
  'From: i@x.test',
  '',
  'inner body',
  '--o--',
  'epilogue',
)
const root = parseMimeTree(raw)
const get = (section: Section): string => sectionBytes(raw, root, section).toString('utf8')

describe('sectionBytes', () => {
  test('the whole message, HEADER and TEXT', () => {
    assert.equal(get({ part: [] }), raw.toString())
    const header = get({ part: [], text: 'HEADER' })
    assert.ok(header.startsWith('Received: one\r\n') && header.endsWith('boundary=o\r\n\r\n'))
    assert.equal(header + get({ part: [], text: 'TEXT' }), raw.toString())
  })

  test('HEADER.FIELDS and HEADER.FIELDS.NOT', () => {
    assert.equal(
      get({ part: [], text: 'HEADER.FIELDS', fields: ['RECEIVED', 'X-NONE'] }),
      'Received: one\r\nreceived: two\r\n\tfolded\r\n\r\n',
    )
    assert.equal(get({ part: [], text: 'HEADER.FIELDS', fields: ['X-NONE'] }), '\r\n')
    assert.equal(
      get({ part: [], text: 'HEADER.FIELDS.NOT', fields: ['RECEIVED', 'CONTENT-TYPE'] }),
      'Subject: Test\r\n\r\n',
    )
  })

  test('part numbers and MIME headers', () => {
    assert.equal(get({ part: [1] }), 'first')
    assert.equal(get({ part: [1], text: 'MIME' }), 'Content-Type: text/plain\r\n\r\n')
    assert.equal(get({ part: [2, 1] }), 'alt one')
    assert.equal(get({ part: [2, 2] }), 'alt two')
    assert.equal(get({ part: [2, 2], text: 'MIME' }), 'Content-Type: text/html\r\n\r\n')
    assert.equal(
      get({ part: [2] }),
      '--a\r\n\r\nalt one\r\n--a\r\nContent-Type: text/html\r\n\r\nalt two\r\n--a--',
    )
    assert.equal(get({ part: [3] }), 'Subject: inner\r\nFrom: i@x.test\r\n\r\ninner body')
  })

  test('HEADER, TEXT and HEADER.FIELDS of a message/rfc822 part address the encapsulated message', () => {
    assert.equal(
      get({ part: [3], text: 'MIME' }),
      'Content-Type: message/rfc822\r\nContent-Description: fwd\r\n\r\n',
    )
    assert.equal(get({ part: [3], text: 'HEADER' }), 'Subject: inner\r\nFrom: i@x.test\r\n\r\n')
    assert.equal(get({ part: [3], text: 'TEXT' }), 'inner body')
    assert.equal(get({ part: [3], text: 'HEADER.FIELDS', fields: ['FROM'] }), 'From: i@x.test\r\n\r\n')
    assert.equal(get({ part: [3], text: 'HEADER.FIELDS.NOT', fields: ['FROM'] }), 'Subject: inner\r\n\r\n')
    assert.equal(get({ part: [3, 1] }), 'inner body')
  })

  test('sections that do not exist or do not apply are empty', () => {
    assert.equal(get({ part: [4] }), '')
    assert.equal(get({ part: [1, 1] }), '')
    assert.equal(get({ part: [2, 3] }), '')
    assert.equal(get({ part: [0] }), '')
    assert.equal(get({ part: [1], text: 'HEADER' }), '')
    assert.equal(get({ part: [1], text: 'TEXT' }), '')
    assert.equal(get({ part: [2], text: 'HEADER.FIELDS', fields: ['SUBJECT'] }), '')
    assert.equal(get({ part: [], text: 'MIME' }), '')
  })

  test('a message that is not multipart: part 1 is its body', () => {
    const simple = crlf('Subject: s', 'To: t@x.test', '', 'the body')
    const r = parseMimeTree(simple)
    assert.equal(sectionBytes(simple, r, { part: [1] }).toString(), 'the body')
    assert.equal(
      sectionBytes(simple, r, { part: [1], text: 'MIME' }).toString(),
      'Subject: s\r\nTo: t@x.test\r\n\r\n',
    )
    assert.equal(sectionBytes(simple, r, { part: [2] }).length, 0)
  })

  test('a header without a blank line or final line break', () => {
    const h = crlf('Subject: s', 'To: t@x.test')
    const r = parseMimeTree(h)
    assert.equal(sectionBytes(h, r, { part: [], text: 'HEADER' }).toString(), h.toString())
    assert.equal(sectionBytes(h, r, { part: [], text: 'TEXT' }).length, 0)
    assert.equal(
      sectionBytes(h, r, { part: [], text: 'HEADER.FIELDS', fields: ['TO'] }).toString(),
      'To: t@x.test\r\n\r\n',
    )
  })

  test('sections are subarrays of the raw message, not copies', () => {
    const b = sectionBytes(raw, root, { part: [2, 1] })
    assert.equal(b.buffer, raw.buffer)
  })
})

describe('partialOf', () => {
  const b = Buffer.from('0123456789')
  test('slices, clamps and empties', () => {
    assert.equal(partialOf(b, 0, 4).toString(), '0123')
    assert.equal(partialOf(b, 8, 100).toString(), '89')
    assert.equal(partialOf(b, 10, 1).length, 0)
    assert.equal(partialOf(b, 50, 1).length, 0)
    assert.equal(partialOf(b, 2, 0).length, 0)
  })
})
