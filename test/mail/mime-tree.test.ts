import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  bodyOf,
  headerBlock,
  headerValue,
  isMultipart,
  MAX_MIME_DEPTH,
  MAX_MIME_PARTS,
  type MimePart,
  paramValue,
  parseMimeTree,
  partAt,
} from '../../src/mail/mime-tree.ts'

const crlf = (...lines: string[]): Buffer => Buffer.from(lines.join('\r\n'), 'utf8')
const lf = (...lines: string[]): Buffer => Buffer.from(lines.join('\n'), 'utf8')
const body = (raw: Buffer, p: MimePart | null): string => (p ? bodyOf(raw, p).toString('utf8') : '<none>')

function depthOf(p: MimePart): number {
  let max = 0
  const stack: Array<[MimePart, number]> = [[p, 0]]
  while (stack.length) {
    const [q, d] = stack.pop()!
    max = Math.max(max, d)
    for (const c of q.children) stack.push([c, d + 1])
    if (q.message) stack.push([q.message, d + 1])
  }
  return max
}

function countParts(p: MimePart): number {
  let n = 0
  const stack = [p]
  while (stack.length) {
    const q = stack.pop()!
    n++
    stack.push(...q.children)
    if (q.message) stack.push(q.message)
  }
  return n
}

describe('parseMimeTree: headers and bodies', () => {
  test('a simple text message', () => {
    const raw = crlf('From: a@example.com', 'Subject: Hi', '', 'Hello world', '')
    const root = parseMimeTree(raw)
    assert.equal(root.start, 0)
    assert.equal(headerBlock(raw, root).toString(), 'From: a@example.com\r\nSubject: Hi\r\n\r\n')
    assert.equal(body(raw, root), 'Hello world\r\n')
    assert.equal(root.end, raw.length)
    assert.deepEqual([root.type, root.subtype, root.encoding], ['text', 'plain', '7BIT'])
    assert.deepEqual(root.params, [])
    assert.equal(root.lines, 1)
    assert.deepEqual(root.children, [])
    assert.equal(root.message, null)
    assert.deepEqual(
      root.headers.map((h) => [h.name, h.lower, h.value, raw.subarray(h.start, h.end).toString()]),
      [
        ['From', 'from', ' a@example.com', 'From: a@example.com\r\n'],
        ['Subject', 'subject', ' Hi', 'Subject: Hi\r\n'],
      ],
    )
  })

  test('folded fields keep their line breaks in value and offsets', () => {
    const raw = crlf('Subject: one', '\ttwo', ' three', 'X-A:b', '', '')
    const root = parseMimeTree(raw)
    assert.equal(root.headers.length, 2)
    assert.equal(root.headers[0]!.value, ' one\r\n\ttwo\r\n three')
    assert.equal(
      raw.subarray(root.headers[0]!.start, root.headers[0]!.end).toString(),
      'Subject: one\r\n\ttwo\r\n three\r\n',
    )
    assert.equal(root.headers[1]!.value, 'b')
    assert.equal(headerValue(root, 'x-a'), 'b')
    assert.equal(root.lines, 0)
  })

  test('a message without a blank line is all header with an empty body', () => {
    const raw = crlf('From: a@b', 'Subject: no body')
    const root = parseMimeTree(raw)
    assert.equal(root.bodyStart, raw.length)
    assert.equal(root.end, raw.length)
    assert.equal(root.headers.length, 2)
    assert.equal(root.headers[1]!.value, ' no body')
    assert.equal(root.headers[1]!.end, raw.length)
    assert.equal(root.lines, 0)
  })

  test('a message that starts with a blank line has no fields', () => {
    const raw = crlf('', 'just body')
    const root = parseMimeTree(raw)
    assert.deepEqual(root.headers, [])
    assert.equal(root.bodyStart, 2)
    assert.equal(body(raw, root), 'just body')
    assert.equal(root.lines, 1)
  })

  test('bare LF line ends are accepted', () => {
    const raw = lf('Subject: x', 'Content-Type: text/html', '', 'a', 'b')
    const root = parseMimeTree(raw)
    assert.equal(root.subtype, 'html')
    assert.equal(body(raw, root), 'a\nb')
    assert.equal(root.lines, 2)
  })

  test('8-bit header values: UTF-8 when valid, latin1 otherwise', () => {
    const utf = Buffer.concat([Buffer.from('Subject: Gr\u00fc\u00dfe \u2603\r\n\r\n', 'utf8')])
    assert.equal(parseMimeTree(utf).headers[0]!.value, ' Gr\u00fc\u00dfe \u2603')
    const latin = Buffer.from('Subject: caf\xe9\r\n\r\nx', 'latin1')
    assert.equal(parseMimeTree(latin).headers[0]!.value, ' caf\u00e9')
  })

  test('MIME header fields', () => {
    const raw = crlf(
      'Content-Type: Application/PDF; Name="a \\"b\\".pdf"',
      'Content-Transfer-Encoding: base64 (comment)',
      'Content-ID: <id@x>',
      'Content-Description: A =?utf-8?q?doc?=',
      'Content-Disposition: Attachment; filename=report.pdf; size=12',
      'Content-Language: en-GB (British), fr',
      'Content-Location: http://example.com/',
      ' a.pdf',
      'Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==',
      '',
      'AAAA',
    )
    const p = parseMimeTree(raw)
    assert.deepEqual([p.type, p.subtype], ['application', 'pdf'])
    assert.deepEqual(p.params, [['name', 'a "b".pdf']])
    assert.equal(p.encoding, 'BASE64')
    assert.equal(p.id, '<id@x>')
    assert.equal(p.description, 'A =?utf-8?q?doc?=')
    assert.deepEqual(p.disposition, {
      type: 'attachment',
      params: [
        ['filename', 'report.pdf'],
        ['size', '12'],
      ],
    })
    assert.deepEqual(p.language, ['en-GB', 'fr'])
    assert.equal(p.location, 'http://example.com/ a.pdf')
    assert.equal(p.md5, 'Q2hlY2sgSW50ZWdyaXR5IQ==')
  })

  test('a syntactically invalid Content-Type falls back to text/plain', () => {
    for (const ct of ['text', '/plain', 'garbage here', '', 'text/;charset=x']) {
      const p = parseMimeTree(crlf(`Content-Type: ${ct}`, '', 'x'))
      assert.deepEqual([p.type, p.subtype, p.params], ['text', 'plain', []], ct)
    }
  })

  test('the first Content-Type wins', () => {
    const p = parseMimeTree(crlf('Content-Type: text/html', 'Content-Type: image/png', '', 'x'))
    assert.equal(p.subtype, 'html')
  })
})

describe('parseMimeTree: parameters (RFC 2045, RFC 2231)', () => {
  const params = (ct: string): Array<[string, string]> =>
    parseMimeTree(crlf(`Content-Type: ${ct}`, '', '')).params

  test('plain, quoted, commented and sloppy values', () => {
    assert.deepEqual(params('text/plain; charset=us-ascii (Plain text)'), [['charset', 'us-ascii']])
    assert.deepEqual(params('text/plain;CHARSET="UTF-8" ; Format=flowed;'), [
      ['charset', 'UTF-8'],
      ['format', 'flowed'],
    ])
    assert.deepEqual(params('text/plain; name=my file.txt; x=1'), [
      ['name', 'my file.txt'],
      ['x', '1'],
    ])
    assert.deepEqual(params('multipart/mixed; boundary="==a;b=="'), [['boundary', '==a;b==']])
    assert.deepEqual(params('multipart/mixed; boundary==_x=; junk; =v; y'), [['boundary', '=_x=']])
    assert.deepEqual(params('text/plain; a=1; A=2'), [['a', '1']])
  })

  test('continuations are joined; extended values stay encoded under name*', () => {
    assert.deepEqual(params('application/x; title*0="abc "; title*2="ghi"; title*1="def "'), [
      ['title', 'abc def ghi'],
    ])
    assert.deepEqual(params('application/x; filename*0*=utf-8\'\'%E2%82%AC; filename*1=".txt"'), [
      ['filename*', "utf-8''%E2%82%AC.txt"],
    ])
    assert.deepEqual(params("application/x; name*=us-ascii'en'This%20is%20it"), [
      ['name*', "us-ascii'en'This%20is%20it"],
    ])
    const p = params("application/x; name*=iso-8859-1''caf%E9; other*0*=utf-8''%E2%82%AC; other*1*=%20x")
    assert.equal(paramValue(p, 'name'), 'caf\u00e9')
    assert.equal(paramValue(p, 'other'), '\u20ac x')
    assert.equal(paramValue(p, 'missing'), null)
    assert.equal(paramValue([['x*', "bogus-charset''%41"]], 'x'), 'A')
  })
})

describe('parseMimeTree: multipart', () => {
  test('multipart/alternative with exact part offsets (CRLF before a delimiter excluded)', () => {
    const raw = crlf(
      'Content-Type: multipart/alternative; boundary=b1',
      '',
      'preamble',
      '--b1',
      'Content-Type: text/plain',
      '',
      'plain',
      '',
      '--b1',
      'Content-Type: text/html',
      '',
      '<p>html</p>',
      '--b1--',
      'epilogue',
      '',
    )
    const root = parseMimeTree(raw)
    assert.ok(isMultipart(root))
    assert.equal(root.children.length, 2)
    const [a, b] = root.children as [MimePart, MimePart]
    assert.equal(body(raw, a), 'plain\r\n')
    assert.equal(a.lines, 1)
    assert.equal(headerBlock(raw, a).toString(), 'Content-Type: text/plain\r\n\r\n')
    assert.equal(body(raw, b), '<p>html</p>')
    assert.equal(b.lines, 1)
    assert.equal(raw.subarray(b.end, b.end + 8).toString(), '\r\n--b1--')
  })

  test('the same with LF line ends', () => {
    const raw = lf(
      'Content-Type: multipart/mixed; boundary=b1',
      '',
      '--b1',
      '',
      'one',
      '--b1',
      '',
      'two',
      '--b1--',
      '',
    )
    const root = parseMimeTree(raw)
    assert.deepEqual(
      root.children.map((c) => body(raw, c)),
      ['one', 'two'],
    )
    assert.deepEqual(
      root.children.map((c) => headerBlock(raw, c).toString()),
      ['\n', '\n'],
    )
  })

  test('boundary text in the preamble or inside lines is not a delimiter; padding after it is allowed', () => {
    const raw = crlf(
      'Content-Type: multipart/mixed; boundary="XX"',
      '',
      'The boundary is --XX, see?',
      '--XXnot',
      '--XX \t',
      '',
      'part one --XX',
      '--XXX',
      '--XX',
      '',
      'part two',
      '--XX-- trailing',
      '--XX',
      'epilogue',
    )
    const root = parseMimeTree(raw)
    assert.deepEqual(
      root.children.map((c) => body(raw, c)),
      ['part one --XX\r\n--XXX', 'part two'],
    )
  })

  test('adjacent delimiters give an empty part; an unterminated multipart runs to its end', () => {
    const raw = crlf('Content-Type: multipart/mixed; boundary=b', '', '--b', '--b', '', 'last', 'line', '')
    const root = parseMimeTree(raw)
    assert.equal(root.children.length, 2)
    const [a, b] = root.children as [MimePart, MimePart]
    assert.equal(a.start, a.end)
    assert.equal(a.lines, 0)
    assert.equal(body(raw, b), 'last\r\nline\r\n')
  })

  test('a multipart without a boundary, or whose boundary never occurs, is one opaque part', () => {
    for (const raw of [
      crlf('Content-Type: multipart/mixed', '', '--x', '', 'a', '--x--'),
      crlf('Content-Type: multipart/mixed; boundary=zz', '', '--x', '', 'a', '--x--'),
      crlf('Content-Type: multipart/mixed; boundary=zz', '', '--zz--', ''),
    ]) {
      const root = parseMimeTree(raw)
      assert.equal(root.type, 'multipart')
      assert.deepEqual(root.children, [])
      assert.equal(isMultipart(root), false)
      assert.equal(partAt(root, [1]), root)
      assert.equal(partAt(root, [2]), null)
    }
  })

  test('nested multiparts three deep', () => {
    const raw = crlf(
      'Content-Type: multipart/mixed; boundary=L1',
      '',
      '--L1',
      'Content-Type: multipart/related; boundary=L2',
      '',
      '--L2',
      'Content-Type: multipart/alternative; boundary=L3',
      '',
      '--L3',
      '',
      'deep plain',
      '--L3',
      'Content-Type: text/html',
      '',
      'deep html',
      '--L3--',
      '--L2',
      'Content-Type: image/png',
      '',
      'PNG',
      '--L2--',
      '--L1',
      'Content-Type: application/pdf',
      '',
      'PDF',
      '--L1--',
    )
    const root = parseMimeTree(raw)
    assert.equal(body(raw, partAt(root, [1, 1, 1])), 'deep plain')
    assert.equal(body(raw, partAt(root, [1, 1, 2])), 'deep html')
    assert.equal(body(raw, partAt(root, [1, 2])), 'PNG')
    assert.equal(body(raw, partAt(root, [2])), 'PDF')
    assert.equal(partAt(root, [1, 1])!.subtype, 'alternative')
    assert.equal(partAt(root, [1, 1, 3]), null)
    assert.equal(partAt(root, [1, 2, 1]), null)
    assert.equal(partAt(root, [3]), null)
    assert.equal(partAt(root, [0]), null)
    assert.equal(partAt(root, []), root)
    // An inner part that is never closed ends at the outer delimiter.
    const open = crlf(
      'Content-Type: multipart/mixed; boundary=o',
      '',
      '--o',
      'Content-Type: multipart/mixed; boundary=i',
      '',
      '--i',
      '',
      'inner',
      '--o',
      '',
      'second',
      '--o--',
    )
    const r2 = parseMimeTree(open)
    assert.equal(body(open, partAt(r2, [1, 1])), 'inner')
    assert.equal(body(open, partAt(r2, [2])), 'second')
  })

  test('multipart/digest parts default to message/rfc822', () => {
    const raw = crlf(
      'Content-Type: multipart/digest; boundary=d',
      '',
      '--d',
      '',
      'Subject: first',
      '',
      'one',
      '--d',
      'Content-Type: text/plain',
      '',
      'two',
      '--d',
      'Content-Type: multipart/mixed; boundary=m',
      '',
      '--m',
      '',
      'three',
      '--m--',
      '--d--',
    )
    const root = parseMimeTree(raw)
    const [a, b, c] = root.children as [MimePart, MimePart, MimePart]
    assert.deepEqual([a.type, a.subtype], ['message', 'rfc822'])
    assert.equal(headerValue(a.message!, 'subject'), ' first')
    assert.equal(body(raw, a.message), 'one')
    assert.deepEqual([b.type, b.subtype], ['text', 'plain'])
    assert.deepEqual([c.children[0]!.type, c.children[0]!.subtype], ['text', 'plain'])
  })
})

describe('parseMimeTree: message/rfc822 and part numbers', () => {
  const raw = crlf(
    'Subject: outer',
    'Content-Type: multipart/mixed; boundary=o',
    '',
    '--o',
    '',
    'text',
    '--o',
    'Content-Type: message/rfc822',
    '',
    'Subject: inner multipart',
    'Content-Type: multipart/alternative; boundary=i',
    '',
    '--i',
    '',
    'inner one',
    '--i',
    '',
    'inner two',
    '--i--',
    '--o',
    'Content-Type: message/rfc822',
    '',
    'Subject: inner plain',
    '',
    'plain inner body',
    '--o',
    'Content-Type: message/rfc822',
    'Content-Transfer-Encoding: base64',
    '',
    'U3ViamVjdDogeA0KDQp5',
    '--o--',
  )
  const root = parseMimeTree(raw)

  test('encapsulated messages are parsed', () => {
    const m = partAt(root, [2])!
    assert.equal(m.type, 'message')
    assert.ok(m.message)
    assert.equal(m.message.start, m.bodyStart)
    assert.equal(m.message.end, m.end)
    assert.equal(headerValue(m.message, 'subject'), ' inner multipart')
    assert.equal(partAt(root, [4])!.message, null, 'base64 message/rfc822 stays opaque')
  })

  test('sub-parts of a message/rfc822 address the encapsulated message', () => {
    assert.equal(body(raw, partAt(root, [1])), 'text')
    assert.equal(body(raw, partAt(root, [2, 1])), 'inner one')
    assert.equal(body(raw, partAt(root, [2, 2])), 'inner two')
    assert.equal(partAt(root, [2, 3]), null)
    assert.equal(body(raw, partAt(root, [3, 1])), 'plain inner body')
    assert.equal(partAt(root, [3, 2]), null)
    assert.equal(partAt(root, [3, 1, 1]), null)
    assert.equal(partAt(root, [4, 1]), null)
    assert.equal(partAt(root, [1, 1]), null)
  })

  test('in a message that is not multipart, part 1 is the body itself', () => {
    const simple = crlf('Subject: x', '', 'body')
    const r = parseMimeTree(simple)
    assert.equal(partAt(r, [1]), r)
    assert.equal(partAt(r, [2]), null)
    assert.equal(partAt(r, [1, 1]), null)
    const wrapped = crlf('Content-Type: message/rfc822', '', 'Subject: in', '', 'inside')
    const w = parseMimeTree(wrapped)
    assert.equal(partAt(w, [1]), w)
    assert.equal(body(wrapped, partAt(w, [1, 1])), 'inside')
  })
})

describe('parseMimeTree: limits', () => {
  test('10,000 nested multiparts parse quickly and stop at MAX_MIME_DEPTH', () => {
    const n = 10_000
    const parts: string[] = []
    for (let i = 0; i < n; i++) parts.push(`Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n`)
    parts.push('\r\nleaf\r\n')
    for (let i = n - 1; i >= 0; i--) parts.push(`--b${i}--\r\n`)
    const raw = Buffer.from(parts.join(''))
    const t0 = performance.now()
    const root = parseMimeTree(raw)
    assert.ok(performance.now() - t0 < 2000)
    assert.equal(depthOf(root), MAX_MIME_DEPTH)
    let deepest = root
    while (deepest.children[0]) deepest = deepest.children[0]
    assert.deepEqual(deepest.children, [])
    assert.ok(deepest.end <= raw.length && deepest.start <= deepest.bodyStart)
  })

  test('10,000 nested message/rfc822 parts stop at MAX_MIME_DEPTH', () => {
    const raw = Buffer.from(`${'Content-Type: message/rfc822\r\n\r\n'.repeat(10_000)}Subject: x\r\n\r\nend`)
    const root = parseMimeTree(raw)
    assert.equal(depthOf(root), MAX_MIME_DEPTH)
  })

  test('a multipart with very many parts keeps at most MAX_MIME_PARTS', () => {
    const raw = Buffer.from(
      `Content-Type: multipart/mixed; boundary=x\r\n\r\n${'--x\r\n\r\np\r\n'.repeat(MAX_MIME_PARTS * 3)}--x--`,
    )
    const root = parseMimeTree(raw)
    assert.equal(countParts(root), MAX_MIME_PARTS)
    assert.equal(body(raw, root.children[0]!), 'p')
  })

  test('garbage never throws', () => {
    let seed = 7
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed
    }
    const alphabet = [
      '\r\n',
      '\n',
      '--b',
      '--b--',
      ':',
      ' ',
      'Content-Type: multipart/mixed; boundary=b',
      'x',
      '\r',
      ';',
      '"',
    ]
    for (let k = 0; k < 300; k++) {
      let s = ''
      for (let i = 0; i < 60; i++) s += alphabet[rnd() % alphabet.length]
      const raw = Buffer.from(s)
      const root = parseMimeTree(raw)
      const stack = [root]
      while (stack.length) {
        const p = stack.pop()!
        assert.ok(p.start <= p.bodyStart && p.bodyStart <= p.end && p.end <= raw.length, s)
        stack.push(...p.children)
        if (p.message) stack.push(p.message)
      }
    }
  })
})
