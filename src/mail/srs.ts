// The Sender Rewriting Scheme (Shevek's SRS, as libsrs2 and postsrsd write it): a forwarder
// puts an address of its own domain in MAIL FROM, so SPF at the next hop checks the forwarder,
// and a bounce to that address can be traced back to the original sender.
//   SRS0=HHHHHH=TT=orig-domain=orig-local@forwarding-domain
//   SRS1=HHHHHH=first-hop==HHHHHH=TT=orig-domain=orig-local@forwarding-domain
// SRS1 is what forwarding an SRS0 address gives: the first hop's SRS0 part is kept as is and
// only the first hop's name is added, so a chain of forwarders never grows the address more.
// Invariants:
// - HHHHHH is 30 bits of HMAC-SHA256 under the key over a context label, the timestamp (SRS0
//   only) and the lower-cased domain and local part, in lower-case RFC 4648 base32; TT is the
//   day number (Unix days mod 1024) in two base32 characters. Everything is compared after
//   case folding, so an MTA that changes the case of the local part does not break a bounce.
// - reverse() accepts only addresses it made with this key: a wrong hash is 'bad_hash', a
//   timestamp older than maxAgeDays (or in the future) is 'expired', anything else of the SRS
//   shape that does not parse is 'malformed'; none of these throws. The hash is compared in
//   constant time.
// - forward() of the null sender is the null sender; forward() never makes a local part longer
//   than 64 octets (RFC 5321 4.5.3.1.1): it returns null instead and the caller picks another
//   envelope sender.

import { createHmac, timingSafeEqual } from 'node:crypto'

const CONTEXT = 'postern srs v1'
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'
const HASH_CHARS = 6
const MIN_KEY_BYTES = 16
const MAX_LOCAL_OCTETS = 64
/** The timestamp wraps every 1024 days (two base32 characters). */
const TIME_SLOTS = 1024
const DAY_MS = 86_400_000

const SRS_LOCAL = /^srs[01][=+-]/i

export type SrsFailure = 'not_srs' | 'malformed' | 'bad_hash' | 'expired'

export type SrsReversal = { ok: true; address: string } | { ok: false; reason: SrsFailure }

function checkKey(key: Buffer): void {
  if (key.length < MIN_KEY_BYTES) throw new RangeError(`SRS key must be at least ${MIN_KEY_BYTES} bytes`)
}

function base32(bytes: Buffer, chars: number): string {
  let out = ''
  let acc = 0
  let bits = 0
  for (const b of bytes) {
    acc = (acc << 8) | b
    bits += 8
    while (bits >= 5 && out.length < chars) {
      out += ALPHABET[(acc >> (bits - 5)) & 31]
      bits -= 5
    }
    acc &= (1 << bits) - 1
    if (out.length >= chars) break
  }
  return out
}

function hash(key: Buffer, ...parts: string[]): string {
  const h = createHmac('sha256', key)
    .update([CONTEXT, ...parts.map((p) => p.toLowerCase())].join('\0'))
    .digest()
  return base32(h, HASH_CHARS)
}

function sameHash(given: string, want: string): boolean {
  const a = Buffer.from(given.toLowerCase(), 'latin1')
  const b = Buffer.from(want, 'latin1')
  return a.length === b.length && timingSafeEqual(a, b)
}

const daySlot = (now: number): number => Math.floor(now / DAY_MS) % TIME_SLOTS

function encodeTime(slot: number): string {
  return `${ALPHABET[slot >> 5]}${ALPHABET[slot & 31]}`
}

function decodeTime(text: string): number | null {
  if (text.length !== 2) return null
  const hi = ALPHABET.indexOf(text[0]?.toLowerCase() as string)
  const lo = ALPHABET.indexOf(text[1]?.toLowerCase() as string)
  return hi < 0 || lo < 0 ? null : (hi << 5) | lo
}

function split(address: string): { local: string; domain: string } | null {
  const at = address.lastIndexOf('@')
  if (at <= 0 || at === address.length - 1) return null
  return { local: address.slice(0, at), domain: address.slice(at + 1) }
}

/** Whether a local part has the SRS shape (SRS0 or SRS1 and a separator, any case). Not a verification. */
export function isSrsLocal(local: string): boolean {
  return SRS_LOCAL.test(local)
}

/**
 * The envelope sender to use when forwarding mail from `sender` through `forwardDomain`: the
 * null sender stays null, an SRS0 or SRS1 address becomes SRS1, any other address SRS0. Null
 * when the result would not fit in 64 octets. Throws RangeError for a key under 16 bytes,
 * TypeError for a sender that is not local@domain.
 */
export function srsForward(key: Buffer, sender: string, forwardDomain: string, now: number): string | null {
  checkKey(key)
  if (sender === '') return ''
  const parts = split(sender)
  if (!parts) throw new TypeError(`not an address: '${sender.slice(0, 80)}'`)
  const fwd = forwardDomain.toLowerCase()
  let local: string
  if (/^srs0[=+-]/i.test(parts.local)) {
    // SRS0=... of another forwarder: SRS1=HHH=that-forwarder==HHH=TT=d=l (the SRS0 body kept).
    const rest = parts.local.slice(4) // the separator and what follows
    local = `SRS1=${hash(key, parts.domain, rest)}=${parts.domain}=${rest}`
  } else if (/^srs1[=+-]/i.test(parts.local)) {
    // Already SRS1: keep its first hop and the SRS0 body, re-sign for ourselves.
    const m = /^srs1[=+-][^=+-]+[=+-]([^=]+)=([=+-].*)$/i.exec(parts.local)
    if (!m) throw new TypeError(`malformed SRS1 address: '${sender.slice(0, 80)}'`)
    const [, hop, rest] = m as unknown as [string, string, string]
    local = `SRS1=${hash(key, hop, rest)}=${hop}=${rest}`
  } else {
    const tt = encodeTime(daySlot(now))
    local = `SRS0=${hash(key, tt, parts.domain, parts.local)}=${tt}=${parts.domain}=${parts.local}`
  }
  if (Buffer.byteLength(local, 'utf8') > MAX_LOCAL_OCTETS) return null
  return `${local}@${fwd}`
}

/**
 * The address an SRS address of ours stands for: the original sender for SRS0, the first
 * forwarder's SRS0 address for SRS1. Case-insensitive. `maxAgeDays` bounds how old an SRS0
 * timestamp may be (a bounce weeks later is refused). Throws only for a key under 16 bytes.
 */
export function srsReverse(key: Buffer, address: string, now: number, maxAgeDays: number): SrsReversal {
  checkKey(key)
  const parts = typeof address === 'string' && address.length <= 600 ? split(address.trim()) : null
  if (!parts || !isSrsLocal(parts.local)) return { ok: false, reason: 'not_srs' }
  const local = parts.local
  if (/[^\x21-\x7e]/.test(local)) return { ok: false, reason: 'malformed' }
  if (local[3] === '1') {
    const m = /^srs1[=+-]([^=+-]+)[=+-]([^=]+)=([=+-].+)$/i.exec(local)
    if (!m) return { ok: false, reason: 'malformed' }
    const [, given, hop, rest] = m as unknown as [string, string, string, string]
    if (!sameHash(given, hash(key, hop, rest))) return { ok: false, reason: 'bad_hash' }
    return { ok: true, address: `SRS0${rest}@${hop}` }
  }
  const m = /^srs0[=+-]([^=+-]+)=([^=]+)=([^=]+)=(.+)$/i.exec(local)
  if (!m) return { ok: false, reason: 'malformed' }
  const [, given, tt, domain, origLocal] = m as unknown as [string, string, string, string, string]
  const slot = decodeTime(tt)
  if (slot === null) return { ok: false, reason: 'malformed' }
  if (!sameHash(given, hash(key, tt, domain, origLocal))) return { ok: false, reason: 'bad_hash' }
  const age = (daySlot(now) - slot + TIME_SLOTS) % TIME_SLOTS
  if (age > maxAgeDays) return { ok: false, reason: 'expired' }
  return { ok: true, address: `${origLocal}@${domain}` }
}
