// The response writer (src/imap/protocol/encoder.ts): how each ImapValue goes on the wire
// (quoted only for short 7-bit text, literals otherwise), response lines, sanitised status
// text, dates and mailbox names.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  continuation,
  encode,
  encodeValue,
  flagList,
  imapDateTime,
  quoteMailbox,
  sanitizeText,
  tagged,
  untagged,
  untaggedStatus,
} from '../../../src/imap/protocol/encoder.ts'
import { ArgReader } from '../../../src/imap/protocol/parser.ts'
import { atom, type ImapValue, literal } from '../../../src/imap/protocol/values.ts'

const wire = (v: ImapValue) => encode(v).toString('utf8')

describe('encodeValue', () => {
  it('NIL, numbers and atoms', () => {
    assert.equal(wire(null), 'NIL')
    assert.equal(wire(0), '0')
    assert.equal(wire(4294967295), '4294967295')
    assert.equal(wire(atom('\\Seen')), '\\Seen')
    assert.equal(wire(atom('BODY[HEADER.FIELDS (FROM)]')), 'BODY[HEADER.FIELDS (FROM)]')
  })

  it('refuses numbers that are not non-negative integers', () => {
    for (const n of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
      assert.throws(() => encode(n), /non-negative/)
  })

  it('quotes short 7-bit strings, escaping \\ and "', () => {
    assert.equal(wire('hello'), '"hello"')
    assert.equal(wire(''), '""')
    assert.equal(wire('a "b" \\c'), '"a \\"b\\" \\\\c"')
    assert.equal(wire('tab\there'), '"tab\there"')
    assert.equal(wire('NIL'), '"NIL"')
  })

  it('writes CR, LF, NUL and non-ASCII as literals of UTF-8 bytes', () => {
    assert.equal(wire('a\r\nb'), '{4}\r\na\r\nb')
    assert.equal(wire('a\nb'), '{3}\r\na\nb')
    assert.equal(wire('a\0b'), '{3}\r\na\0b')
    assert.equal(wire('é'), '{2}\r\né')
    assert.equal(wire('日本語'), '{9}\r\n日本語')
    assert.equal(wire('\x7f'), '"\x7f"')
  })

  it('quotes up to 4096 chars, literal beyond', () => {
    assert.equal(wire('x'.repeat(4096)), `"${'x'.repeat(4096)}"`)
    assert.equal(wire('x'.repeat(4097)), `{4097}\r\n${'x'.repeat(4097)}`)
  })

  it('buffers are literals, literal8 when binary', () => {
    assert.deepEqual(encode(literal(Buffer.from('hi'))), Buffer.from('{2}\r\nhi'))
    assert.deepEqual(
      encode(literal(Buffer.from([0, 1, 2]), true)),
      Buffer.from([...Buffer.from('~{3}\r\n'), 0, 1, 2]),
    )
    assert.deepEqual(encode(literal(Buffer.alloc(0))), Buffer.from('{0}\r\n'))
  })

  it('lists, nested and empty', () => {
    assert.equal(wire([]), '()')
    assert.equal(wire([atom('a'), 1, null, 'b']), '(a 1 NIL "b")')
    assert.equal(
      wire([
        [atom('x'), []],
        ['y', [null]],
      ]),
      '((x ()) ("y" (NIL)))',
    )
    assert.equal(wire(['a', literal(Buffer.from('xyz')), 'b']), '("a" {3}\r\nxyz "b")')
  })

  it('appends chunks to out, the literal bytes themselves as one chunk', () => {
    const out: Buffer[] = [Buffer.from('before ')]
    const body = Buffer.from('0123456789')
    encodeValue([atom('RFC822'), literal(body)], out)
    assert.equal(Buffer.concat(out).toString(), 'before (RFC822 {10}\r\n0123456789)')
    assert.ok(out.includes(body))
  })

  it('round-trips strings through the parser', () => {
    for (const s of ['plain', 'with "quotes" and \\', 'line\r\nbreak', 'ünïcödé', '', 'x'.repeat(5000)]) {
      const r = new ArgReader(encode(s))
      assert.equal(r.string(), s)
      r.end()
    }
  })
})

describe('response lines', () => {
  it('untagged: parts separated by SP, not wrapped', () => {
    assert.equal(untagged(3, atom('EXISTS')).toString(), '* 3 EXISTS\r\n')
    assert.equal(untagged(atom('FLAGS'), flagList(['\\Seen', '$x'])).toString(), '* FLAGS (\\Seen $x)\r\n')
    assert.equal(
      untagged(1, atom('FETCH'), [atom('BODY[]'), literal(Buffer.from('ab'))]).toString(),
      '* 1 FETCH (BODY[] {2}\r\nab)\r\n',
    )
    assert.equal(untagged(atom('SEARCH')).toString(), '* SEARCH\r\n')
    assert.equal(untagged(atom('LIST'), [], '/', 'a\nb').toString(), '* LIST () "/" {3}\r\na\nb\r\n')
  })

  it('tagged: tag, status, optional code, text', () => {
    assert.equal(tagged('A1', 'OK', 'LOGIN completed').toString(), 'A1 OK LOGIN completed\r\n')
    assert.equal(
      tagged('A2', 'OK', 'SELECT completed', 'READ-WRITE').toString(),
      'A2 OK [READ-WRITE] SELECT completed\r\n',
    )
    assert.equal(
      tagged('A3', 'NO', 'nope', 'BADCHARSET (US-ASCII UTF-8)').toString(),
      'A3 NO [BADCHARSET (US-ASCII UTF-8)] nope\r\n',
    )
    assert.equal(tagged('A4', 'BAD', 'Expected SP after tag').toString(), 'A4 BAD Expected SP after tag\r\n')
  })

  it('sanitises text: no CR, LF or NUL; non-ASCII as ?', () => {
    assert.equal(tagged('A1', 'NO', 'bad\r\nA2 OK injected').toString(), 'A1 NO badA2 OK injected\r\n')
    assert.equal(tagged('A1', 'NO', 'a\0b').toString(), 'A1 NO ab\r\n')
    assert.equal(
      tagged('A1', 'NO', 'No folder named Entwürfe 📧').toString(),
      'A1 NO No folder named Entw?rfe ?\r\n',
    )
    assert.equal(tagged('A1', 'OK', 'x', 'CODE]\r\n x').toString(), 'A1 OK [CODE x] x\r\n')
    assert.equal(sanitizeText('ok\ttab'), 'ok\ttab')
  })

  it('an empty text gets a default', () => {
    assert.equal(tagged('A1', 'OK', '').toString(), 'A1 OK Completed\r\n')
    assert.equal(tagged('A1', 'OK', '\r\n', 'READ-ONLY').toString(), 'A1 OK [READ-ONLY] Completed\r\n')
    assert.match(tagged('A1', 'NO', '').toString(), /^A1 NO \S.*\r\n$/)
    assert.match(tagged('A1', 'BAD', '').toString(), /^A1 BAD \S.*\r\n$/)
  })

  it('untaggedStatus', () => {
    assert.equal(
      untaggedStatus('OK', 'Postern ready', 'CAPABILITY IMAP4rev1').toString(),
      '* OK [CAPABILITY IMAP4rev1] Postern ready\r\n',
    )
    assert.equal(untaggedStatus('BYE', 'Logging out').toString(), '* BYE Logging out\r\n')
    assert.equal(untaggedStatus('PREAUTH', 'hi').toString(), '* PREAUTH hi\r\n')
    assert.equal(untaggedStatus('NO', 'x\ny').toString(), '* NO xy\r\n')
    assert.match(untaggedStatus('BYE', '').toString(), /^\* BYE \S.*\r\n$/)
  })

  it('continuation', () => {
    assert.equal(continuation('Ready for literal data').toString(), '+ Ready for literal data\r\n')
    assert.equal(continuation('').toString(), '+ \r\n')
    assert.equal(continuation('a\r\nb').toString(), '+ ab\r\n')
  })
})

describe('imapDateTime', () => {
  it('writes UTC, day zero-padded', () => {
    assert.equal(imapDateTime(new Date('1996-07-17T09:44:25Z')), '17-Jul-1996 09:44:25 +0000')
    assert.equal(imapDateTime(new Date('2024-02-01T00:00:05Z')), '01-Feb-2024 00:00:05 +0000')
    assert.equal(imapDateTime(new Date('1999-12-31T23:59:59.999Z')), '31-Dec-1999 23:59:59 +0000')
  })

  it('round-trips through the parser', () => {
    const d = new Date('2021-11-05T13:07:09Z')
    assert.equal(new ArgReader(Buffer.from(`"${imapDateTime(d)}"`)).dateTime().getTime(), d.getTime())
  })
})

describe('flagList and quoteMailbox', () => {
  it('flagList is a list of atoms', () => {
    assert.deepEqual(flagList(['\\Seen', 'Junk']), [atom('\\Seen'), atom('Junk')])
    assert.equal(wire(flagList([])), '()')
  })

  it('quoteMailbox: modified UTF-7, or UTF-8 under UTF8=ACCEPT', () => {
    assert.equal(wire(quoteMailbox('INBOX')), '"INBOX"')
    assert.equal(wire(quoteMailbox('~peter/mail/台北/日本語')), '"~peter/mail/&U,BTFw-/&ZeVnLIqe-"')
    assert.equal(wire(quoteMailbox('a&b "c"')), '"a&-b \\"c\\""')
    assert.equal(wire(quoteMailbox('台北', true)), '{6}\r\n台北')
    assert.equal(wire(quoteMailbox('a&b', true)), '"a&b"')
  })

  it('a quoted mailbox reads back as the same name', () => {
    for (const name of ['INBOX', 'Entwürfe', 'a&b', '日本語/x y', 'q"uote\\']) {
      assert.equal(new ArgReader(encode(quoteMailbox(name))).mailbox(), name)
      assert.equal(new ArgReader(encode(quoteMailbox(name, true))).mailbox(true), name)
    }
  })
})
