import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { bodyStructureAtom, bodyStructureOf } from '../../../src/imap/fetch/bodystructure.ts'
import { sectionBytes } from '../../../src/imap/fetch/section.ts'
import { isMultipart, type MimePart, parseMimeTree } from '../../../src/mail/mime-tree.ts'

const crlf = (...lines: string[]): Buffer => Buffer.from(lines.join('\r\n'), 'utf8')
const bs = (raw: Buffer, ext = true): string => bodyStructureOf(raw, parseMimeTree(raw), ext).toString('utf8')

/** `n` lines of `width` characters (the first one `extra` longer), CRLF-separated, no final CRLF. */
function block(n: number, width: number, extra: number): string {
  const lines: string[] = []
  for (let i = 0; i < n; i++) lines.push('A'.repeat(width + (i === 0 ? extra : 0)))
  return lines.join('\r\n')
}

describe('bodyStructureOf: single parts', () => {
  test('a plain message', () => {
    const raw = crlf('Subject: x', '', 'Hello world', '')
    assert.equal(bs(raw), '("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 13 1 NIL NIL NIL NIL)')
    assert.equal(bs(raw, false), '("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 13 1)')
  })

  test('a message with no body', () => {
    assert.equal(
      bs(crlf('Subject: x')),
      '("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)',
    )
  })

  test('LF line ends are counted as they are stored', () => {
    const raw = Buffer.from('Content-Type: text/plain; charset=utf-8\n\nbody\n')
    assert.equal(bs(raw), '("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL)')
  })

  test('every single-part field and the extension data', () => {
    const raw = crlf(
      'Content-Type: application/pdf; name="r\\"x\\".pdf"',
      'Content-ID: <c1@x>',
      'Content-Description: =?utf-8?q?R=C3=A9sum=C3=A9?=',
      'Content-Transfer-Encoding: Base64',
      'Content-MD5: abc=',
      'Content-Disposition: attachment; filename="r.pdf"; size=4',
      'Content-Language: en, de',
      'Content-Location: http://x.test/r.pdf',
      '',
      'QUJD',
    )
    assert.equal(
      bs(raw),
      '("APPLICATION" "PDF" ("NAME" "r\\"x\\".pdf") "<c1@x>" "=?utf-8?q?R=C3=A9sum=C3=A9?=" "BASE64" 4 ' +
        '"abc=" ("ATTACHMENT" ("FILENAME" "r.pdf" "SIZE" "4")) ("en" "de") "http://x.test/r.pdf")',
    )
    assert.equal(
      bs(raw, false),
      '("APPLICATION" "PDF" ("NAME" "r\\"x\\".pdf") "<c1@x>" "=?utf-8?q?R=C3=A9sum=C3=A9?=" "BASE64" 4)',
    )
  })

  test('a disposition without parameters, and RFC 2231 parameters as Dovecot sends them', () => {
    const raw = crlf(
      'Content-Type: text/plain; format=flowed; title*0*=utf-8\'\'%E2%82%AC; title*1=" x"',
      'Content-Disposition: inline',
      '',
      'x',
    )
    assert.equal(
      bs(raw),
      '("TEXT" "PLAIN" ("CHARSET" "us-ascii" "FORMAT" "flowed" "TITLE*" "utf-8\'\'%E2%82%AC%20x") NIL NIL "7BIT" 1 1 ' +
        'NIL ("INLINE" NIL) NIL NIL)',
    )
  })

  test('non-ASCII and over-long strings become literals of their UTF-8 bytes', () => {
    const raw = Buffer.concat([
      Buffer.from('Content-Type: image/png; name="\u00e9t\u00e9.png"\r\nContent-Description: ', 'utf8'),
      Buffer.from('d'.repeat(5000)),
      Buffer.from('\r\n\r\nPNG'),
    ])
    const out = bodyStructureOf(raw, parseMimeTree(raw), false)
    const name = Buffer.from('\u00e9t\u00e9.png', 'utf8')
    assert.deepEqual(
      out,
      Buffer.concat([
        Buffer.from(`("IMAGE" "PNG" ("NAME" {${name.length}}\r\n`),
        name,
        Buffer.from(`) NIL {5000}\r\n${'d'.repeat(5000)} "7BIT" 3)`),
      ]),
    )
    const atom = bodyStructureAtom(raw, parseMimeTree(raw), false)
    assert.deepEqual(Buffer.from(atom.atom, 'latin1'), out)
  })
})

describe('bodyStructureOf: multiparts', () => {
  test('the RFC 3501 / RFC 9051 example', () => {
    const one = block(23, 48, 4)
    const two = block(73, 60, 30)
    assert.equal(Buffer.byteLength(one), 1152)
    assert.equal(Buffer.byteLength(two), 4554)
    const raw = crlf(
      'Content-Type: MULTIPART/MIXED; BOUNDARY="x"',
      '',
      '--x',
      'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII',
      '',
      one,
      '--x',
      'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff',
      'Content-ID: <960723163407.20117h@cac.washington.edu>',
      'Content-Description: Compiler diff',
      'Content-Transfer-Encoding: BASE64',
      '',
      two,
      '--x--',
      '',
    )
    assert.equal(
      bs(raw, false),
      '(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)("TEXT" "PLAIN" ("CHARSET" "US-ASCII" ' +
        '"NAME" "cc.diff") "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED")',
    )
  })

  test('multipart/alternative', () => {
    const raw = crlf(
      'Content-Type: multipart/alternative; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'plain',
      '--b',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      '<p>html</p>',
      '',
      '--b--',
      '',
    )
    assert.equal(
      bs(raw),
      '(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL)' +
        '("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 13 1 NIL NIL NIL NIL) ' +
        '"ALTERNATIVE" ("BOUNDARY" "b") NIL NIL NIL)',
    )
    assert.equal(
      bs(raw, false),
      '(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 5 1)' +
        '("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 13 1) "ALTERNATIVE")',
    )
  })

  const mixed = crlf(
    'From: Outer <o@x.test>',
    'Subject: mixed',
    'Content-Type: multipart/mixed; boundary=o',
    'Content-Language: en',
    '',
    '--o',
    '',
    'text',
    '--o',
    'Content-Type: application/octet-stream; name=a.bin',
    'Content-Disposition: attachment; filename=a.bin',
    'Content-Transfer-Encoding: base64',
    '',
    'AAAA',
    '--o',
    'Content-Type: message/rfc822',
    '',
    'From: "In, Ner" <i@y.test>',
    'To: group: a@b.test;',
    'Subject: =?utf-8?q?inner?=',
    'Message-ID: <m@y.test>',
    'Content-Type: multipart/alternative; boundary=i',
    '',
    '--i',
    '',
    'one',
    '--i',
    'Content-Type: text/html',
    '',
    'two',
    '--i--',
    '--o--',
  )

  test('multipart/mixed with an attachment and an encapsulated multipart message', () => {
    const inner = crlf(
      'From: "In, Ner" <i@y.test>',
      'To: group: a@b.test;',
      'Subject: =?utf-8?q?inner?=',
      'Message-ID: <m@y.test>',
      'Content-Type: multipart/alternative; boundary=i',
      '',
      '--i',
      '',
      'one',
      '--i',
      'Content-Type: text/html',
      '',
      'two',
      '--i--',
    )
    const env =
      '(NIL "=?utf-8?q?inner?=" (("In, Ner" NIL "i" "y.test")) (("In, Ner" NIL "i" "y.test")) ' +
      '(("In, Ner" NIL "i" "y.test")) ((NIL NIL "group" NIL)(NIL NIL "a" "b.test")(NIL NIL NIL NIL)) ' +
      'NIL NIL NIL "<m@y.test>")'
    assert.equal(
      bs(mixed),
      '(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 4 1 NIL NIL NIL NIL)' +
        '("APPLICATION" "OCTET-STREAM" ("NAME" "a.bin") NIL NIL "BASE64" 4 NIL ("ATTACHMENT" ("FILENAME" "a.bin")) NIL NIL)' +
        `("MESSAGE" "RFC822" NIL NIL NIL "7BIT" ${inner.length} ${env.replace(/\)\(/g, ') (')} ` +
        '(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 3 1 NIL NIL NIL NIL)' +
        '("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 3 1 NIL NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "i") NIL NIL NIL) ' +
        '14 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "o") NIL ("en") NIL)',
    )
    assert.equal(
      bs(mixed, false),
      '(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 4 1)' +
        '("APPLICATION" "OCTET-STREAM" ("NAME" "a.bin") NIL NIL "BASE64" 4)' +
        `("MESSAGE" "RFC822" NIL NIL NIL "7BIT" ${inner.length} ${env.replace(/\)\(/g, ') (')} ` +
        '(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 3 1)("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 3 1) ' +
        '"ALTERNATIVE") 14) "MIXED")',
    )
  })

  test('sizes and line counts match the BODY[n] bytes of every part', () => {
    const root = parseMimeTree(mixed)
    const walk = (p: MimePart, path: number[]): void => {
      if (path.length) {
        const bytes = sectionBytes(mixed, root, { part: path })
        assert.equal(bytes.length, p.end - p.bodyStart, path.join('.'))
        const text = bytes.toString('latin1')
        const lines = text === '' ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
        assert.equal(lines, p.lines, path.join('.'))
      }
      if (isMultipart(p))
        p.children.forEach((c, i) => {
          walk(c, [...path, i + 1])
        })
      else if (p.message) {
        if (isMultipart(p.message))
          p.message.children.forEach((c, i) => {
            walk(c, [...path, i + 1])
          })
      }
    }
    walk(root, [])
  })

  test('nested multiparts three deep', () => {
    const raw = crlf(
      'Content-Type: multipart/mixed; boundary=1',
      '',
      '--1',
      'Content-Type: multipart/related; boundary=2',
      '',
      '--2',
      'Content-Type: multipart/alternative; boundary=3',
      '',
      '--3',
      '',
      'a',
      '--3--',
      '--2--',
      '--1--',
    )
    assert.equal(
      bs(raw, false),
      '(((("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 1 1) "ALTERNATIVE") "RELATED") "MIXED")',
    )
  })

  test('multipart/digest parts are message/rfc822 by default', () => {
    const raw = crlf(
      'Content-Type: multipart/digest; boundary=d',
      '',
      '--d',
      '',
      'Subject: s',
      '',
      'b',
      '--d--',
    )
    assert.equal(
      bs(raw, false),
      '(("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 15 (NIL "s" NIL NIL NIL NIL NIL NIL NIL NIL) ' +
        '("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 1 1) 3) "DIGEST")',
    )
  })

  test('fallbacks: an opaque multipart is a basic body; an unparsed message/rfc822 is application/octet-stream', () => {
    assert.equal(
      bs(crlf('Content-Type: multipart/mixed', '', '--x', '', 'a', '--x--')),
      '("MULTIPART" "MIXED" NIL NIL NIL "7BIT" 15 NIL NIL NIL NIL)',
    )
    assert.equal(
      bs(crlf('Content-Type: multipart/mixed; boundary=q', '', 'no delimiters'), false),
      '("MULTIPART" "MIXED" ("BOUNDARY" "q") NIL NIL "7BIT" 13)',
    )
    assert.equal(
      bs(
        crlf('Content-Type: message/rfc822', 'Content-Transfer-Encoding: base64', '', 'U3ViamVjdDogeA=='),
        false,
      ),
      '("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 16)',
    )
  })

  test('10,000 nested multiparts give a bounded structure quickly', () => {
    const n = 10_000
    const parts: string[] = []
    for (let i = 0; i < n; i++) parts.push(`Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n`)
    parts.push('\r\nleaf\r\n')
    for (let i = n - 1; i >= 0; i--) parts.push(`--b${i}--\r\n`)
    const raw = Buffer.from(parts.join(''))
    const t0 = performance.now()
    const out = bodyStructureOf(raw, parseMimeTree(raw), true).toString()
    assert.ok(performance.now() - t0 < 2000)
    assert.ok(out.startsWith('('.repeat(51)))
    assert.ok(out.includes('("MULTIPART" "MIXED" ("BOUNDARY" "b50")'))
    let depth = 0
    for (const c of out) {
      if (c === '(') depth++
      else if (c === ')') depth--
      assert.ok(depth >= 0)
    }
    assert.equal(depth, 0)
  })
})
