// The MIME structure of a raw RFC 5322 message as a tree of byte offsets (RFC 2045, RFC 2046,
// RFC 2183, RFC 2231), plus IMAP part numbering over it (RFC 9051 6.4.5). Owns how header
// blocks, multipart boundaries and encapsulated messages are found; the IMAP FETCH builders
// (envelope, body structure, BODY[section]) read only this tree and subarrays of the raw bytes.
//
// Invariants:
// - Bodies are never copied or decoded: a part is offsets into the one raw Buffer, and
//   start <= bodyStart <= end <= raw.length for every part.
// - [start, bodyStart) is the part's header block including the blank line that ends it (CRLF,
//   or a bare LF). A part that begins with a blank line has no fields and a header block of just
//   that line. A part whose header never reaches a blank line is all header: bodyStart == end,
//   so its body is empty.
// - A child of a multipart excludes the line break before the next delimiter (RFC 2046 5.1.1:
//   it belongs to the delimiter); the preamble and epilogue belong to no child.
// - A delimiter line is `--boundary` at the start of a line followed only by optional linear
//   white space (close delimiter: `--boundary--`, rest of line ignored). A longer line that
//   merely begins with the boundary is body text.
// - A multipart with no usable boundary, or with no delimiter line, has no children: it is an
//   opaque leaf (`isMultipart` is false for it) and IMAP part 1 of it is its own body.
// - Parsing never throws and is linear per nesting level: parts deeper than MAX_MIME_DEPTH, and
//   parts beyond the first MAX_MIME_PARTS, are opaque leaves (no children, no `message`); parts
//   past the MAX_MIME_PARTS-th are left out of their multipart altogether. Recursion depth is
//   bounded by MAX_MIME_DEPTH.
// - message/rfc822 and message/global bodies are parsed as a message only when their transfer
//   encoding is an identity one (7BIT, 8BIT, BINARY); otherwise `message` is null.

import { isUtf8 } from 'node:buffer'

/** Nesting (multipart children and encapsulated messages) below which parts become opaque leaves. */
export const MAX_MIME_DEPTH = 50
/** Parts parsed per message, the root included; later parts are dropped or left opaque. */
export const MAX_MIME_PARTS = 5000

export interface HeaderField {
  /** The field name as written (before the colon, trailing white space removed). */
  name: string
  /** `name` lowercased, for lookups. */
  lower: string
  /**
   * The bytes after the colon up to (not including) the field's final line break, folding line
   * breaks kept, decoded as UTF-8 when they are valid UTF-8 and as latin1 otherwise.
   */
  value: string
  /** Offset of the field's first byte. */
  start: number
  /** Offset one past the field's final line break (or its last byte, at the end of the data). */
  end: number
}

export interface MimePart {
  /** Offset of the part's first header byte. */
  start: number
  /** Offset just after the blank line ending the header block (== end when there is none). */
  bodyStart: number
  /** Offset one past the last body byte. */
  end: number
  headers: HeaderField[]
  /** Lowercased media type and subtype; text/plain by default, message/rfc822 in a multipart/digest. */
  type: string
  subtype: string
  /**
   * Content-Type parameters in order, names lowercased, values unquoted. RFC 2231 continuations
   * are joined: `a*0="x"; a*1="y"` is ['a', 'xy']; when any section is extended the name keeps
   * its star and the value stays encoded (`['a*', "utf-8'en'%E2%82%AC"]`), as Dovecot sends it.
   */
  params: Array<[string, string]>
  id: string | null
  description: string | null
  /** Content-Transfer-Encoding, uppercased; '7BIT' by default. */
  encoding: string
  /** Content-Disposition with its type lowercased and parameters as in `params`. */
  disposition: { type: string; params: Array<[string, string]> } | null
  language: string[] | null
  location: string | null
  md5: string | null
  /** Lines in the body: its LF count, plus one when it is not empty and does not end in LF. */
  lines: number
  /** The parts of a multipart/* (empty for every other part and for an opaque multipart). */
  children: MimePart[]
  /** The encapsulated message of a message/rfc822 or message/global part, when parsed. */
  message: MimePart | null
}

const LF = 0x0a
const CR = 0x0d
const SP = 0x20
const TAB = 0x09
const DASH = 0x2d
const COLON = 0x3a

interface Budget {
  parts: number
}

/** Builds the part tree of a whole message. Never throws. */
export function parseMimeTree(raw: Buffer): MimePart {
  return parsePart(raw, 0, raw.length, 0, false, { parts: 0 })
}

/** The header block of a part, including its terminating blank line (a subarray, not a copy). */
export function headerBlock(raw: Buffer, part: MimePart): Buffer {
  return raw.subarray(part.start, part.bodyStart)
}

/** The body of a part (a subarray, not a copy). */
export function bodyOf(raw: Buffer, part: MimePart): Buffer {
  return raw.subarray(part.bodyStart, part.end)
}

/** True for a multipart/* part that has children (an opaque multipart is a leaf). */
export function isMultipart(part: MimePart): boolean {
  return part.type === 'multipart' && part.children.length > 0
}

/**
 * The part an IMAP part number addresses (RFC 9051 6.4.5), or null when there is none. `[]` is
 * the message itself. In a message that is not multipart, part 1 is the message's own body (the
 * root part). Below a message/rfc822 part, the numbers address the parts of the encapsulated
 * message: its children when it is multipart, otherwise only `1`, its root.
 */
export function partAt(root: MimePart, path: number[]): MimePart | null {
  let cur: MimePart | null = null
  for (const n of path) {
    if (!Number.isInteger(n) || n < 1) return null
    const container: MimePart | null = cur === null ? root : cur.message
    if (container)
      cur = isMultipart(container) ? (container.children[n - 1] ?? null) : n === 1 ? container : null
    else if (cur && isMultipart(cur)) cur = cur.children[n - 1] ?? null
    else return null
    if (!cur) return null
  }
  return cur ?? root
}

/** The first header field with this (case-insensitive) name, or undefined. */
export function headerValue(part: MimePart, name: string): string | undefined {
  const lower = name.toLowerCase()
  for (const f of part.headers) if (f.lower === lower) return f.value
  return undefined
}

/**
 * A parameter's value with RFC 2231 decoded: the plain `name` if present, else `name*`
 * percent-decoded in its declared charset (UTF-8 when unknown). Null when absent.
 */
export function paramValue(params: Array<[string, string]>, name: string): string | null {
  const lower = name.toLowerCase()
  for (const [k, v] of params) if (k === lower) return v
  for (const [k, v] of params) if (k === `${lower}*`) return decode2231(v)
  return null
}

/** Removes folding (CRLF or LF before white space) and stray line breaks, then trims. */
export function unfold(value: string): string {
  return value
    .replace(/\r?\n(?=[ \t])/g, '')
    .replace(/[\r\n]/g, '')
    .trim()
}

function parsePart(
  raw: Buffer,
  start: number,
  end: number,
  depth: number,
  inDigest: boolean,
  budget: Budget,
): MimePart {
  budget.parts++
  const { headers, bodyStart } = parseHeaderBlock(raw, start, end)
  const part: MimePart = {
    start,
    bodyStart,
    end,
    headers,
    type: inDigest ? 'message' : 'text',
    subtype: inDigest ? 'rfc822' : 'plain',
    params: [],
    id: null,
    description: null,
    encoding: '7BIT',
    disposition: null,
    language: null,
    location: null,
    md5: null,
    lines: countLines(raw, bodyStart, end),
    children: [],
    message: null,
  }
  applyMimeHeaders(part)
  const opaque = depth >= MAX_MIME_DEPTH || budget.parts >= MAX_MIME_PARTS
  if (opaque) return part
  if (part.type === 'multipart') {
    const boundary = paramValue(part.params, 'boundary')
    if (boundary) {
      const ranges = findParts(raw, bodyStart, end, Buffer.from(`--${boundary}`, 'utf8'))
      const digest = part.subtype === 'digest'
      for (const [s, e] of ranges) {
        if (budget.parts >= MAX_MIME_PARTS) break
        part.children.push(parsePart(raw, s, e, depth + 1, digest, budget))
      }
    }
  } else if (
    part.type === 'message' &&
    (part.subtype === 'rfc822' || part.subtype === 'global') &&
    (part.encoding === '7BIT' || part.encoding === '8BIT' || part.encoding === 'BINARY')
  ) {
    part.message = parsePart(raw, bodyStart, end, depth + 1, false, budget)
  }
  return part
}

function parseHeaderBlock(
  raw: Buffer,
  start: number,
  end: number,
): { headers: HeaderField[]; bodyStart: number } {
  const headers: HeaderField[] = []
  const hay = raw.subarray(0, end)
  let pos = start
  let current: { start: number; colon: number } | null = null
  let currentEnd = start
  const finish = (): void => {
    if (!current) return
    let valueEnd = currentEnd
    if (valueEnd > current.start && raw[valueEnd - 1] === LF) valueEnd--
    if (valueEnd > current.start && raw[valueEnd - 1] === CR) valueEnd--
    let name: string
    let value: string
    if (current.colon >= 0) {
      name = decodeText(raw.subarray(current.start, current.colon)).replace(/[ \t]+$/, '')
      value = decodeText(raw.subarray(Math.min(current.colon + 1, valueEnd), valueEnd))
    } else {
      name = decodeText(raw.subarray(current.start, valueEnd)).trim()
      value = ''
    }
    headers.push({ name, lower: name.toLowerCase(), value, start: current.start, end: currentEnd })
    current = null
  }
  while (pos < end) {
    const lf = hay.indexOf(LF, pos)
    const next = lf < 0 ? end : lf + 1
    let contentEnd = next
    if (contentEnd > pos && raw[contentEnd - 1] === LF) contentEnd--
    if (contentEnd > pos && raw[contentEnd - 1] === CR) contentEnd--
    if (contentEnd === pos) {
      finish()
      return { headers, bodyStart: next }
    }
    const first = raw[pos]
    if ((first === SP || first === TAB) && current) {
      currentEnd = next
    } else {
      finish()
      const colon = raw.subarray(0, contentEnd).indexOf(COLON, pos)
      current = { start: pos, colon }
      currentEnd = next
    }
    pos = next
  }
  finish()
  return { headers, bodyStart: end }
}

/** Byte ranges of the body parts of a multipart body in [from, end), delimited by `needle`. */
function findParts(raw: Buffer, from: number, end: number, needle: Buffer): Array<[number, number]> {
  const hay = raw.subarray(0, end)
  const delimiters: Array<{ line: number; after: number; close: boolean }> = []
  let at = from
  while (at < end) {
    const i = hay.indexOf(needle, at)
    if (i < 0) break
    at = i + 1
    if (i !== from && raw[i - 1] !== LF) continue
    let j = i + needle.length
    const close = j + 1 < end && raw[j] === DASH && raw[j + 1] === DASH
    if (close) j += 2
    while (j < end && (raw[j] === SP || raw[j] === TAB)) j++
    const eol = j >= end || raw[j] === LF || (raw[j] === CR && (j + 1 >= end || raw[j + 1] === LF))
    if (!close && !eol) continue
    const lf = hay.indexOf(LF, j)
    const after = lf < 0 ? end : lf + 1
    delimiters.push({ line: i, after, close })
    if (close) break
    at = after
  }
  const ranges: Array<[number, number]> = []
  for (let k = 0; k < delimiters.length; k++) {
    const d = delimiters[k]!
    if (d.close) break
    const partStart = d.after
    const next = delimiters[k + 1]
    let partEnd = end
    if (next) {
      partEnd = next.line
      if (partEnd > partStart && raw[partEnd - 1] === LF) partEnd--
      if (partEnd > partStart && raw[partEnd - 1] === CR) partEnd--
    }
    ranges.push([partStart, Math.max(partStart, partEnd)])
  }
  return ranges
}

function countLines(raw: Buffer, start: number, end: number): number {
  if (end <= start) return 0
  const hay = raw.subarray(0, end)
  let n = 0
  let i = hay.indexOf(LF, start)
  while (i >= 0) {
    n++
    i = hay.indexOf(LF, i + 1)
  }
  if (raw[end - 1] !== LF) n++
  return n
}

function decodeText(bytes: Buffer): string {
  return isUtf8(bytes) ? bytes.toString('utf8') : bytes.toString('latin1')
}

function applyMimeHeaders(part: MimePart): void {
  const seen = new Set<string>()
  for (const f of part.headers) {
    if (seen.has(f.lower)) continue // the first occurrence of each field wins
    seen.add(f.lower)
    switch (f.lower) {
      case 'content-type': {
        const ct = parseContentType(f.value)
        if (ct) {
          part.type = ct.type
          part.subtype = ct.subtype
          part.params = ct.params
        }
        break
      }
      case 'content-transfer-encoding': {
        const s = new Scanner(unfold(f.value))
        s.skipCfws()
        const enc = s.token()
        if (enc) part.encoding = enc.toUpperCase()
        break
      }
      case 'content-disposition': {
        const s = new Scanner(unfold(f.value))
        s.skipCfws()
        const type = s.token()
        if (type) part.disposition = { type: type.toLowerCase(), params: s.params() }
        break
      }
      case 'content-id':
        part.id = unfold(f.value)
        break
      case 'content-description':
        part.description = unfold(f.value)
        break
      case 'content-location':
        part.location = unfold(f.value)
        break
      case 'content-md5':
        part.md5 = unfold(f.value)
        break
      case 'content-language': {
        const langs = stripComments(unfold(f.value))
          .split(',')
          .map((l) => l.trim())
          .filter((l) => l.length > 0)
        part.language = langs.length ? langs : null
        break
      }
    }
  }
}

function parseContentType(
  value: string,
): { type: string; subtype: string; params: Array<[string, string]> } | null {
  const s = new Scanner(unfold(value))
  s.skipCfws()
  const type = s.token()
  s.skipCfws()
  if (!type || !s.eat('/')) return null
  s.skipCfws()
  const subtype = s.token()
  if (!subtype) return null
  return { type: type.toLowerCase(), subtype: subtype.toLowerCase(), params: s.params() }
}

function stripComments(v: string): string {
  const s = new Scanner(v)
  let out = ''
  while (!s.done()) {
    if (s.peek() === '(') s.comment()
    else if (s.peek() === '"') out += s.quoted()
    else out += s.next()
  }
  return out
}

// RFC 2045 tspecials plus white space and controls end a token.
const TSPECIALS = new Set(['(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '='])

/** A forgiving cursor over a structured header value (RFC 2045 5.1 grammar with CFWS). */
class Scanner {
  private s: string
  private i = 0
  constructor(s: string) {
    this.s = s
  }
  done(): boolean {
    return this.i >= this.s.length
  }
  peek(): string {
    return this.s[this.i] ?? ''
  }
  next(): string {
    return this.s[this.i++] ?? ''
  }
  eat(c: string): boolean {
    if (this.s[this.i] !== c) return false
    this.i++
    return true
  }
  skipCfws(): boolean {
    const before = this.i
    for (;;) {
      const c = this.s[this.i]
      if (c === ' ' || c === '\t' || c === '\r' || c === '\n') this.i++
      else if (c === '(') this.comment()
      else return this.i > before
    }
  }
  /** Skips a (possibly nested) comment at the cursor and returns its text. */
  comment(): string {
    let depth = 0
    let out = ''
    while (this.i < this.s.length) {
      const c = this.s[this.i++]!
      if (c === '\\' && this.i < this.s.length) {
        out += this.s[this.i++]
        continue
      }
      if (c === '(') {
        if (depth++ > 0) out += c
      } else if (c === ')') {
        if (--depth === 0) return out
        out += c
      } else out += c
    }
    return out
  }
  /** A quoted string at the cursor, unquoted; an unterminated one runs to the end. */
  quoted(): string {
    this.i++
    let out = ''
    while (this.i < this.s.length) {
      const c = this.s[this.i++]!
      if (c === '"') return out
      if (c === '\\' && this.i < this.s.length) out += this.s[this.i++]
      else out += c
    }
    return out
  }
  token(): string {
    const from = this.i
    while (this.i < this.s.length) {
      const c = this.s[this.i]!
      if (c <= ' ' || c === '\x7f' || TSPECIALS.has(c)) break
      this.i++
    }
    return this.s.slice(from, this.i)
  }
  /** A lenient parameter value: a quoted string, or text up to white space, `;`, `(` or `"`. */
  private value(): string {
    if (this.peek() === '"') return this.quoted()
    const from = this.i
    while (this.i < this.s.length) {
      const c = this.s[this.i]!
      if (c === ';' || c === '(' || c === '"' || c === ' ' || c === '\t' || c === '\r' || c === '\n') break
      this.i++
    }
    return this.s.slice(from, this.i)
  }
  private skipTo(c: string): void {
    while (this.i < this.s.length && this.s[this.i] !== c) {
      if (this.s[this.i] === '"') this.quoted()
      else this.i++
    }
  }
  /** The `; name=value` list from the cursor, RFC 2231 continuations joined (see MimePart.params). */
  params(): Array<[string, string]> {
    const rawParams: Array<[string, string]> = []
    for (;;) {
      this.skipTo(';')
      if (!this.eat(';')) break
      this.skipCfws()
      const from = this.i
      while (this.i < this.s.length && !'=;"( \t\r\n'.includes(this.s[this.i]!)) this.i++
      const name = this.s.slice(from, this.i).toLowerCase()
      this.skipCfws()
      if (!name || !this.eat('=')) continue
      this.skipCfws()
      let value = this.value()
      // Broken unquoted values with spaces (`name=my file.pdf`): keep the words, drop comments.
      while (!this.done() && this.peek() !== ';') {
        const before = this.i
        const more = this.value()
        if (this.i > before) value += more
        else if (this.skipCfws()) {
          if (!this.done() && this.peek() !== ';') value += ' '
        } else value += this.next()
      }
      rawParams.push([name, value])
    }
    return join2231(rawParams)
  }
}

const ATTRIBUTE_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/

function join2231(rawParams: Array<[string, string]>): Array<[string, string]> {
  interface Group {
    sections: Array<{ n: number; value: string; extended: boolean }>
  }
  const order: Array<string | Group> = []
  const groups = new Map<string, Group>()
  for (const [name, value] of rawParams) {
    const m = /^(.+?)\*(?:(\d{1,6})(\*)?)?$/.exec(name)
    if (!m) {
      order.push(name)
      order.push(value)
      continue
    }
    const base = m[1]!
    let g = groups.get(base)
    if (!g) {
      g = { sections: [] }
      groups.set(base, g)
      order.push(base)
      order.push(g)
    }
    const n = m[2] === undefined ? 0 : Number(m[2])
    const extended = m[2] === undefined || m[3] === '*'
    if (!g.sections.some((s) => s.n === n)) g.sections.push({ n, value, extended })
  }
  const out: Array<[string, string]> = []
  const seen = new Set<string>()
  for (let k = 0; k < order.length; k += 2) {
    const name = order[k] as string
    const item = order[k + 1]!
    let entry: [string, string]
    if (typeof item === 'string') entry = [name, item]
    else {
      const sections = item.sections.sort((a, b) => a.n - b.n)
      if (!sections.some((s) => s.extended)) entry = [name, sections.map((s) => s.value).join('')]
      else {
        let value = ''
        sections.forEach((s, idx) => {
          if (s.extended) value += s.value
          else value += (idx === 0 ? "''" : '') + percentEncode(s.value)
        })
        entry = [`${name}*`, value]
      }
    }
    if (seen.has(entry[0])) continue // the first occurrence of a parameter wins
    seen.add(entry[0])
    out.push(entry)
  }
  return out
}

function percentEncode(v: string): string {
  let out = ''
  for (const b of Buffer.from(v, 'utf8')) {
    const c = String.fromCharCode(b)
    out += b < 0x80 && ATTRIBUTE_CHAR.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** Decodes an RFC 2231 extended value `charset'language'percent-encoded`. */
function decode2231(v: string): string {
  const m = /^([^']*)'[^']*'([\s\S]*)$/.exec(v)
  const charset = m ? m[1]! : ''
  const text = m ? m[2]! : v
  const bytes: number[] = []
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 3), 16))
      i += 2
    } else if (c < 0x80) bytes.push(c)
    else for (const b of Buffer.from(text[i]!, 'utf8')) bytes.push(b)
  }
  const buf = Buffer.from(bytes)
  try {
    return new TextDecoder(charset || 'utf-8').decode(buf)
  } catch {
    return new TextDecoder('utf-8').decode(buf)
  }
}
