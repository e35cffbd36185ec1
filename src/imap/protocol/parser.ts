// The IMAP argument reader: a cursor over ONE complete command in wire format (literals inline
// as the client sent them, the final CRLF removed; protocol/framing.ts makes such frames). The
// commands read their arguments with it, element by element, to the formal syntax of RFC 3501 /
// RFC 9051 section 9, with LITERAL+/LITERAL- (RFC 7888) and literal8 (RFC 3516).
// Invariants:
// - Every grammar violation is an ImapSyntaxError whose message is fit to show after BAD: short,
//   ASCII, never echoing raw client bytes beyond an atom.
// - The cursor moves only over what was read successfully: a single element (atom, number,
//   string, literal, mailbox, sequence set, flag, date) that fails to parse leaves the cursor at
//   its first byte (APPEND relies on this to find its message literal). A list that fails
//   midway leaves it after the items already read.
// - A literal's announced size is trusted only if the bytes are there: `{n}` with fewer than n
//   bytes left is an error, never a read past the end.
// - `{n}` / `{n+}` literals are CHAR8 (no NUL). literal8 `~{n}` / `~{n+}` is accepted only by
//   stringBytes8() (APPEND's message under BINARY); everywhere else it is an error.
// - Quoted strings allow only the escapes `\\` and `\"`, no CR, LF or NUL, and 8-bit only as
//   valid UTF-8 (RFC 9051 QUOTED-CHAR). Literal contents are returned as sent (string() decodes
//   them as UTF-8, replacing invalid sequences).
// - Mailbox names come out decoded (modified UTF-7, or UTF-8 under UTF8=ACCEPT), free of control
//   characters, with INBOX in any case as 'INBOX'.
// - Nested parenthesised lists are capped at MAX_DEPTH wherever a parser recurses.
// Leniency, on purpose: date-time accepts a one-digit day ("1-Jan-2024 ..."), as common clients
// send it and the meaning is unambiguous.

import { isUtf8 } from 'node:buffer'
import type { DayDate, SeqNumber, SequenceSet } from './types.ts'
import { decodeMailboxName } from './utf7.ts'

/** How deeply parenthesised lists (search programs) may nest. */
export const MAX_DEPTH = 32

const MAX_NUMBER = 4294967295
const MAX_NUMBER64 = Number.MAX_SAFE_INTEGER

/** A command that does not match the grammar; the message goes to the client after BAD. */
export class ImapSyntaxError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ImapSyntaxError'
  }
}

const NUL = 0x00
const LF = 0x0a
const CR = 0x0d
const SP = 0x20
const DQUOTE = 0x22
const PERCENT = 0x25
const LPAREN = 0x28
const RPAREN = 0x29
const STAR = 0x2a
const PLUS = 0x2b
const COMMA = 0x2c
const DIGIT_0 = 0x30
const DIGIT_9 = 0x39
const COLON = 0x3a
const BACKSLASH = 0x5c
const RBRACKET = 0x5d
const LBRACE = 0x7b
const RBRACE = 0x7d
const TILDE = 0x7e

/** ATOM-CHAR: CHAR except atom-specials ( ) { SP CTL % * " \ ]. */
const ATOM_CHARS = new Uint8Array(256)
for (let c = 0x21; c <= 0x7e; c++) ATOM_CHARS[c] = 1
for (const ch of '(){%*"\\]') ATOM_CHARS[ch.charCodeAt(0)] = 0
/** ASTRING-CHAR: ATOM-CHAR / resp-specials. */
const ASTRING_CHARS = ATOM_CHARS.slice()
ASTRING_CHARS[RBRACKET] = 1
/** tag: ASTRING-CHAR except '+'. */
const TAG_CHARS = ASTRING_CHARS.slice()
TAG_CHARS[PLUS] = 0
/** list-char: ATOM-CHAR / list-wildcards / resp-specials. */
const LIST_CHARS = ASTRING_CHARS.slice()
LIST_CHARS[STAR] = 1
LIST_CHARS[PERCENT] = 1

/** True when s is a non-empty atom (1*ATOM-CHAR). */
export function isAtom(s: string): boolean {
  return s.length > 0 && allIn(s, ATOM_CHARS)
}

/** True when s can be sent as an astring without quoting (1*ASTRING-CHAR). */
export function isAstringAtom(s: string): boolean {
  return s.length > 0 && allIn(s, ASTRING_CHARS)
}

function allIn(s: string, table: Uint8Array): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 0xff || table[c] !== 1) return false
  }
  return true
}

const SYSTEM_FLAGS = new Map(
  ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'].map((f) => [f.toLowerCase(), f]),
)

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28
  return [4, 6, 9, 11].includes(month) ? 30 : 31
}

/** Control characters (C0, DEL, C1) are never part of a mailbox name. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true
  }
  return false
}

function decodeName(bytes: Buffer, utf8Accept: boolean): string {
  let name: string
  if (utf8Accept) {
    if (!isUtf8(bytes)) throw new ImapSyntaxError('Mailbox name is not valid UTF-8')
    name = bytes.toString('utf8')
    if (hasControl(name)) throw new ImapSyntaxError('Mailbox name contains control characters')
    return name
  }
  for (const b of bytes) {
    if (b >= 0x80) throw new ImapSyntaxError('Mailbox name has 8-bit characters; use modified UTF-7')
  }
  const wire = bytes.toString('latin1')
  if (hasControl(wire)) throw new ImapSyntaxError('Mailbox name contains control characters')
  try {
    name = decodeMailboxName(wire)
  } catch (err) {
    throw new ImapSyntaxError((err as Error).message)
  }
  if (hasControl(name)) throw new ImapSyntaxError('Mailbox name contains control characters')
  return name
}

export class ArgReader {
  private readonly raw: Buffer
  private at: number

  constructor(raw: Buffer, start = 0) {
    this.raw = raw
    this.at = start
  }

  /** Offset of the next unread byte. */
  get pos(): number {
    return this.at
  }

  atEnd(): boolean {
    return this.at >= this.raw.length
  }

  /** The next byte, or undefined at the end. */
  peek(): number | undefined {
    return this.raw[this.at]
  }

  /** Everything not read yet; the cursor moves to the end. */
  rest(): Buffer {
    const b = this.raw.subarray(this.at)
    this.at = this.raw.length
    return b
  }

  /** Exactly one SP. `after` names what came before, for the message ("Expected SP after tag"). */
  space(after?: string): void {
    if (this.raw[this.at] === SP) {
      this.at++
      return
    }
    if (after) throw new ImapSyntaxError(`Expected SP after ${after}`)
    throw new ImapSyntaxError(this.atEnd() ? 'Missing argument' : 'Expected SP')
  }

  trySpace(): boolean {
    return this.tryByte(SP)
  }

  end(): void {
    if (!this.atEnd()) throw new ImapSyntaxError('Unexpected characters at end of command')
  }

  tryByte(ch: number): boolean {
    if (this.raw[this.at] !== ch) return false
    this.at++
    return true
  }

  openList(): void {
    if (!this.tryByte(LPAREN)) throw new ImapSyntaxError("Expected '('")
  }

  closeList(): void {
    if (!this.tryByte(RPAREN)) throw new ImapSyntaxError(this.atEnd() ? "Missing ')'" : "Expected ')'")
  }

  /**
   * Between list items: SP (true: another item follows) or ')' (false: the list is closed).
   * `what` names the list in the error message.
   */
  nextInList(what = 'list'): boolean {
    if (this.tryByte(SP)) return true
    if (this.tryByte(RPAREN)) return false
    throw new ImapSyntaxError(this.atEnd() ? `Missing ')' after ${what}` : `Expected SP or ')' in ${what}`)
  }

  private run(table: Uint8Array): string {
    const start = this.at
    let i = start
    while (i < this.raw.length && table[this.raw[i] as number] === 1) i++
    this.at = i
    return this.raw.toString('latin1', start, i)
  }

  private expected(what: string): ImapSyntaxError {
    return new ImapSyntaxError(
      this.atEnd() ? `Expected ${what}, found the end of the command` : `Expected ${what}`,
    )
  }

  /** tag: 1*<ASTRING-CHAR except '+'>. */
  tag(): string {
    const t = this.run(TAG_CHARS)
    if (!t) throw this.expected('a tag')
    return t
  }

  /** 1*ATOM-CHAR. */
  atom(): string {
    const a = this.run(ATOM_CHARS)
    if (!a) throw this.expected('an atom')
    return a
  }

  /** 1*ATOM-CHAR stopping also at any of `stop` (FETCH's `BODY[`, `BODY.PEEK[`, `<`). */
  atomExcept(stop: string): string {
    const table = ATOM_CHARS.slice()
    for (let i = 0; i < stop.length; i++) table[stop.charCodeAt(i)] = 0
    const a = this.run(table)
    if (!a) throw this.expected('an atom')
    return a
  }

  /** An atom, uppercased: command names, search keys, fetch items. */
  keyword(): string {
    return this.atom().toUpperCase()
  }

  /** Consumes `k` (case-insensitive) if it is the whole next atom: followed by SP, ')' or the end. */
  tryKeyword(k: string): boolean {
    const n = k.length
    if (n === 0 || this.at + n > this.raw.length) return false
    const upper = k.toUpperCase()
    for (let i = 0; i < n; i++) {
      let c = this.raw[this.at + i] as number
      if (c >= 0x61 && c <= 0x7a) c -= 0x20
      if (c !== upper.charCodeAt(i)) return false
    }
    const next = this.raw[this.at + n]
    if (next !== undefined && next !== SP && next !== RPAREN) return false
    this.at += n
    return true
  }

  private digits(max: number, nonZero: boolean): number {
    const start = this.at
    let i = start
    let v = 0
    while (i < this.raw.length) {
      const c = this.raw[i] as number
      if (c < DIGIT_0 || c > DIGIT_9) break
      if (i - start >= 20) throw new ImapSyntaxError('Number out of range')
      v = v * 10 + (c - DIGIT_0)
      i++
    }
    if (i === start) throw this.expected('a number')
    if (v > max) throw new ImapSyntaxError('Number out of range')
    if (nonZero && this.raw[start] === DIGIT_0) {
      throw new ImapSyntaxError(
        v === 0 ? 'Expected a non-zero number' : 'A non-zero number has no leading zeros',
      )
    }
    this.at = i
    return v
  }

  /** number: 1*DIGIT, 0..4294967295. */
  number(): number {
    return this.digits(MAX_NUMBER, false)
  }

  /** nz-number: digit-nz *DIGIT, 1..4294967295. */
  nzNumber(): number {
    return this.digits(MAX_NUMBER, true)
  }

  /** number64, limited to 2^53-1 (what a JS number holds exactly). */
  number64(): number {
    return this.digits(MAX_NUMBER64, false)
  }

  /** nz-number64, limited to 2^53-1. */
  nzNumber64(): number {
    return this.digits(MAX_NUMBER64, true)
  }

  /** A literal or literal8 at the cursor; the cursor moves only on success. */
  private literal(allowBinary: boolean): { bytes: Buffer; binary: boolean } {
    const raw = this.raw
    let i = this.at
    const binary = raw[i] === TILDE
    if (binary) {
      if (!allowBinary) throw new ImapSyntaxError('A literal8 (~{n}) is not allowed here')
      i++
    }
    if (raw[i] !== LBRACE) throw this.expected('a literal')
    i++
    const start = i
    let size = 0
    while (i < raw.length && (raw[i] as number) >= DIGIT_0 && (raw[i] as number) <= DIGIT_9) {
      if (i - start >= 16) throw new ImapSyntaxError('Literal size out of range')
      size = size * 10 + ((raw[i] as number) - DIGIT_0)
      i++
    }
    if (i === start) throw new ImapSyntaxError('Expected a literal size')
    if (raw[i] === PLUS) i++
    if (raw[i] !== RBRACE) throw new ImapSyntaxError("Expected '}' after the literal size")
    i++
    if (raw[i] !== CR || raw[i + 1] !== LF)
      throw new ImapSyntaxError('Expected CRLF after a literal announcement')
    i += 2
    if (size > raw.length - i) throw new ImapSyntaxError('Literal is shorter than its announced size')
    const bytes = raw.subarray(i, i + size)
    if (!binary && bytes.indexOf(NUL) >= 0) throw new ImapSyntaxError('NUL is not allowed in a literal')
    this.at = i + size
    return { bytes, binary }
  }

  /** A quoted string at the cursor (DQUOTE already checked); the cursor moves only on success. */
  private quoted(): Buffer {
    const raw = this.raw
    const start = this.at + 1
    let i = start
    let escaped = false
    for (;;) {
      const c = raw[i]
      if (c === undefined) throw new ImapSyntaxError('Unterminated quoted string')
      if (c === DQUOTE) break
      if (c === BACKSLASH) {
        const n = raw[i + 1]
        if (n !== DQUOTE && n !== BACKSLASH) {
          throw new ImapSyntaxError('Only \\\\ and \\" may be escaped in a quoted string')
        }
        escaped = true
        i += 2
        continue
      }
      if (c === CR || c === LF || c === NUL) {
        throw new ImapSyntaxError('CR, LF and NUL are not allowed in a quoted string; use a literal')
      }
      i++
    }
    const body = raw.subarray(start, i)
    if (!isUtf8(body)) throw new ImapSyntaxError('Quoted string is not valid UTF-8')
    this.at = i + 1
    if (!escaped) return body
    const out = Buffer.allocUnsafe(body.length)
    let k = 0
    for (let j = 0; j < body.length; j++) {
      let c = body[j] as number
      if (c === BACKSLASH) c = body[++j] as number
      out[k++] = c
    }
    return out.subarray(0, k)
  }

  /** At `{` or `~{` (a `~` alone is an ATOM-CHAR: `~peter` is an atom). */
  private atLiteral(): boolean {
    const c = this.raw[this.at]
    return c === LBRACE || (c === TILDE && this.raw[this.at + 1] === LBRACE)
  }

  /** string (quoted / literal) as bytes. */
  stringBytes(): Buffer {
    const c = this.raw[this.at]
    if (c === DQUOTE) return this.quoted()
    if (this.atLiteral()) return this.literal(false).bytes
    throw this.expected('a string')
  }

  /** string / literal8 as bytes: APPEND's message under BINARY (RFC 3516); NUL is allowed in literal8. */
  stringBytes8(): Buffer {
    const c = this.raw[this.at]
    if (c === DQUOTE) return this.quoted()
    if (this.atLiteral()) return this.literal(true).bytes
    throw this.expected('a string')
  }

  /** string, decoded as UTF-8. */
  string(): string {
    return this.stringBytes().toString('utf8')
  }

  /** nstring: string / NIL. */
  nstring(): string | null {
    if (this.tryKeyword('NIL')) return null
    return this.string()
  }

  /** astring as bytes: 1*ASTRING-CHAR / string. */
  astringBytes(): Buffer {
    if (this.raw[this.at] === DQUOTE || this.atLiteral()) return this.stringBytes()
    const start = this.at
    this.run(ASTRING_CHARS)
    if (this.at === start) throw this.expected('a string or atom')
    return this.raw.subarray(start, this.at)
  }

  /** astring, decoded as UTF-8. */
  astring(): string {
    return this.astringBytes().toString('utf8')
  }

  /** mailbox: an astring, decoded (modified UTF-7, or UTF-8 when utf8Accept); INBOX in any case is 'INBOX'. */
  mailbox(utf8Accept = false): string {
    const start = this.at
    const bytes = this.astringBytes()
    let name: string
    try {
      name = decodeName(bytes, utf8Accept)
    } catch (err) {
      this.at = start
      throw err
    }
    return /^[Ii][Nn][Bb][Oo][Xx]$/.test(name) ? 'INBOX' : name
  }

  /** list-mailbox: 1*list-char / string, decoded like mailbox(); `%` and `*` are kept. */
  listMailbox(utf8Accept = false): string {
    const start = this.at
    let bytes: Buffer
    if (this.raw[start] === DQUOTE || this.atLiteral()) bytes = this.stringBytes()
    else {
      this.run(LIST_CHARS)
      if (this.at === start) throw this.expected('a mailbox pattern')
      bytes = this.raw.subarray(start, this.at)
    }
    try {
      return decodeName(bytes, utf8Accept)
    } catch (err) {
      this.at = start
      throw err
    }
  }

  private seqNumber(): SeqNumber {
    if (this.tryByte(STAR)) return '*'
    const c = this.raw[this.at]
    if (c === undefined || c < DIGIT_0 || c > DIGIT_9) throw this.expected('a sequence set')
    if (c === DIGIT_0) {
      const v = this.digits(MAX_NUMBER64, false)
      throw new ImapSyntaxError(
        v === 0 ? 'Invalid sequence number 0' : 'Sequence numbers have no leading zeros',
      )
    }
    return this.digits(MAX_NUMBER, true)
  }

  /** sequence-set: (seq-number / seq-range) *("," ...), ranges kept as written. */
  sequenceSet(maxRanges = 10000): SequenceSet {
    const start = this.at
    const ranges: SequenceSet['ranges'] = []
    try {
      for (;;) {
        const from = this.seqNumber()
        const to = this.tryByte(COLON) ? this.seqNumber() : from
        ranges.push({ from, to })
        if (ranges.length > maxRanges) {
          throw new ImapSyntaxError(`Sequence set has more than ${maxRanges} ranges`)
        }
        if (!this.tryByte(COMMA)) break
      }
    } catch (err) {
      this.at = start
      throw err
    }
    return { ranges }
  }

  /** flag: a system flag (canonical case), `\` atom (as sent), or a keyword atom (as sent). */
  flag(): string {
    const start = this.at
    if (this.tryByte(BACKSLASH)) {
      const a = this.run(ATOM_CHARS)
      if (!a) {
        this.at = start
        throw new ImapSyntaxError('Expected a flag name after \\')
      }
      const f = `\\${a}`
      return SYSTEM_FLAGS.get(f.toLowerCase()) ?? f
    }
    const a = this.run(ATOM_CHARS)
    if (!a) throw this.expected('a flag')
    return a
  }

  /** flag-list: "(" [flag *(SP flag)] ")". */
  flagList(): string[] {
    this.openList()
    const flags: string[] = []
    if (this.tryByte(RPAREN)) return flags
    do {
      flags.push(this.flag())
    } while (this.nextInList('flag list'))
    return flags
  }

  /** STORE's flags: flag-list / (flag *(SP flag)). */
  flagListOrSingle(): string[] {
    if (this.raw[this.at] === LPAREN) return this.flagList()
    const flags = [this.flag()]
    while (this.trySpace()) flags.push(this.flag())
    return flags
  }

  private quotedText(what: string): string {
    if (this.raw[this.at] !== DQUOTE) throw this.expected(what)
    const close = this.raw.indexOf(DQUOTE, this.at + 1)
    if (close < 0 || close - this.at > 64) throw new ImapSyntaxError(`Invalid ${what}`)
    const text = this.raw.toString('latin1', this.at + 1, close)
    this.at = close + 1
    return text
  }

  /** date-time: DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE. */
  dateTime(): Date {
    const start = this.at
    const text = this.quotedText('date-time')
    const m = /^( \d|\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text)
    const fail = (why: string): never => {
      this.at = start
      throw new ImapSyntaxError(`Invalid date-time: ${why}`)
    }
    if (!m) return fail('expected "dd-Mon-yyyy hh:mm:ss +zzzz"')
    const [, d, mon, y, hh, mm, ss, sign, zh, zm] = m as unknown as string[]
    const day = Number(d)
    const month = MONTHS.indexOf((mon as string).toLowerCase()) + 1
    const year = Number(y)
    if (month === 0) return fail(`unknown month ${mon}`)
    if (year < 1) return fail('year out of range')
    if (day < 1 || day > daysInMonth(year, month)) return fail('day out of range')
    const hour = Number(hh)
    const minute = Number(mm)
    const second = Number(ss)
    if (hour > 23 || minute > 59 || second > 60) return fail('time out of range')
    const zoneH = Number(zh)
    const zoneM = Number(zm)
    if (zoneH > 23 || zoneM > 59) return fail('zone out of range')
    const t = new Date(0)
    t.setUTCFullYear(year, month - 1, day)
    t.setUTCHours(hour, minute, second, 0)
    const offset = (zoneH * 60 + zoneM) * 60_000
    return new Date(t.getTime() - (sign === '-' ? -offset : offset))
  }

  /** date: date-text / DQUOTE date-text DQUOTE; date-text = date-day "-" date-month "-" date-year. */
  date(): DayDate {
    const start = this.at
    const text = this.raw[this.at] === DQUOTE ? this.quotedText('date') : this.run(ATOM_CHARS)
    const fail = (why: string): never => {
      this.at = start
      throw new ImapSyntaxError(`Invalid date: ${why}`)
    }
    if (!text) return fail('expected d-Mon-yyyy')
    const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(text)
    if (!m) return fail('expected d-Mon-yyyy')
    const day = Number(m[1])
    const month = MONTHS.indexOf((m[2] as string).toLowerCase()) + 1
    const year = Number(m[3])
    if (month === 0) return fail(`unknown month ${m[2]}`)
    if (year < 1) return fail('year out of range')
    if (day < 1 || day > daysInMonth(year, month)) return fail('day out of range')
    return { year, month, day }
  }
}

/**
 * The set as sorted, merged, inclusive [low, high] ranges, with `*` as `largest`. When largest
 * is 0 (nothing there), a range that involves `*` names nothing and is dropped.
 */
export function sequenceRanges(set: SequenceSet, largest: number): Array<[number, number]> {
  const spans: Array<[number, number]> = []
  for (const { from, to } of set.ranges) {
    if (largest === 0 && (from === '*' || to === '*')) continue
    const a = from === '*' ? largest : from
    const b = to === '*' ? largest : to
    spans.push(a <= b ? [a, b] : [b, a])
  }
  spans.sort((x, y) => x[0] - y[0] || x[1] - y[1])
  const out: Array<[number, number]> = []
  for (const s of spans) {
    const last = out[out.length - 1]
    if (last && s[0] <= last[1] + 1) {
      if (s[1] > last[1]) last[1] = s[1]
    } else out.push([s[0], s[1]])
  }
  return out
}

/** Whether n is in ranges (sorted, disjoint, as sequenceRanges returns them). */
export function inRanges(ranges: Array<[number, number]>, n: number): boolean {
  let lo = 0
  let hi = ranges.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const r = ranges[mid] as [number, number]
    if (n < r[0]) hi = mid - 1
    else if (n > r[1]) lo = mid + 1
    else return true
  }
  return false
}
