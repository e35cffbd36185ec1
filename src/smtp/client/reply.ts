// Server replies as the outbound client reads them (RFC 5321 4.2): bytes in, whole replies out,
// with the code, the enhanced status code (RFC 3463) and the text split apart. Pure: no sockets.
// Invariants:
// - A reply is complete at its last line, `ddd` or `ddd text`; earlier lines are `ddd-text`.
//   Lines end at LF, with the CR before it dropped (servers that send bare LF are tolerated).
// - The enhanced code is taken only when its class matches the reply's (2.x.x for 2yz...), from
//   the first line, and is stripped from every line that carries it.
// - Anything that is not a reply line, a line longer than MAX_LINE_BYTES or a reply of more than
//   MAX_REPLY_LINES lines is a protocol error: the connection cannot be trusted after it.

export interface Reply {
  code: number
  /** RFC 3463 `class.subject.detail`, or null when the server gave none. */
  enhanced: string | null
  /** The text of every line, without code and enhanced code, joined by '\n'. */
  message: string
  /** The text of every line after `ddd-`/`ddd ` (enhanced code kept): what EHLO keywords are read from. */
  lines: string[]
}

export class ReplyProtocolError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ReplyProtocolError'
  }
}

/** RFC 5321 4.5.3.1.5 says 512 octets; real servers go over it, so allow some room. */
export const MAX_LINE_BYTES = 8192
export const MAX_REPLY_LINES = 256

const LINE = /^(\d{3})(?:([ -])(.*))?$/s
const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?: +|$)/

/** Splits an incoming byte stream into replies. */
export class ReplyParser {
  private partial: Buffer = Buffer.alloc(0)
  private lines: { code: number; text: string }[] = []

  /** Feeds bytes; returns the replies they completed. Throws ReplyProtocolError. */
  feed(chunk: Buffer): Reply[] {
    const out: Reply[] = []
    let data = this.partial.length > 0 ? Buffer.concat([this.partial, chunk]) : chunk
    for (let lf = data.indexOf(10); lf >= 0; lf = data.indexOf(10)) {
      const end = lf > 0 && data[lf - 1] === 13 ? lf - 1 : lf
      if (end > MAX_LINE_BYTES) throw new ReplyProtocolError('reply line too long')
      const reply = this.line(data.subarray(0, end).toString('utf8'))
      if (reply) out.push(reply)
      data = data.subarray(lf + 1)
    }
    if (data.length > MAX_LINE_BYTES) throw new ReplyProtocolError('reply line too long')
    this.partial = Buffer.from(data) // a copy, so the chunk it came from can be freed
    return out
  }

  /** Forgets everything buffered (STARTTLS: nothing read before the handshake is kept). */
  reset(): void {
    this.partial = Buffer.alloc(0)
    this.lines = []
  }

  private line(text: string): Reply | null {
    const m = LINE.exec(text)
    if (!m) throw new ReplyProtocolError(`not an SMTP reply line: ${JSON.stringify(text.slice(0, 80))}`)
    const code = Number(m[1])
    if (code < 200 || code > 599) throw new ReplyProtocolError(`reply code ${m[1]} out of range`)
    this.lines.push({ code, text: m[3] ?? '' })
    if (m[2] === '-') {
      if (this.lines.length >= MAX_REPLY_LINES) throw new ReplyProtocolError('reply has too many lines')
      return null
    }
    const lines = this.lines
    this.lines = []
    return makeReply(
      lines[0]!.code,
      lines.map((l) => l.text),
    )
  }
}

/** A reply from its code and line texts (also used for replies made up locally). */
export function makeReply(code: number, lines: string[]): Reply {
  const cls = String(code)[0]
  const first = ENHANCED.exec(lines[0] ?? '')
  const enhanced = first && first[1] === cls ? `${first[1]}.${Number(first[2])}.${Number(first[3])}` : null
  const message = lines
    .map((text) => {
      const m = ENHANCED.exec(text)
      return m && m[1] === cls ? text.slice(m[0].length) : text
    })
    .join('\n')
  return { code, enhanced, message, lines }
}

/** `250 2.1.5 Ok` style, for error messages and logs (first line only). */
export function describeReply(r: Reply): string {
  const first = r.message.split('\n', 1)[0] ?? ''
  return [String(r.code), r.enhanced, first].filter((x) => x).join(' ')
}
