// Email addresses and domain names: the one place Postern parses, validates and normalises them.
// Every address that reaches the store, the queue or a protocol reply goes through parseAddress,
// and every domain (hosted or remote) through normaliseDomain. Pure: node built-ins only.
//
// Invariants:
// - A normalised domain is ASCII only: lower-case LDH labels (RFC 1035 2.3.1, RFC 1123 2.1) with
//   IDNs as A-labels (RFC 5890 2.3.2.1), 1..63 octets a label, <= 253 octets in all, no trailing
//   dot, at least two labels, a TLD that is not a number, never an IP address or address literal.
// - `canonical` is the stored form (DESIGN.md "Addresses"): NFC, lower-cased local part, quoted
//   only when it is not a dot-atom, '@', normalised domain. Two addresses that Postern delivers to
//   the same mailbox have the same canonical form.
// - The SMTP grammar (RFC 5321 4.1.2) is the one enforced, as it is the stricter one and the one
//   Postern must write back: no comments, no folding white space, no obsolete local parts.
// - Anything accepted is free of control characters, CR and LF (even at the ends), lone
//   surrogates and bidi overrides, so a parsed address can never inject into SMTP or a header.
// - Lengths are UTF-8 octets of the canonical form (what Postern sends): local part <= 64
//   (RFC 5321 4.5.3.1.1), address <= 254 (the 256-octet path of 4.5.3.1.3 less '<' and '>').
//
// Decisions:
// - Address literals (`user@[192.0.2.1]`) and bare IPs are refused: Postern hosts and sends to
//   domain names only.
// - Underscores are refused in domains, hosted or remote: mail domains are host names (LDH); `_`
//   only appears in DNS-only names such as `_dmarc`.
// - A TLD that the WHATWG URL parser would read as a number (`123`, `0x7f`) is refused, so every
//   domain accepted here also works in a URL (MTA-STS, links).
// - `"abc"@x` is the same address as `abc@x`: quoting is recorded by whether it is needed.
// - Local parts keep their case in `local` (as written) and lose it in `canonical`.
// - Leading and trailing spaces and tabs are trimmed (form input); nothing else is.
// - IDNA is UTS 46 as Node's WHATWG URL applies it (what browsers accept, emoji included), run one
//   label at a time; A-labels written by the caller must round-trip, since Node does not check them.
// - Subaddressing splits at the first separator, and only when the base is a non-empty dot-atom.

import { isIP } from 'node:net'
import { domainToASCII, domainToUnicode } from 'node:url'

/** Stable codes for what is wrong with an address or domain. */
export type AddressErrorReason =
  | 'EMPTY'
  | 'TOO_LONG'
  | 'MISSING_AT'
  | 'EXTRA_AT'
  | 'EMPTY_LOCAL'
  | 'LOCAL_TOO_LONG'
  | 'FORBIDDEN_CHARACTER'
  | 'LEADING_DOT'
  | 'TRAILING_DOT'
  | 'DOUBLE_DOT'
  | 'UNTERMINATED_QUOTE'
  | 'TEXT_AFTER_QUOTE'
  | 'EMPTY_DOMAIN'
  | 'ADDRESS_LITERAL'
  | 'IP_ADDRESS'
  | 'DOMAIN_CHARACTER'
  | 'EMPTY_LABEL'
  | 'LABEL_TOO_LONG'
  | 'LABEL_HYPHEN'
  | 'BAD_IDN'
  | 'SINGLE_LABEL'
  | 'NUMERIC_TLD'
  | 'DOMAIN_TOO_LONG'

/** An address or domain that cannot be used. `message` is safe to show the caller (a 422 detail). */
export class AddressError extends Error {
  override name = 'AddressError'
  readonly reason: AddressErrorReason
  constructor(reason: AddressErrorReason, message: string) {
    super(message)
    this.reason = reason
  }
}

export interface ParsedAddress {
  /** Local part as written, without surrounding quotes (quoted-string unescaped). */
  local: string
  /** Whether the local part needs quoting to be written back (it has characters outside dot-atom). */
  quoted: boolean
  /** Normalised domain (A-labels). */
  domain: string
  /** Canonical stored form: NFC, lower-cased local part (re-quoted when `quoted`) + '@' + domain. */
  canonical: string
  /** True when the local part has non-ASCII characters (needs SMTPUTF8 to deliver). */
  utf8: boolean
}

const MAX_LOCAL_OCTETS = 64 // RFC 5321 4.5.3.1.1
const MAX_ADDRESS_OCTETS = 254 // RFC 5321 4.5.3.1.3 path of 256 less the angle brackets
const MAX_DOMAIN_OCTETS = 253 // RFC 1035 2.3.4 (255 on the wire, less length octets)
const MAX_LABEL_OCTETS = 63 // RFC 1035 2.3.4
/** No valid address or domain is written in more UTF-16 units than this; refuse early above it. */
const MAX_INPUT_UNITS = 1024

// atext (RFC 5322 3.2.3) plus UTF8-non-ascii (RFC 6531 3.3); non-ASCII is screened by FORBIDDEN.
const ATEXT = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~\\u{80}-\\u{10FFFF}"
const DOT_ATOM = new RegExp(`^[${ATEXT}]+(?:\\.[${ATEXT}]+)*$`, 'u') // RFC 5322 3.2.3 dot-atom-text
const ATEXT_CHAR = new RegExp(`^[${ATEXT}]$`, 'u')
// Never accepted anywhere: controls (C0, DEL, C1), separators (incl. NBSP, U+2028), bidi
// formatting and marks (spoofing, RFC 6530 10.1), BOM and noncharacters.
const FORBIDDEN = /[\p{Cc}\p{Z}\u200E\u200F\u202A-\u202E\u2066-\u2069\uFEFF\p{Noncharacter_Code_Point}]/u
// RFC 3490 3.1 (kept by UTS 46): these full stops separate labels like '.'.
const IDEOGRAPHIC_DOTS = /[\u3002\uFF0E\uFF61]/g
const LDH_LABEL = /^[a-z0-9-]+$/
const NUMERIC_TLD = /^(?:[0-9]+|0x[0-9a-f]*)$/ // WHATWG URL "ends in a number" (and RFC 3696 2)

/**
 * A hosted or remote domain name: trims, strips one trailing dot, lower-cases, converts IDN
 * (U-labels) to punycode A-labels, and validates: total <= 253 octets, each label 1..63 of
 * [a-z0-9-] not starting/ending with '-', at least two labels, TLD not all-numeric, not an IP
 * literal, no underscore. Throws AddressError.
 */
export function normaliseDomain(input: string): string {
  return checkDomain(trimBlanks(input))
}

/** The Unicode form of a normalised domain, for display. A label that does not decode stays as is. */
export function domainForDisplay(ascii: string): string {
  return ascii
    .split('.')
    .map((label) => (label.startsWith('xn--') ? domainToUnicode(label) || label : label))
    .join('.')
}

/**
 * Parses one addr-spec (no display name, no angle brackets, no comments): dot-atom or
 * quoted-string local part, '@', domain name. Accepts UTF-8 local parts (RFC 6531) and IDN
 * domains. Throws AddressError with a specific reason.
 */
export function parseAddress(input: string): ParsedAddress {
  const text = trimBlanks(input)
  if (text === '') fail('EMPTY', 'The address is empty.')
  if (text.length > MAX_INPUT_UNITS) {
    fail('TOO_LONG', `The address is longer than ${MAX_ADDRESS_OCTETS} octets.`)
  }
  if (!text.isWellFormed()) fail('FORBIDDEN_CHARACTER', 'The address is not valid Unicode.')

  const { local, rawDomain } = text.startsWith('"') ? readQuotedLocal(text) : readDotAtomLocal(text)
  if (local === '') fail('EMPTY_LOCAL', 'The address has nothing before the @.')
  if (rawDomain === '') fail('EMPTY_DOMAIN', 'The address has nothing after the @.')
  const domain = checkDomain(rawDomain)

  const quoted = !DOT_ATOM.test(local)
  const lowered = local.normalize('NFC').toLowerCase() // DESIGN.md: local parts match case-insensitively
  const canonicalLocal = quoted ? quoteLocal(lowered) : lowered
  if (octets(canonicalLocal) > MAX_LOCAL_OCTETS) {
    fail('LOCAL_TOO_LONG', `The part before the @ is longer than ${MAX_LOCAL_OCTETS} octets.`) // RFC 5321 4.5.3.1.1
  }
  const canonical = `${canonicalLocal}@${domain}`
  if (octets(canonical) > MAX_ADDRESS_OCTETS) {
    fail('TOO_LONG', `The address is longer than ${MAX_ADDRESS_OCTETS} octets.`) // RFC 5321 4.5.3.1.3
  }
  return { local, quoted, domain, canonical, utf8: /[^\0-\x7F]/.test(local) }
}

/** True when parseAddress would succeed. */
export function isValidAddress(input: string): boolean {
  try {
    parseAddress(input)
    return true
  } catch (err) {
    if (err instanceof AddressError) return false
    throw err
  }
}

/**
 * Splits plus-addressing (RFC 5233 "detail") at the first separator: 'user+tag' -> { base: 'user',
 * tag: 'tag' }, 'a+b+c' -> { base: 'a', tag: 'b+c' }, 'user+' -> { base: 'user', tag: '' }.
 * No subaddress (tag null, base the whole local part) when there is no separator, when the base
 * would be empty ('+only' is a mailbox named '+only') or not a dot-atom ('a.+x'), and when the
 * local part is not a dot-atom (needs quoting, or is written with its quotes).
 */
export function splitSubaddress(local: string, separator = '+'): { base: string; tag: string | null } {
  if (separator === '') throw new RangeError('splitSubaddress: the separator must not be empty')
  const at = local.indexOf(separator)
  if (at <= 0 || !DOT_ATOM.test(local)) return { base: local, tag: null }
  const base = local.slice(0, at)
  if (!DOT_ATOM.test(base)) return { base: local, tag: null }
  return { base, tag: local.slice(at + separator.length) }
}

// ---- local part -------------------------------------------------------------------------------

interface LocalAndDomain {
  /** The local part, unquoted and unescaped. */
  local: string
  /** Everything after the '@' that ends the local part. */
  rawDomain: string
}

/** RFC 5321 4.1.2 Dot-string (= RFC 5322 3.2.3 dot-atom-text), up to the first '@'. */
function readDotAtomLocal(text: string): LocalAndDomain {
  const at = text.indexOf('@')
  if (at < 0) fail('MISSING_AT', 'The address has no @.')
  const local = text.slice(0, at)
  const rawDomain = text.slice(at + 1)
  for (const ch of local) {
    if (ch !== '.' && (!ATEXT_CHAR.test(ch) || FORBIDDEN.test(ch))) {
      fail(
        'FORBIDDEN_CHARACTER',
        `The part before the @ contains ${describe(ch)}, which is only allowed inside double quotes.`,
      )
    }
  }
  if (local.startsWith('.')) fail('LEADING_DOT', 'The part before the @ starts with a dot.')
  if (local.endsWith('.')) fail('TRAILING_DOT', 'The part before the @ ends with a dot.')
  if (local.includes('..')) fail('DOUBLE_DOT', 'The part before the @ has two dots in a row.')
  if (rawDomain.includes('@')) {
    fail('EXTRA_AT', 'The address has more than one @ (an @ in the local part must be inside double quotes).')
  }
  return { local, rawDomain }
}

/** RFC 5321 4.1.2 Quoted-string (RFC 5322 3.2.4 without FWS), UTF-8 per RFC 6531 3.3. */
function readQuotedLocal(text: string): LocalAndDomain {
  let local = ''
  let escaped = false
  let end = -1
  for (let i = 1; i < text.length; ) {
    const ch = String.fromCodePoint(text.codePointAt(i)!)
    i += ch.length
    if (!escaped && ch === '"') {
      end = i
      break
    }
    if (!escaped && ch === '\\') {
      escaped = true // quoted-pairSMTP: backslash then one printable character
      continue
    }
    if (ch !== ' ' && FORBIDDEN.test(ch)) {
      fail('FORBIDDEN_CHARACTER', `The part before the @ contains ${describe(ch)}, which is never allowed.`)
    }
    escaped = false
    local += ch
  }
  if (end < 0) {
    fail('UNTERMINATED_QUOTE', 'The double quote that opens the part before the @ is never closed.')
  }
  if (end === text.length) fail('MISSING_AT', 'The address has no @.')
  if (text[end] !== '@') {
    fail('TEXT_AFTER_QUOTE', 'The closing double quote must be followed directly by @.')
  }
  const rawDomain = text.slice(end + 1)
  if (rawDomain.includes('@')) fail('EXTRA_AT', 'The address has more than one @ after the quoted part.')
  return { local, rawDomain }
}

/** Writes a local part that is not a dot-atom as a quoted-string, escaping only '"' and '\'. */
function quoteLocal(local: string): string {
  return `"${local.replace(/["\\]/g, '\\$&')}"` // RFC 5321 4.1.2 quoted-pairSMTP
}

// ---- domain -----------------------------------------------------------------------------------

/** normaliseDomain without the trimming: used for the domain of an address, where blanks are errors. */
function checkDomain(input: string): string {
  if (input === '') fail('EMPTY_DOMAIN', 'The domain is empty.')
  if (input.startsWith('[')) {
    // RFC 5321 4.1.3 address-literal: valid SMTP, but Postern only hosts and sends to names.
    fail('ADDRESS_LITERAL', 'Address literals such as [192.0.2.1] are not accepted; use a domain name.')
  }
  if (input.length > MAX_INPUT_UNITS) {
    fail('DOMAIN_TOO_LONG', `The domain is longer than ${MAX_DOMAIN_OCTETS} octets.`)
  }
  if (!input.isWellFormed()) fail('DOMAIN_CHARACTER', 'The domain is not valid Unicode.')
  let name = input.replace(IDEOGRAPHIC_DOTS, '.')
  if (name.endsWith('.')) name = name.slice(0, -1) // one root dot: 'example.com.' is 'example.com'
  if (isIP(name) !== 0) fail('IP_ADDRESS', 'An IP address is not a domain name.')
  for (const ch of name) {
    if (/^[A-Za-z0-9.-]$/.test(ch)) continue
    if (ch === '_') {
      fail(
        'DOMAIN_CHARACTER',
        'The domain contains an underscore; mail domains use letters, digits and hyphens.',
      )
    }
    if (ch < '\x80' || FORBIDDEN.test(ch)) fail('DOMAIN_CHARACTER', `The domain contains ${describe(ch)}.`)
  }
  const labels = name.split('.').map(toALabel)
  if (labels.length < 2) {
    fail(
      'SINGLE_LABEL',
      'The domain needs at least two labels, like example.com (not a bare name such as localhost).',
    )
  }
  if (NUMERIC_TLD.test(labels[labels.length - 1]!)) {
    fail('NUMERIC_TLD', 'The last label of the domain cannot be a number.') // RFC 3696 2
  }
  const ascii = labels.join('.')
  if (ascii.length > MAX_DOMAIN_OCTETS) {
    fail('DOMAIN_TOO_LONG', `The domain is longer than ${MAX_DOMAIN_OCTETS} octets.`)
  }
  return ascii
}

/** One label to its lower-case A-label form, validated as LDH (RFC 1123 2.1, RFC 5891 4). */
function toALabel(label: string): string {
  if (label === '') {
    fail('EMPTY_LABEL', 'The domain has an empty label (two dots in a row, or a leading dot).')
  }
  let ascii = label.toLowerCase()
  if (/[^\0-\x7F]/.test(label)) {
    // UTS 46 processing, one label at a time so that a label can never turn into an IPv4 address.
    ascii = domainToASCII(label)
    if (ascii === '' || ascii.includes('.')) {
      fail('BAD_IDN', `The domain label '${label}' is not a valid international name.`)
    }
  }
  if (ascii.length > MAX_LABEL_OCTETS) {
    fail('LABEL_TOO_LONG', `A domain label is longer than ${MAX_LABEL_OCTETS} characters.`)
  }
  if (!LDH_LABEL.test(ascii)) {
    fail(
      'DOMAIN_CHARACTER',
      `The domain label '${label}' has characters other than letters, digits and hyphens.`,
    )
  }
  if (ascii.startsWith('-') || ascii.endsWith('-')) {
    fail('LABEL_HYPHEN', `The domain label '${label}' starts or ends with a hyphen.`) // RFC 1123 2.1
  }
  if (ascii.startsWith('xn--')) {
    // An A-label must decode to a valid U-label that encodes back to itself (RFC 5891 5.4);
    // Node passes undecodable ones through, and returns them unchanged from domainToUnicode.
    const unicode = domainToUnicode(ascii)
    if (unicode === ascii || unicode === '' || domainToASCII(unicode) !== ascii) {
      fail('BAD_IDN', `The domain label '${label}' is not a valid punycode (xn--) label.`)
    }
  }
  return ascii
}

// ---- shared -----------------------------------------------------------------------------------

function fail(reason: AddressErrorReason, message: string): never {
  throw new AddressError(reason, message)
}

function trimBlanks(input: string): string {
  return input.replace(/^[ \t]+|[ \t]+$/g, '')
}

function octets(text: string): number {
  return Buffer.byteLength(text, 'utf8')
}

const CHARACTER_NAMES: Readonly<Record<string, string>> = {
  ' ': 'a space',
  ',': 'a comma',
  ';': 'a semicolon',
  ':': 'a colon',
  '"': 'a double quote',
  '\\': 'a backslash',
  '(': 'a parenthesis',
  ')': 'a parenthesis',
  '<': 'an angle bracket',
  '>': 'an angle bracket',
  '[': 'a square bracket',
  ']': 'a square bracket',
  '@': 'an @',
}

/** Names a character for an error message without echoing anything unprintable. */
function describe(ch: string): string {
  const name = CHARACTER_NAMES[ch]
  if (name !== undefined) return name
  const code = `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`
  if (FORBIDDEN.test(ch)) return `the invisible or control character ${code}`
  return `'${ch}' (${code})`
}
