// The IMAP response writer: ImapValue (values.ts) to bytes, and the response lines built from
// them (untagged data, tagged and untagged status responses, continuation requests). The only
// place that decides how a value is written on the wire (RFC 9051 4.3, 9; RFC 3516 literal8).
// Invariants:
// - A string is quoted only when it is at most 4096 chars of %x01-7F without CR or LF (`\` and `"`
//   escaped); anything else, including all non-ASCII text, is a literal of its UTF-8 bytes, so
//   every string reaches the client byte for byte.
// - Buffers are always literals (`~{n}` when marked binary). Atoms are written as given.
// - Response text (after OK/NO/BAD/BYE/PREAUTH and `+`) is sanitised: CR, LF and NUL removed,
//   non-ASCII replaced by '?', so a text can never end a line or smuggle a response. A response
//   code also loses ']' so it cannot close its brackets early.
// - Dates go out in UTC ("dd-Mon-yyyy hh:mm:ss +0000").

import { encodeMailboxName } from './utf7.ts'
import { atom, type ImapValue } from './values.ts'

const MAX_QUOTED = 4096
const CRLF = '\r\n'

/** Chunks are gathered as text and turned into a Buffer only before a literal or at the end. */
class Sink {
  text = ''
  readonly out: Buffer[]
  constructor(out: Buffer[]) {
    this.out = out
  }
  flush(): void {
    if (this.text) this.out.push(Buffer.from(this.text, 'latin1')) // quoted strings are ASCII; atoms may carry latin1-packed bytes (BODYSTRUCTURE)
    this.text = ''
  }
  literal(bytes: Buffer, binary: boolean): void {
    this.text += `${binary ? '~' : ''}{${bytes.length}}${CRLF}`
    this.flush()
    this.out.push(bytes)
  }
}

function canQuote(s: string): boolean {
  if (s.length > MAX_QUOTED) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0 || c > 0x7f || c === 0x0a || c === 0x0d) return false
  }
  return true
}

function write(v: ImapValue, sink: Sink): void {
  if (v === null) {
    sink.text += 'NIL'
  } else if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`IMAP numbers are non-negative integers, not ${v}`)
    sink.text += String(v)
  } else if (typeof v === 'string') {
    if (canQuote(v)) sink.text += `"${v.replace(/[\\"]/g, '\\$&')}"`
    else sink.literal(Buffer.from(v, 'utf8'), false)
  } else if (Array.isArray(v)) {
    sink.text += '('
    for (let i = 0; i < v.length; i++) {
      if (i > 0) sink.text += ' '
      write(v[i] as ImapValue, sink)
    }
    sink.text += ')'
  } else if ('atom' in v) {
    sink.text += v.atom
  } else {
    sink.literal(v.literal, v.binary === true)
  }
}

/** Appends the wire form of v to out. */
export function encodeValue(v: ImapValue, out: Buffer[]): void {
  const sink = new Sink(out)
  write(v, sink)
  sink.flush()
}

/** The wire form of v. */
export function encode(v: ImapValue): Buffer {
  const out: Buffer[] = []
  encodeValue(v, out)
  return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out)
}

/** `* part part ...` CRLF; the parts are separated by SP, not wrapped in a list. */
export function untagged(...parts: ImapValue[]): Buffer {
  const out: Buffer[] = []
  const sink = new Sink(out)
  sink.text = '*'
  for (const p of parts) {
    sink.text += ' '
    write(p, sink)
  }
  sink.text += CRLF
  sink.flush()
  return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out)
}

/** Text fit for a response line: no CR, LF or NUL, non-ASCII as '?'. */
export function sanitizeText(text: string): string {
  let out = ''
  for (const ch of text) {
    const c = ch.codePointAt(0) as number
    if (c === 0 || c === 0x0a || c === 0x0d) continue
    out += c > 0x7f ? '?' : ch
  }
  return out
}

const DEFAULT_TEXT: Record<string, string> = {
  OK: 'Completed',
  NO: 'Failed',
  BAD: 'Invalid command',
  BYE: 'Logging out',
  PREAUTH: 'Logged in',
}

function statusLine(
  head: string,
  status: 'OK' | 'NO' | 'BAD' | 'BYE' | 'PREAUTH',
  text: string,
  code?: string,
): Buffer {
  const t = sanitizeText(text) || (DEFAULT_TEXT[status] as string)
  const c = code ? sanitizeText(code).replaceAll(']', '') : ''
  return Buffer.from(`${head} ${status} ${c ? `[${c}] ` : ''}${t}${CRLF}`, 'latin1')
}

/** `tag OK [CODE] text` CRLF. */
export function tagged(tag: string, status: 'OK' | 'NO' | 'BAD', text: string, code?: string): Buffer {
  return statusLine(sanitizeText(tag).replaceAll(' ', '') || '*', status, text, code)
}

/** `* OK [CODE] text` CRLF (also NO, BAD, BYE, PREAUTH). */
export function untaggedStatus(
  status: 'OK' | 'NO' | 'BAD' | 'BYE' | 'PREAUTH',
  text: string,
  code?: string,
): Buffer {
  return statusLine('*', status, text, code)
}

/** `+ text` CRLF (the text may be empty, e.g. an empty AUTHENTICATE challenge). */
export function continuation(text: string): Buffer {
  return Buffer.from(`+ ${sanitizeText(text)}${CRLF}`, 'latin1')
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const pad = (n: number, w = 2): string => String(n).padStart(w, '0')

/** The text of a date-time in UTC, without its quotes: `dd-Mon-yyyy hh:mm:ss +0000`. */
export function imapDateTime(d: Date): string {
  return (
    `${pad(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${pad(d.getUTCFullYear(), 4)} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`
  )
}

/** A flag list: each flag as an atom. */
export function flagList(flags: string[]): ImapValue {
  return flags.map((f) => atom(f))
}

/** A mailbox name as a string value: modified UTF-7 unless the client enabled UTF8=ACCEPT. */
export function quoteMailbox(name: string, utf8Accept = false): ImapValue {
  return utf8Accept ? name : encodeMailboxName(name)
}
