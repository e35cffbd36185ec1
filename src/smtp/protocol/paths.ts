// The grammar inside MAIL and RCPT: paths (RFC 5321 4.1.2, RFC 6531 3.3), ESMTP parameters
// (RFC 5321 4.1.2) and xtext (RFC 3461 4). Pure; commands.ts builds the commands from these.
// Invariants:
// - A path is accepted only as RFC 5321 writes it: `<` [source route `:`] mailbox `>`, no
//   comments, no white space inside; the source route is checked and dropped (4.1.1.3 / C).
// - Non-ASCII is reported (nonAscii), never silently allowed: the caller decides whether the
//   transaction has SMTPUTF8. Control characters never get through (the line was checked).
// - Length limits are octets of UTF-8 (4.5.3.1): local part 64, domain 255, address 254.

import { isIPv4, isIPv6 } from 'node:net'

export interface ParsedPath {
  /** `local@domain` with the local part as written (quotes kept); '' for <>; 'postmaster' for <Postmaster>. */
  address: string
  /** Index just after the closing '>'. */
  end: number
  nonAscii: boolean
}

export interface PathError {
  error: string
}

export interface PathOptions {
  /** MAIL: the null reverse-path <> is allowed. */
  allowNull: boolean
  /** RCPT: <Postmaster> without a domain is allowed (RFC 5321 4.1.1.3). */
  allowPostmaster: boolean
}

const MAX_LOCAL = 64 // RFC 5321 4.5.3.1.1
const MAX_DOMAIN = 255 // RFC 5321 4.5.3.1.2
const MAX_ADDRESS = 254 // RFC 5321 4.5.3.1.3: a 256-octet path less '<' and '>'

// RFC 5322 3.2.3 atext, ASCII part; RFC 6531 3.3 adds UTF8-non-ascii.
const ATEXT = new Uint8Array(128)
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~") {
  ATEXT[ch.charCodeAt(0)] = 1
}
const isAtext = (c: number) => (c < 128 ? ATEXT[c] === 1 : true)
const isLetDig = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
const octets = (s: string) => Buffer.byteLength(s, 'utf8')

/** Parses a path starting at `s[start]` (which must be '<'). */
export function parsePath(s: string, start: number, opts: PathOptions): ParsedPath | PathError {
  let i = start
  if (s[i] !== '<') return { error: 'the address must be written in angle brackets' }
  i++
  if (s[i] === '>') {
    if (!opts.allowNull) return { error: 'the null path <> is not a recipient' }
    return { address: '', end: i + 1, nonAscii: false }
  }
  if (s[i] === '@') {
    // A-d-l ":" (RFC 5321 4.1.2): a source route, which must be accepted and ignored (C.).
    for (;;) {
      if (s[i] !== '@') return { error: 'bad source route' }
      const d = parseDomain(s, i + 1)
      if ('error' in d) return { error: `bad source route: ${d.error}` }
      i = d.end
      if (s[i] === ',') i++
      else if (s[i] === ':') {
        i++
        break
      } else return { error: 'bad source route' }
    }
  }
  const local = parseLocal(s, i)
  if ('error' in local) return local
  i = local.end
  const localText = s.slice(local.start, local.end)
  if (s[i] === '>' && opts.allowPostmaster && localText.toLowerCase() === 'postmaster') {
    return { address: 'postmaster', end: i + 1, nonAscii: false } // RFC 5321 4.1.1.3
  }
  if (s[i] !== '@')
    return { error: s[i] === '>' || i >= s.length ? 'the address has no @' : 'bad local part' }
  if (octets(localText) > MAX_LOCAL) return { error: `the local part is longer than ${MAX_LOCAL} octets` }
  const domainStart = i + 1
  const domain = s[domainStart] === '[' ? parseAddressLiteral(s, domainStart) : parseDomain(s, domainStart)
  if ('error' in domain) return domain
  i = domain.end
  if (s[i] !== '>') return { error: 'bad domain' }
  const address = s.slice(local.start, i)
  if (octets(address) > MAX_ADDRESS) return { error: `the address is longer than ${MAX_ADDRESS} octets` }
  return { address, end: i + 1, nonAscii: local.nonAscii || domain.nonAscii }
}

interface Span {
  start: number
  end: number
  nonAscii: boolean
}

/** Local-part = Dot-string / Quoted-string (RFC 5321 4.1.2, RFC 6531 3.3). */
function parseLocal(s: string, start: number): Span | PathError {
  let i = start
  let nonAscii = false
  if (s[i] === '"') {
    i++
    for (;;) {
      if (i >= s.length) return { error: 'unterminated quoted local part' }
      const c = s.charCodeAt(i)
      if (c === 34) break // closing DQUOTE
      if (c === 92) {
        // quoted-pairSMTP = %d92 %d32-126
        const n = s.charCodeAt(i + 1)
        if (!(n >= 32 && n <= 126)) return { error: 'bad escape in quoted local part' }
        i += 2
        continue
      }
      // qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF8-non-ascii
      if (c >= 128) nonAscii = true
      else if (c < 32 || c === 127) return { error: 'bad character in quoted local part' }
      i++
    }
    i++
    if (i - start === 2) return { error: 'empty local part' }
    return { start, end: i, nonAscii }
  }
  let atomStart = i
  for (;;) {
    const c = s.charCodeAt(i)
    if (i < s.length && isAtext(c)) {
      if (c >= 128) nonAscii = true
      i++
      continue
    }
    if (i === atomStart) return { error: i === start ? 'empty local part' : 'bad dots in local part' }
    if (s[i] !== '.') break
    i++
    atomStart = i
  }
  return { start, end: i, nonAscii }
}

/** Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str] or a U-label (RFC 6531 3.3). */
function parseDomain(s: string, start: number): Span | PathError {
  let i = start
  let nonAscii = false
  for (;;) {
    const labelStart = i
    let labelNonAscii = false
    for (;;) {
      const c = s.charCodeAt(i)
      if (i >= s.length) break
      if (c >= 128) labelNonAscii = true
      else if (!(isLetDig(c) || c === 45)) break
      i++
    }
    if (i === labelStart) return { error: 'bad domain' }
    if (!labelNonAscii) {
      if (s[labelStart] === '-' || s[i - 1] === '-') return { error: 'a domain label starts or ends with -' }
      if (i - labelStart > 63) return { error: 'a domain label is longer than 63 characters' }
    }
    nonAscii ||= labelNonAscii
    if (s[i] !== '.') break
    i++
  }
  if (octets(s.slice(start, i)) > MAX_DOMAIN)
    return { error: `the domain is longer than ${MAX_DOMAIN} octets` }
  return { start, end: i, nonAscii }
}

/** address-literal (RFC 5321 4.1.3): [IPv4], [IPv6:...] or [tag:dcontent]. */
function parseAddressLiteral(s: string, start: number): Span | PathError {
  const close = s.indexOf(']', start)
  if (close < 0) return { error: 'unterminated address literal' }
  const inner = s.slice(start + 1, close)
  const colon = inner.indexOf(':')
  let ok: boolean
  if (colon < 0) ok = isIPv4(inner)
  else if (inner.slice(0, colon).toLowerCase() === 'ipv6') ok = isIPv6(inner.slice(colon + 1))
  else ok = /^[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+$/.test(inner) // General-address-literal
  if (!ok) return { error: 'bad address literal' }
  return { start, end: close + 1, nonAscii: false }
}

export interface EsmtpParam {
  /** Upper-cased keyword. */
  keyword: string
  value: string | null
}

/**
 * Mail-parameters / Rcpt-parameters after the path: `esmtp-keyword ["=" esmtp-value]` separated
 * by spaces (RFC 5321 4.1.2; RFC 6531 3.3 allows UTF-8 values). Duplicates are refused.
 */
export function parseParams(rest: string): EsmtpParam[] | PathError {
  const out: EsmtpParam[] = []
  for (const item of rest.split(' ')) {
    if (item === '') continue
    const eq = item.indexOf('=')
    const keyword = (eq < 0 ? item : item.slice(0, eq)).toUpperCase()
    const value = eq < 0 ? null : item.slice(eq + 1)
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(keyword)) return { error: `bad parameter ${JSON.stringify(item)}` }
    // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF8-non-ascii
    if (value !== null && (value === '' || value.includes('='))) return { error: `bad value of ${keyword}` }
    if (out.some((p) => p.keyword === keyword)) return { error: `${keyword} given twice` }
    out.push({ keyword, value })
  }
  return out
}

/**
 * Decodes xtext (RFC 3461 4): printable ASCII except '+' and '=', with '+HH' (upper-case hex)
 * for any octet. Octets above 127 must form UTF-8. null when malformed.
 */
export function decodeXtext(value: string): string | null {
  if (!value.includes('+'))
    return /^[\x21-\x2a\x2c-\x3c\x3e-\x7e\u0080-\u{10ffff}]*$/u.test(value) ? value : null
  const bytes: number[] = []
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c === 43) {
      const hex = value.slice(i + 1, i + 3)
      if (!/^[0-9A-F]{2}$/.test(hex)) return null
      bytes.push(Number.parseInt(hex, 16))
      i += 2
    } else if (c >= 33 && c <= 126 && c !== 61) bytes.push(c)
    else if (c >= 128) bytes.push(...Buffer.from(String.fromCodePoint(value.codePointAt(i)!)))
    else return null
    if (c >= 0xd800 && c <= 0xdbff) i++ // the low surrogate was taken with codePointAt
  }
  const buf = Buffer.from(bytes)
  const text = buf.toString('utf8')
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a decoded value must not carry controls into DSNs
  if (!Buffer.from(text).equals(buf) || /[\x00-\x1f\x7f]/.test(text)) return null
  return text
}
