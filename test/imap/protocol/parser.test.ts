// The argument reader (src/imap/protocol/parser.ts) against RFC 3501 / RFC 9051 formal syntax:
// tags, atoms, numbers, quoted strings and literals (LITERAL+, literal8), mailbox names,
// sequence sets, flags, dates, and the bad inputs a client can send.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  ArgReader,
  ImapSyntaxError,
  inRanges,
  isAstringAtom,
  isAtom,
  MAX_DEPTH,
  sequenceRanges,
} from '../../../src/imap/protocol/parser.ts'
import type { SequenceSet } from '../../../src/imap/protocol/types.ts'

const R = (s: string | Buffer, start?: number) =>
  new ArgReader(typeof s === 'string' ? Buffer.from(s) : s, start)
const bad = (fn: () => unknown, re?: RegExp) =>
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ImapSyntaxError, `expected ImapSyntaxError, got ${err}`)
    if (re) assert.match(err.message, re)
    return true
  })

describe('ArgReader basics', () => {
  it('reads a tag, SP and a command name', () => {
    const r = R('a001 noop')
    assert.equal(r.tag(), 'a001')
    r.space()
    assert.equal(r.keyword(), 'NOOP')
    assert.ok(r.atEnd())
    r.end()
  })

  it('tags are ASTRING-CHARs except +', () => {
    assert.equal(R('x]y NOOP').tag(), 'x]y')
    bad(() => R('+ NOOP').tag(), /tag/)
    bad(() => R('* NOOP').tag(), /tag/)
    bad(() => R('"a" NOOP').tag(), /tag/)
    bad(() => R('').tag(), /tag/)
    const r = R('a+b NOOP')
    assert.equal(r.tag(), 'a')
    bad(() => r.space('tag'), /^Expected SP after tag$/)
  })

  it('space() takes exactly one SP', () => {
    const r = R('A  B')
    r.atom()
    r.space()
    bad(() => r.atom(), /atom/)
    bad(() => R('').space(), /Missing argument/)
    bad(() => R('x').space(), /^Expected SP$/)
    assert.equal(R(' ').trySpace(), true)
    assert.equal(R('x').trySpace(), false)
  })

  it('end() refuses trailing characters', () => {
    const r = R('NOOP x')
    r.atom()
    bad(() => r.end(), /^Unexpected characters at end of command$/)
  })

  it('starts at an offset and reports its position', () => {
    const r = R('A1 SELECT INBOX', 3)
    assert.equal(r.pos, 3)
    assert.equal(r.peek(), 'S'.charCodeAt(0))
    assert.equal(r.keyword(), 'SELECT')
    assert.equal(r.pos, 9)
    r.space()
    assert.deepEqual(r.rest(), Buffer.from('INBOX'))
    assert.ok(r.atEnd())
    assert.equal(r.peek(), undefined)
  })

  it('atoms stop at atom-specials', () => {
    for (const [text, want] of [
      ['abc def', 'abc'],
      ['abc(d', 'abc'],
      ['abc)d', 'abc'],
      ['abc{d', 'abc'],
      ['abc%d', 'abc'],
      ['abc*d', 'abc'],
      ['abc"d', 'abc'],
      ['abc\\d', 'abc'],
      ['abc]d', 'abc'],
      ['abc\x01', 'abc'],
      ['abc\x7f', 'abc'],
      ['abcé', 'abc'],
      ['BODY[1]', 'BODY[1'],
      ['+FLAGS.SILENT', '+FLAGS.SILENT'],
    ] as const) {
      assert.equal(R(text).atom(), want, text)
    }
    bad(() => R('(x').atom(), /atom/)
    assert.equal(R('body.peek[').atomExcept('['), 'body.peek')
  })

  it('tryKeyword matches a whole atom, any case', () => {
    const r = R('charset UTF-8')
    assert.equal(r.tryKeyword('CHARSET'), true)
    assert.equal(r.pos, 7)
    assert.equal(R('NIL)').tryKeyword('nil'), true)
    assert.equal(R('nil').tryKeyword('NIL'), true)
    assert.equal(R('NILS').tryKeyword('NIL'), false)
    assert.equal(R('NI').tryKeyword('NIL'), false)
    assert.equal(R('').tryKeyword('NIL'), false)
  })

  it('lists: openList, closeList, tryByte, nextInList', () => {
    const r = R('(a b)')
    r.openList()
    assert.equal(r.atom(), 'a')
    assert.equal(r.nextInList(), true)
    assert.equal(r.atom(), 'b')
    assert.equal(r.nextInList(), false)
    r.end()
    bad(() => R('a').openList(), /\(/)
    bad(() => R('a').closeList(), /\)/)
    bad(() => R('').closeList(), /Missing/)
    bad(() => R('').nextInList('thing'), /Missing '\)' after thing/)
    assert.equal(R(')').tryByte(0x29), true)
    assert.equal(R(')').tryByte(0x28), false)
  })

  it('isAtom and isAstringAtom', () => {
    assert.equal(isAtom('FLAGS'), true)
    assert.equal(isAtom('a]'), false)
    assert.equal(isAstringAtom('a]'), true)
    assert.equal(isAtom(''), false)
    assert.equal(isAtom('a b'), false)
    assert.equal(MAX_DEPTH, 32)
  })
})

describe('numbers', () => {
  it('number: 0..4294967295', () => {
    assert.equal(R('0').number(), 0)
    assert.equal(R('007').number(), 7)
    assert.equal(R('4294967295').number(), 4294967295)
    bad(() => R('4294967296').number(), /range/)
    bad(() => R('99999999999999999999999').number(), /range/)
    bad(() => R('x').number(), /number/)
    bad(() => R('-1').number(), /number/)
    const r = R('12 34')
    assert.equal(r.number(), 12)
    assert.equal(r.pos, 2)
  })

  it('nzNumber refuses 0 and leading zeros', () => {
    assert.equal(R('1').nzNumber(), 1)
    bad(() => R('0').nzNumber(), /non-zero/)
    bad(() => R('01').nzNumber(), /leading zeros/)
  })

  it('number64 holds up to 2^53-1', () => {
    assert.equal(R('9007199254740991').number64(), Number.MAX_SAFE_INTEGER)
    assert.equal(R('4294967296').number64(), 4294967296)
    bad(() => R('9007199254740992').number64(), /range/)
  })
})

describe('strings', () => {
  it('quoted strings with \\\\ and \\" escapes', () => {
    assert.equal(R('"hello world"').string(), 'hello world')
    assert.equal(R('""').string(), '')
    assert.equal(R('"a\\\\b\\"c"').string(), 'a\\b"c')
    const r = R('"a" "b"')
    assert.equal(r.string(), 'a')
    r.space()
    assert.equal(r.string(), 'b')
    r.end()
  })

  it('quoted strings refuse other escapes, CR, LF, NUL and an open end', () => {
    bad(() => R('"a\\nb"').string(), /escaped/)
    bad(() => R('"a\\').string(), /escaped/)
    bad(() => R('"a\rb"').string(), /CR, LF and NUL/)
    bad(() => R('"a\nb"').string(), /CR, LF and NUL/)
    bad(() => R('"a\0b"').string(), /CR, LF and NUL/)
    bad(() => R('"abc').string(), /Unterminated/)
  })

  it('quoted strings allow UTF-8 (RFC 9051) but not other 8-bit bytes', () => {
    assert.equal(R('"日本語"').string(), '日本語')
    bad(() => R(Buffer.from([0x22, 0xff, 0xfe, 0x22])).string(), /UTF-8/)
  })

  it('literals: {n}, {n+} (LITERAL+/LITERAL-)', () => {
    assert.equal(R('{5}\r\nhello').string(), 'hello')
    assert.equal(R('{5+}\r\nhello').string(), 'hello')
    assert.equal(R('{0}\r\n').string(), '')
    assert.equal(R('{6}\r\nhé\r\n!').string(), 'hé\r\n!')
    const r = R('{3}\r\nabc {1+}\r\nd')
    assert.deepEqual(r.stringBytes(), Buffer.from('abc'))
    r.space()
    assert.deepEqual(r.stringBytes(), Buffer.from('d'))
    r.end()
  })

  it('a literal that announces more bytes than there are is an error, and the cursor stays', () => {
    const r = R('x {6}\r\nhello', 2)
    bad(() => r.string(), /shorter than its announced size/)
    assert.equal(r.pos, 2)
    bad(() => R('{99999999999999999999}\r\nx').string(), /range/)
  })

  it('literal syntax errors', () => {
    bad(() => R('{5}hello').string(), /CRLF/)
    bad(() => R('{5}\nhello').string(), /CRLF/)
    bad(() => R('{}\r\n').string(), /size/)
    bad(() => R('{5\r\nhello').string(), /'\}'/)
    bad(() => R('{-5}\r\nhello').string(), /size/)
  })

  it('NUL is refused in a literal, allowed in literal8 only through stringBytes8', () => {
    bad(() => R('{3}\r\na\0b').string(), /NUL/)
    bad(() => R('~{3}\r\na\0b').stringBytes(), /literal8/)
    bad(() => R('~{3}\r\nabc').astring(), /literal8/)
    assert.deepEqual(R('~{3}\r\na\0b').stringBytes8(), Buffer.from('a\0b'))
    assert.deepEqual(R('~{3+}\r\na\0b').stringBytes8(), Buffer.from('a\0b'))
    assert.deepEqual(R('{3}\r\nabc').stringBytes8(), Buffer.from('abc'))
    assert.deepEqual(R('"abc"').stringBytes8(), Buffer.from('abc'))
    bad(() => R('{3}\r\na\0b').stringBytes8(), /NUL/)
    bad(() => R('abc').stringBytes8(), /string/)
  })

  it('string() refuses atoms; astring() takes them, with ]', () => {
    bad(() => R('abc').string(), /string/)
    assert.equal(R('abc]def rest').astring(), 'abc]def')
    assert.equal(R('"a b"').astring(), 'a b')
    assert.equal(R('{3}\r\na b').astring(), 'a b')
    assert.deepEqual(R('x(').astringBytes(), Buffer.from('x'))
    bad(() => R('(x').astring(), /string or atom/)
    // `~` is an ATOM-CHAR; only `~{` starts a literal8.
    assert.equal(R('~peter').astring(), '~peter')
    assert.equal(R('~').astring(), '~')
    assert.equal(R('~/*').listMailbox(), '~/*')
    bad(() => R('~x').string(), /string/)
    bad(() => R('').astring(), /end of the command/)
  })

  it('nstring: NIL in any case, else a string', () => {
    assert.equal(R('NIL').nstring(), null)
    assert.equal(R('nil)').nstring(), null)
    assert.equal(R('"NIL"').nstring(), 'NIL')
    assert.equal(R('{3}\r\nNIL').nstring(), 'NIL')
    bad(() => R('NILX').nstring(), /string/)
  })

  it('a whole LOGIN command with a literal and a quoted string', () => {
    const r = R('A1 LOGIN {5}\r\nalice "pass word"')
    assert.equal(r.tag(), 'A1')
    r.space()
    assert.equal(r.keyword(), 'LOGIN')
    r.space()
    assert.equal(r.astring(), 'alice')
    r.space()
    assert.equal(r.astring(), 'pass word')
    r.end()
  })
})

describe('mailbox names', () => {
  it('INBOX in any case is INBOX', () => {
    for (const text of ['INBOX', 'inbox', 'InBoX', '"iNbOx"', '{5}\r\ninbox']) {
      assert.equal(R(text).mailbox(), 'INBOX', text)
      assert.equal(R(text).mailbox(true), 'INBOX', text)
    }
    assert.equal(R('INBOX/Sub').mailbox(), 'INBOX/Sub')
    assert.equal(R('inbox.sub').mailbox(), 'inbox.sub')
    assert.equal(R('"ınbox"').mailbox(true), 'ınbox')
  })

  it('decodes modified UTF-7', () => {
    assert.equal(R('~peter/mail/&U,BTFw-/&ZeVnLIqe-').mailbox(), '~peter/mail/台北/日本語')
    assert.equal(R('"a&-b"').mailbox(), 'a&b')
    assert.equal(R('""').mailbox(), '')
  })

  it('invalid modified UTF-7 is a syntax error', () => {
    bad(() => R('&U,BTFw').mailbox(), /not closed/)
    bad(() => R('&ACY-').mailbox(), /printable/)
    bad(() => R('"&U/BTFw-"').mailbox(), /base64/)
    const r = R('x &AGE-', 2)
    bad(() => r.mailbox())
    assert.equal(r.pos, 2)
  })

  it('8-bit names need UTF8=ACCEPT, and must then be UTF-8', () => {
    bad(() => R('"台北"').mailbox(), /8-bit/)
    bad(() => R('{6}\r\n台北').mailbox(), /8-bit/)
    assert.equal(R('"台北"').mailbox(true), '台北')
    assert.equal(R('{6}\r\n台北').mailbox(true), '台北')
    bad(() => R(Buffer.concat([Buffer.from('{2}\r\n'), Buffer.from([0xc3, 0x28])])).mailbox(true), /UTF-8/)
    // UTF8=ACCEPT: & is an ordinary character.
    assert.equal(R('"&U,BTFw-"').mailbox(true), '&U,BTFw-')
  })

  it('control characters are refused, encoded or not', () => {
    bad(() => R('{3}\r\na\r\n').mailbox(), /control/)
    bad(() => R('{3}\r\na\tb').mailbox(), /control/)
    bad(() => R('"a\tb"').mailbox(true), /control/)
    bad(() => R('&AAA-').mailbox(), /control/) // NUL in base64
    bad(() => R('&AAo-').mailbox(), /control/) // LF in base64
    bad(() => R('&AIU-').mailbox(), /control/) // U+0085 (C1)
    bad(() => R('"\u0085"').mailbox(true), /control/)
  })

  it('list-mailbox keeps wildcards and takes ]', () => {
    assert.equal(R('*').listMailbox(), '*')
    assert.equal(R('%').listMailbox(), '%')
    assert.equal(R('INBOX/*').listMailbox(), 'INBOX/*')
    assert.equal(R('a]%b').listMailbox(), 'a]%b')
    assert.equal(R('""').listMailbox(), '')
    assert.equal(R('"a b/%"').listMailbox(), 'a b/%')
    assert.equal(R('&ZeVnLIqe-/*').listMailbox(), '日本語/*')
    assert.equal(R('"日本語/*"').listMailbox(true), '日本語/*')
    const r = R('a* b')
    assert.equal(r.listMailbox(), 'a*')
    assert.equal(r.pos, 2)
    bad(() => R('(').listMailbox(), /pattern/)
    bad(() => R('&Zz-*').listMailbox(), /base64/)
    bad(() => R('"台北"').listMailbox(), /8-bit/)
  })
})

describe('sequence sets', () => {
  const set = (text: string, max?: number) => R(text).sequenceSet(max)

  it('numbers, ranges in either order, and *', () => {
    assert.deepEqual(set('1'), { ranges: [{ from: 1, to: 1 }] })
    assert.deepEqual(set('*'), { ranges: [{ from: '*', to: '*' }] })
    assert.deepEqual(set('2,4:7,9,12:*'), {
      ranges: [
        { from: 2, to: 2 },
        { from: 4, to: 7 },
        { from: 9, to: 9 },
        { from: 12, to: '*' },
      ],
    })
    assert.deepEqual(set('*:4,7:5'), {
      ranges: [
        { from: '*', to: 4 },
        { from: 7, to: 5 },
      ],
    })
    assert.deepEqual(set('4294967295'), { ranges: [{ from: 4294967295, to: 4294967295 }] })
  })

  it('stops at the end of the set', () => {
    const r = R('1:2 FLAGS')
    r.sequenceSet()
    assert.equal(r.pos, 3)
  })

  it('0, leading zeros, and numbers out of range are errors', () => {
    bad(() => set('0'), /sequence number 0/)
    bad(() => set('1:0'), /sequence number 0/)
    bad(() => set('1,0,3'), /sequence number 0/)
    bad(() => set('01'), /leading zeros/)
    bad(() => set('4294967296'), /range/)
  })

  it('malformed sets are errors, and the cursor stays', () => {
    for (const text of ['', ',1', '1,', '1:', ':1', '1::2', 'a', '$', '1,,2']) {
      const r = R(text)
      bad(() => r.sequenceSet(), undefined)
      assert.equal(r.pos, 0, text)
    }
  })

  it('caps the number of ranges', () => {
    const many = Array.from({ length: 10001 }, (_, i) => String(i + 1)).join(',')
    bad(() => set(many), /more than 10000 ranges/)
    assert.equal(set(many.split(',').slice(0, 10000).join(',')).ranges.length, 10000)
    bad(() => set('1,2,3', 2), /more than 2 ranges/)
  })
})

describe('sequenceRanges and inRanges', () => {
  const of = (text: string) => R(text).sequenceSet()

  it('resolves *, orders, sorts and merges', () => {
    assert.deepEqual(sequenceRanges(of('1:*'), 10), [[1, 10]])
    assert.deepEqual(sequenceRanges(of('*'), 10), [[10, 10]])
    assert.deepEqual(sequenceRanges(of('7:3'), 10), [[3, 7]])
    assert.deepEqual(sequenceRanges(of('15:*'), 10), [[10, 15]])
    assert.deepEqual(sequenceRanges(of('9,1:3,4,6:7,8'), 100), [
      [1, 4],
      [6, 9],
    ])
    assert.deepEqual(sequenceRanges(of('5:10,2:6,20,1'), 100), [
      [1, 10],
      [20, 20],
    ])
    assert.deepEqual(sequenceRanges(of('3,3,3'), 5), [[3, 3]])
  })

  it('with largest 0, * names nothing', () => {
    assert.deepEqual(sequenceRanges(of('*'), 0), [])
    assert.deepEqual(sequenceRanges(of('1:*'), 0), [])
    assert.deepEqual(sequenceRanges(of('1:*,4'), 0), [[4, 4]])
  })

  it('takes sets as the types describe them', () => {
    const s: SequenceSet = { ranges: [{ from: '*', to: 2 }] }
    assert.deepEqual(sequenceRanges(s, 5), [[2, 5]])
  })

  it('inRanges finds members by binary search', () => {
    const ranges = sequenceRanges(of('1:3,7,10:20,100:*'), 200)
    for (const n of [1, 2, 3, 7, 10, 15, 20, 100, 150, 200])
      assert.equal(inRanges(ranges, n), true, String(n))
    for (const n of [0, 4, 6, 8, 9, 21, 99, 201]) assert.equal(inRanges(ranges, n), false, String(n))
    assert.equal(inRanges([], 1), false)
  })
})

describe('flags', () => {
  it('system flags in canonical case', () => {
    for (const [text, want] of [
      ['\\answered', '\\Answered'],
      ['\\FLAGGED', '\\Flagged'],
      ['\\Deleted', '\\Deleted'],
      ['\\sEEN', '\\Seen'],
      ['\\draft', '\\Draft'],
    ]) {
      assert.equal(R(text as string).flag(), want)
    }
  })

  it('flag-extensions and keywords as sent', () => {
    assert.equal(R('\\Recent').flag(), '\\Recent')
    assert.equal(R('\\XCustom').flag(), '\\XCustom')
    assert.equal(R('$Forwarded').flag(), '$Forwarded')
    assert.equal(R('NonJunk').flag(), 'NonJunk')
  })

  it('bad flags', () => {
    bad(() => R('\\*').flag(), /flag name/)
    bad(() => R('\\').flag(), /flag name/)
    bad(() => R('"x"').flag(), /flag/)
    bad(() => R('(').flag(), /flag/)
  })

  it('flag lists', () => {
    assert.deepEqual(R('()').flagList(), [])
    assert.deepEqual(R('(\\seen)').flagList(), ['\\Seen'])
    assert.deepEqual(R('(\\Seen $Junk \\deleted)').flagList(), ['\\Seen', '$Junk', '\\Deleted'])
    bad(() => R('\\Seen').flagList(), /\(/)
    bad(() => R('(\\Seen').flagList(), /Missing '\)'/)
    bad(() => R('(\\Seen  $x)').flagList(), /flag/)
    bad(() => R('( \\Seen)').flagList(), /flag/)
    bad(() => R('(\\Seen )').flagList(), /flag/)
    bad(() => R('((\\Seen))').flagList(), /flag/)
  })

  it('STORE flags: a list or flags separated by SP', () => {
    assert.deepEqual(R('(\\Seen \\Deleted)').flagListOrSingle(), ['\\Seen', '\\Deleted'])
    assert.deepEqual(R('\\Seen').flagListOrSingle(), ['\\Seen'])
    assert.deepEqual(R('\\Seen \\deleted $x').flagListOrSingle(), ['\\Seen', '\\Deleted', '$x'])
    bad(() => R('').flagListOrSingle(), /flag/)
    bad(() => R('\\Seen ').flagListOrSingle(), /flag/)
  })
})

describe('date-time', () => {
  it('reads the RFC 3501 example and converts the zone', () => {
    assert.equal(R('"17-Jul-1996 02:44:25 -0700"').dateTime().toISOString(), '1996-07-17T09:44:25.000Z')
    assert.equal(R('"01-Jan-2024 00:30:00 +0100"').dateTime().toISOString(), '2023-12-31T23:30:00.000Z')
    assert.equal(R('"31-Dec-1999 23:59:59 +0000"').dateTime().toISOString(), '1999-12-31T23:59:59.000Z')
    assert.equal(R('"15-Mar-2020 12:00:00 +0530"').dateTime().toISOString(), '2020-03-15T06:30:00.000Z')
  })

  it('day: SP DIGIT, 2DIGIT, and (leniently) one digit; month in any case', () => {
    assert.equal(R('" 7-jul-1996 02:44:25 +0000"').dateTime().toISOString(), '1996-07-07T02:44:25.000Z')
    assert.equal(R('"7-JUL-1996 02:44:25 +0000"').dateTime().toISOString(), '1996-07-07T02:44:25.000Z')
  })

  it('leap years', () => {
    assert.equal(R('"29-Feb-2024 00:00:00 +0000"').dateTime().toISOString(), '2024-02-29T00:00:00.000Z')
    assert.equal(R('"29-Feb-2000 00:00:00 +0000"').dateTime().toISOString(), '2000-02-29T00:00:00.000Z')
    bad(() => R('"29-Feb-2023 00:00:00 +0000"').dateTime(), /day/)
    bad(() => R('"29-Feb-1900 00:00:00 +0000"').dateTime(), /day/)
  })

  it('bad date-times', () => {
    for (const text of [
      '17-Jul-1996 02:44:25 -0700',
      '"17-Jul-1996 02:44:25"',
      '"17-Jul-96 02:44:25 -0700"',
      '"17-July-1996 02:44:25 -0700"',
      '"17-Jul-1996 2:44:25 -0700"',
      '"17-Jul-1996 02:44:25 -07:00"',
      '"17-Jul-1996  02:44:25 -0700"',
      '"17 Jul 1996 02:44:25 -0700"',
      '"17-Jul-1996 02:44:25 -0700',
      '"Wed, 17 Jul 1996 02:44:25 -0700"',
      '""',
    ]) {
      const r = R(text)
      bad(() => r.dateTime(), /date-time/)
      assert.equal(r.pos, 0, text)
    }
    bad(() => R('"17-Jux-1996 02:44:25 -0700"').dateTime(), /month/)
    bad(() => R('"00-Jul-1996 02:44:25 -0700"').dateTime(), /day/)
    bad(() => R('"32-Jul-1996 02:44:25 -0700"').dateTime(), /day/)
    bad(() => R('"31-Apr-1996 02:44:25 -0700"').dateTime(), /day/)
    bad(() => R('"17-Jul-0000 02:44:25 -0700"').dateTime(), /year/)
    bad(() => R('"17-Jul-1996 24:00:00 -0700"').dateTime(), /time/)
    bad(() => R('"17-Jul-1996 23:60:00 -0700"').dateTime(), /time/)
    bad(() => R('"17-Jul-1996 23:59:61 -0700"').dateTime(), /time/)
    bad(() => R('"17-Jul-1996 02:44:25 -2400"').dateTime(), /zone/)
    bad(() => R('"17-Jul-1996 02:44:25 +0060"').dateTime(), /zone/)
  })

  it('stops after the closing quote', () => {
    const r = R('"17-Jul-1996 02:44:25 -0700" {5}')
    r.dateTime()
    assert.equal(r.pos, 28)
  })
})

describe('search dates', () => {
  it('date-text, quoted or not, day 1*2DIGIT', () => {
    assert.deepEqual(R('1-Feb-1994').date(), { year: 1994, month: 2, day: 1 })
    assert.deepEqual(R('01-feb-1994').date(), { year: 1994, month: 2, day: 1 })
    assert.deepEqual(R('"28-DEC-2023"').date(), { year: 2023, month: 12, day: 28 })
    assert.deepEqual(R('29-Feb-2024').date(), { year: 2024, month: 2, day: 29 })
    const r = R('1-Feb-1994)')
    r.date()
    assert.equal(r.pos, 10)
  })

  it('bad dates', () => {
    for (const text of [
      '',
      '1-Feb-94',
      '1 Feb 1994',
      '001-Feb-1994',
      '1-February-1994',
      '"1-Feb-1994',
      '1994-02-01',
      '"1-Feb-1994 00:00:00 +0000"',
    ]) {
      const r = R(text)
      bad(() => r.date(), /date/)
      assert.equal(r.pos, 0, text)
    }
    bad(() => R('32-Jan-2000').date(), /day/)
    bad(() => R('0-Jan-2000').date(), /day/)
    bad(() => R('29-Feb-2023').date(), /day/)
    bad(() => R('31-Jun-2023').date(), /day/)
    bad(() => R('1-Foo-2000').date(), /month/)
    bad(() => R('1-Jan-0000').date(), /year/)
  })
})
