// Second-factor primitives for accounts: TOTP (RFC 6238) over HOTP (RFC 4226) in the one form
// every authenticator app supports (HMAC-SHA-1, 6 digits, 30 s steps, T0 = 0), RFC 4648 base32
// for showing secrets, the otpauth:// Key Uri that QR codes carry, and one-time recovery codes.
// Invariants:
// - Pure: time comes in as epoch milliseconds, randomness only from node:crypto, nothing stored.
//   Persisting the secret (sealed, see services/secrets/seal.ts), the last used step and the
//   recovery-code hashes is the caller's job.
// - verifyTotp compares every candidate in the window in constant time and never returns a step
//   at or below `lastUsedStep`, so a caller that stores the returned step refuses replays.
// - Secrets are at least 128 bits; shorter ones are refused rather than silently accepted.
// - Recovery codes are only ever stored as hashRecoveryCode() output, never in clear.

import { createHash, createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto'

const SECRET_BYTES = 20 // RFC 4226 section 4 (R6): at least 128 bits, 160 recommended
const MIN_SECRET_BYTES = 16
const STEP_MS = 30_000 // RFC 6238 section 4.1: X = 30 seconds, T0 = 0
const DIGITS = 6
const MAX_WINDOW = 10

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567' // RFC 4648 section 6, table 3

// Lower case without 0/o/1/l/i: 31 symbols, so 12 of them carry 12 * log2(31) ~ 59.45 bits.
const RECOVERY_ALPHABET = '23456789abcdefghjkmnpqrstuvwxyz'
const RECOVERY_LENGTH = 12
const RECOVERY_GROUP = 4

/** A new random secret: 20 bytes (160 bits, RFC 4226 section 4 recommends at least 128), as a Buffer. */
export function newTotpSecret(): Buffer {
  return randomBytes(SECRET_BYTES)
}

/** RFC 4648 base32 without padding (authenticator apps want upper case, no '='). */
export function base32Encode(buf: Buffer): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const byte of buf) {
    value = ((value << 8) | byte) & 0xffff // at most 12 live bits, keep the int small
    bits += 8
    while (bits >= 5) {
      out += BASE32_ALPHABET[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31] // RFC 4648 section 6: pad last group with zero bits
  return out // padding '=' omitted (RFC 4648 section 3.2 allows it when the length is known)
}

/**
 * Inverse of base32Encode; accepts lower case, whitespace and trailing '=' padding.
 * Throws SyntaxError on any other character, on '=' before the end, or on a length no encoder
 * can produce (1, 3 or 6 symbols in the last group).
 */
export function base32Decode(text: string): Buffer {
  const cleaned = text.replace(/\s+/g, '').toUpperCase().replace(/=+$/, '')
  // RFC 4648 section 6: a final quantum has 2, 4, 5 or 7 symbols (8, 16, 24 or 32 bits).
  if ([1, 3, 6].includes(cleaned.length % 8)) throw new SyntaxError('base32: impossible length')
  const out: number[] = []
  let bits = 0
  let value = 0
  for (const ch of cleaned) {
    const v = BASE32_ALPHABET.indexOf(ch)
    if (v < 0) throw new SyntaxError(`base32: invalid character ${JSON.stringify(ch)}`)
    value = ((value << 5) | v) & 0xfff
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff)
      bits -= 8
    }
  }
  return Buffer.from(out) // leftover (< 5) bits are the encoder's zero padding; ignored (RFC 4648 section 3.5 allows either)
}

/** HOTP value (6 digits by default) for a counter, dynamic truncation per RFC 4226 section 5.3. */
export function hotp(secret: Buffer, counter: bigint | number, digits: number = DIGITS): string {
  checkSecret(secret)
  // RFC 4226 section 5.3: at least 6 digits; 31 bits of truncated value cover at most 10.
  if (!Number.isInteger(digits) || digits < 6 || digits > 10)
    throw new RangeError('hotp: digits must be 6..10')
  const c = typeof counter === 'bigint' ? counter : Number.isSafeInteger(counter) ? BigInt(counter) : -1n
  if (c < 0n || c > 0xffffffffffffffffn)
    throw new RangeError('hotp: counter must be an unsigned 64-bit integer')
  const msg = Buffer.alloc(8)
  msg.writeBigUInt64BE(c) // RFC 4226 section 5.1: C is an 8-byte big-endian counter
  const hs = createHmac('sha1', secret).update(msg).digest() // RFC 4226 section 5.3 step 1: HS = HMAC-SHA-1(K, C)
  const offset = hs[hs.length - 1]! & 0x0f // section 5.3 step 2: low 4 bits of the last byte
  const snum = hs.readUInt32BE(offset) & 0x7fffffff // DT: 31 bits, sign bit masked
  return (snum % 10 ** digits).toString().padStart(digits, '0') // step 3: Snum mod 10^Digit
}

/** TOTP value at a time: step 30 s, T0 = 0, SHA-1, 6 digits (the defaults every app uses). */
export function totpAt(secret: Buffer, timeMs: number): string {
  return hotp(secret, timeStep(timeMs))
}

export interface VerifyTotpOptions {
  /** Steps accepted either side of the current one; default 1 (RFC 6238 section 5.2). */
  window?: number
  /** The step returned by the last successful verification; it and older steps are refused. */
  lastUsedStep?: number | null
}

/**
 * Verifies a code at `timeMs`, accepting `window` (default 1) steps either side for clock skew
 * (RFC 6238 section 5.2). Returns the matched time step, which the caller stores as
 * `lastUsedStep` to refuse reuse, or null. Accepts exactly 6 ASCII digits, optionally with one
 * space in the middle ("123 456"); anything else is refused without computing a code.
 */
export function verifyTotp(
  secret: Buffer,
  code: string,
  timeMs: number,
  opts: VerifyTotpOptions = {},
): number | null {
  const window = opts.window ?? 1
  if (!Number.isInteger(window) || window < 0 || window > MAX_WINDOW) {
    throw new RangeError(`verifyTotp: window must be 0..${MAX_WINDOW}`)
  }
  const lastUsed = opts.lastUsedStep ?? null
  const m = /^([0-9]{3}) ?([0-9]{3})$/.exec(code)
  if (m === null) return null
  const given = Buffer.from(`${m[1]}${m[2]}`, 'ascii')
  const current = timeStep(timeMs)
  let matched: number | null = null
  // Every candidate is computed and compared, so timing does not reveal which step matched.
  for (let step = current - window; step <= current + window; step++) {
    if (step < 0) continue
    const equal = timingSafeEqual(Buffer.from(hotp(secret, step), 'ascii'), given)
    // RFC 6238 section 5.2: an OTP must not be accepted twice, so steps <= lastUsed never match.
    if (equal && matched === null && (lastUsed === null || step > lastUsed)) matched = step
  }
  return matched
}

export interface OtpauthUriOptions {
  secret: Buffer
  /** Shown by the app as the service name, e.g. "Postern Mail". Must not contain ':'. */
  issuer: string
  /** The login, e.g. "alice@example.com". Must not contain ':'. */
  account: string
}

/**
 * otpauth://totp/<issuer>:<account>?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30
 * (Google Authenticator Key Uri Format). Issuer and account are percent-encoded (space as %20,
 * '+' as %2B, since some apps decode '+' as a space).
 */
export function otpauthUri(opts: OtpauthUriOptions): string {
  checkSecret(opts.secret)
  for (const [name, value] of [
    ['issuer', opts.issuer],
    ['account', opts.account],
  ] as const) {
    // Key Uri Format: "Neither issuer nor account name may themselves contain a colon."
    if (value === '' || value.includes(':'))
      throw new RangeError(`otpauthUri: ${name} must be non-empty, no ':'`)
  }
  const issuer = encodeURIComponent(opts.issuer)
  const label = `${issuer}:${encodeURIComponent(opts.account)}`
  const query = `secret=${base32Encode(opts.secret)}&issuer=${issuer}&algorithm=SHA1&digits=${DIGITS}&period=${STEP_MS / 1000}`
  return `otpauth://totp/${label}?${query}`
}

/**
 * Recovery codes: `count` (default 10) distinct random codes like `7kq2-9xdm-4rtb`: 12 symbols
 * from a lower-case alphabet without 0/o/1/l/i, grouped by 4 with dashes. Each symbol is drawn
 * uniformly (randomInt rejects biased values), so a code carries 12 * log2(31) ~ 59.45 bits.
 */
export function newRecoveryCodes(count = 10): string[] {
  if (!Number.isInteger(count) || count < 1 || count > 100)
    throw new RangeError('newRecoveryCodes: count must be 1..100')
  const codes = new Set<string>()
  while (codes.size < count) {
    let raw = ''
    for (let i = 0; i < RECOVERY_LENGTH; i++) raw += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)]
    const groups = raw.match(new RegExp(`.{${RECOVERY_GROUP}}`, 'g')) ?? []
    codes.add(groups.join('-'))
  }
  return [...codes]
}

/**
 * Normalises a typed recovery code (case, whitespace, dashes) and returns the SHA-256 hex of the
 * normalised form, to store and to compare. Input that is not a well-formed code still hashes; it
 * just never matches a stored hash.
 */
export function hashRecoveryCode(code: string): string {
  const normalised = code.replace(/[\s-]+/g, '').toLowerCase()
  return createHash('sha256').update(normalised, 'utf8').digest('hex')
}

// RFC 6238 section 4.2: T = floor((Current Unix time - T0) / X), with T0 = 0.
function timeStep(timeMs: number): number {
  if (!Number.isFinite(timeMs) || timeMs < 0)
    throw new RangeError('totp: time must be a non-negative epoch ms')
  return Math.floor(timeMs / STEP_MS)
}

function checkSecret(secret: Buffer): void {
  // RFC 4226 section 4 (R6): the shared secret MUST be at least 128 bits.
  if (secret.length < MIN_SECRET_BYTES) throw new RangeError('totp: secret must be at least 16 bytes')
}
