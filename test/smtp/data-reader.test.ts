// MessageReader, table-driven: DATA framing and dot-unstuffing, BDAT assembly, the bare LF/CR
// refusal and the limits. Every DATA case is also fed split at every position and one octet at a
// time, since chunk boundaries are where framing bugs hide.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type MessageLimits, MessageReader } from '../../src/smtp/protocol/data-reader.ts'

const LIMITS: MessageLimits = { maxMessageBytes: 10_000, maxHeaderBytes: 1000, maxLineBytes: 100 }

interface DataResult {
  /** Octets of the input used (the rest belongs to the next command). */
  used: number
  done: boolean
  message: string | null
  problem: string | null
}

function runData(chunks: Buffer[], limits = LIMITS): DataResult {
  const reader = new MessageReader('data', limits)
  let used = 0
  for (const chunk of chunks) {
    used += reader.feed(chunk)
    if (reader.done) break
  }
  if (!reader.done) return { used, done: false, message: null, problem: null }
  const r = reader.finish()
  return { used, done: true, message: r.message?.toString('latin1') ?? null, problem: r.problem }
}

/** The same input whole, split in two at every position, and one octet at a time. */
function splits(input: string): Buffer[][] {
  const b = Buffer.from(input, 'latin1')
  const out: Buffer[][] = [[b]]
  for (let i = 1; i < b.length; i++) out.push([b.subarray(0, i), b.subarray(i)])
  out.push([...b].map((x) => Buffer.from([x])))
  return out
}

function checkAllSplits(input: string, expected: DataResult, limits = LIMITS): void {
  for (const chunks of splits(input)) {
    const got = runData(chunks, limits)
    assert.deepEqual(
      got,
      expected,
      `input ${JSON.stringify(input)} split ${chunks.map((c) => c.length).join('+')}`,
    )
  }
}

describe('DATA framing', () => {
  const rows: [string, string, Partial<DataResult>][] = [
    ['empty message: the end line right after DATA', '.\r\n', { message: '' }],
    ['one line', 'Subject: x\r\n\r\nhello\r\n.\r\n', { message: 'Subject: x\r\n\r\nhello\r\n' }],
    ['stuffed dot removed', 'a\r\n..b\r\n.\r\n', { message: 'a\r\n.b\r\n' }],
    ['stuffed lone dot', 'a\r\n..\r\n.\r\n', { message: 'a\r\n.\r\n' }],
    ['stuffed dot on the first line', '..x\r\n.\r\n', { message: '.x\r\n' }],
    ['dot not at line start kept', 'a.b\r\n.\r\n', { message: 'a.b\r\n' }],
    ['rest is the next command', 'a\r\n.\r\nQUIT\r\n', { message: 'a\r\n' }],
    ['empty lines kept', '\r\n\r\nx\r\n\r\n.\r\n', { message: '\r\n\r\nx\r\n\r\n' }],
    [
      '8-bit text kept',
      'Subject: caf\xe9\r\n\r\n\xff\r\n.\r\n',
      { message: 'Subject: caf\xe9\r\n\r\n\xff\r\n' },
    ],
    ['NUL is text', 'a\r\n\x00.\r\n.\r\n', { message: 'a\r\n\x00.\r\n' }],
  ]
  for (const [name, input, want] of rows) {
    it(name, () => {
      const end =
        input.indexOf('\r\n.\r\n') >= 0 ? input.indexOf('\r\n.\r\n') + 5 : input.indexOf('.\r\n') + 3
      checkAllSplits(input, { used: end, done: true, problem: null, message: null, ...want })
    })
  }

  it('needs more input until CRLF.CRLF', () => {
    for (const input of ['a\r\n', 'a\r\n.', 'a\r\n.\r', 'a\r\n..\r\n', 'a\r\n.x\r\n']) {
      checkAllSplits(input, { used: input.length, done: false, message: null, problem: null })
    }
  })
})

describe('DATA: bare LF and bare CR (RFC 5321 2.3.8)', () => {
  // Each is refused, never taken as the end; reading goes on to the real CRLF.CRLF.
  const payloads = [
    '\n.\n',
    '\n.\r\n',
    '\r.\r',
    '\r.\r\n',
    '\r\n.\r',
    '\r\n.\n',
    '\n.\r',
    'a\nb',
    'a\rb',
    '\r\r\n',
  ]
  for (const p of payloads) {
    it(`refuses ${JSON.stringify(p)} and ends only at CRLF.CRLF`, () => {
      const input = `x${p}MAIL FROM:<a@b.example>\r\n.\r\nNEXT`
      checkAllSplits(input, { used: input.length - 4, done: true, message: null, problem: 'BARE_LINE_END' })
    })
  }
  it('a lone CR ending one chunk followed by LF is a CRLF', () => {
    assert.deepEqual(runData([Buffer.from('a\r'), Buffer.from('\n.\r\n')]), {
      used: 6,
      done: true,
      message: 'a\r\n',
      problem: null,
    })
  })
})

describe('DATA limits', () => {
  const small: MessageLimits = { maxMessageBytes: 20, maxHeaderBytes: 10, maxLineBytes: 10 }
  it('size counts unstuffed octets; over the limit is refused after the end', () => {
    const fits = 'ab\r\n\r\n..345678\r\n' // 16 octets unstuffed
    checkAllSplits(
      `${fits}.\r\n`,
      { used: fits.length + 3, done: true, message: 'ab\r\n\r\n.345678\r\n', problem: null },
      small,
    )
    const over = 'ab\r\n\r\n12345678\r\n1234\r\n'
    checkAllSplits(
      `${over}.\r\n`,
      { used: over.length + 3, done: true, message: null, problem: 'TOO_BIG' },
      small,
    )
  })
  it('a line is at most maxLineBytes including CRLF', () => {
    checkAllSplits(
      '\r\n12345678\r\n.\r\n',
      { used: 15, done: true, message: '\r\n12345678\r\n', problem: null },
      small,
    )
    checkAllSplits(
      '\r\n123456789\r\n.\r\n',
      { used: 16, done: true, message: null, problem: 'LINE_TOO_LONG' },
      small,
    )
  })
  it('the header section (up to the empty line) is at most maxHeaderBytes', () => {
    const big = { ...small, maxLineBytes: 100 }
    checkAllSplits(
      'a: 12345\r\n\r\nbody\r\n.\r\n',
      { used: 21, done: true, message: 'a: 12345\r\n\r\nbody\r\n', problem: null },
      big,
    )
    checkAllSplits(
      'a: 123456\r\n\r\nb\r\n.\r\n',
      { used: 19, done: true, message: null, problem: 'HEADER_TOO_BIG' },
      big,
    )
    checkAllSplits(
      'a: 1\r\nb: 1\r\n\r\n.\r\n',
      { used: 17, done: true, message: null, problem: 'HEADER_TOO_BIG' },
      big,
    )
  })
})

describe('BDAT assembly', () => {
  function runBdat(chunks: string[], limits = LIMITS) {
    const reader = new MessageReader('bdat', limits)
    for (const c of chunks) assert.equal(reader.feed(Buffer.from(c, 'latin1')), c.length)
    const r = reader.finish()
    return { message: r.message?.toString('latin1') ?? null, problem: r.problem }
  }
  it('joins chunks as they are, dots included', () => {
    assert.deepEqual(runBdat(['Subject: x\r\n', '\r\n.\r\n', '..a\r\n']), {
      message: 'Subject: x\r\n\r\n.\r\n..a\r\n',
      problem: null,
    })
  })
  it('a CRLF split over two chunks is fine', () => {
    assert.deepEqual(runBdat(['a\r', '\nb\r\n']), { message: 'a\r\nb\r\n', problem: null })
  })
  it('no chunks is an empty message (BDAT 0 LAST)', () => {
    assert.deepEqual(runBdat([]), { message: '', problem: null })
  })
  it('refuses bare LF, bare CR, and a CR ending the message', () => {
    assert.equal(runBdat(['a\nb\r\n']).problem, 'BARE_LINE_END')
    assert.equal(runBdat(['a\r', 'b\r\n']).problem, 'BARE_LINE_END')
    assert.equal(runBdat(['a\r\nb\r']).problem, 'BARE_LINE_END')
  })
  it('a last line without CRLF is measured too', () => {
    const small = { maxMessageBytes: 100, maxHeaderBytes: 100, maxLineBytes: 10 }
    assert.equal(runBdat(['\r\n', '123456789'], small).problem, 'LINE_TOO_LONG')
    assert.deepEqual(runBdat(['\r\n', '12345678'], small), { message: '\r\n12345678', problem: null })
  })
  it('over the size limit', () => {
    const small = { maxMessageBytes: 10, maxHeaderBytes: 100, maxLineBytes: 100 }
    assert.equal(runBdat(['\r\n12345', '6789\r\n'], small).problem, 'TOO_BIG')
  })
})

describe('DATA against a naive reference', () => {
  /** The framing rules written the slow, obvious way. */
  function reference(input: string): DataResult {
    const virtual = `\r\n${input}` // DATA's own CRLF starts the first line
    const end = virtual.indexOf('\r\n.\r\n')
    if (end < 0) return { used: input.length, done: false, message: null, problem: null }
    const text = virtual.slice(2, end + 2)
    const used = end + 3
    if (/\r(?!\n)|(?<!\r)\n/.test(text)) return { used, done: true, message: null, problem: 'BARE_LINE_END' }
    const message = text
      .split('\r\n')
      .map((line) => (line.startsWith('.') ? line.slice(1) : line))
      .join('\r\n')
    return { used, done: true, message, problem: null }
  }

  it('agrees on 3000 random inputs, whole and split', () => {
    let seed = 42
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const alphabet = ['a', '.', '\r', '\n', '\r\n', '\r\n.', '.\r\n']
    const limits = { maxMessageBytes: 1e6, maxHeaderBytes: 1e6, maxLineBytes: 1e6 }
    for (let n = 0; n < 3000; n++) {
      let input = ''
      const parts = Math.floor(random() * 12)
      for (let i = 0; i < parts; i++) input += alphabet[Math.floor(random() * alphabet.length)]
      if (random() < 0.7) input += '\r\n.\r\nX'
      const want = reference(input)
      const b = Buffer.from(input, 'latin1')
      const cut = Math.floor(random() * (b.length + 1))
      for (const chunks of [[b], [b.subarray(0, cut), b.subarray(cut)]]) {
        assert.deepEqual(runData(chunks, limits), want, JSON.stringify(input))
      }
    }
  })
})
