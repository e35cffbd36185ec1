// Signed per-message return paths (VERP): the envelope sender of each outbound message is
// `bounces+<id>-<mac>@<domain>`, so a bounce that arrives days later names the message it is
// about, and nobody else can make an address that we would take for one of ours.
// Invariants:
// - The token is `<outbound id>-<mac>`: the id as ids.ts writes it (a lower-case prefix, `_`,
//   26 characters of lower-case Crockford base32), then 80 bits of HMAC-SHA256 under the key
//   over a context label, the id and the normalised domain, in the same lower-case base32.
//   Everything is lower case, so an MTA that lower-cases (or upper-cases) the local part does
//   not break verification: parsing folds case before checking.
// - The local part is a dot-atom of 55 octets (`bounces+` 8, id 30, `-` 1, mac 16), under the
//   64 of RFC 5321 4.5.3.1.1.
// - The domain is signed, so an address moved to another of our domains does not verify.
// - The MAC is compared in constant time; anything that is not exactly our shape, has a domain
//   that does not normalise, or does not verify is null, never an exception.
// - There is no expiry in the token: the id's ULID time says when the message was made, and
//   the caller decides how old a bounce may be.

import { createHmac, timingSafeEqual } from 'node:crypto'
import { normaliseDomain } from './address.ts'

const PREFIX = 'bounces+'
const CONTEXT = 'postern return-path v1'
/** Bytes of the HMAC kept: 80 bits, 16 base32 characters. */
const MAC_BYTES = 10
const MIN_KEY_BYTES = 16
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'

const ID = /^[a-z]{2,8}_[0-9a-hjkmnp-tv-z]{26}$/
const LOCAL = /^bounces\+([a-z]{2,8}_[0-9a-hjkmnp-tv-z]{26})-([0-9a-hjkmnp-tv-z]{16})$/

/** Lower-case Crockford base32 of a buffer whose bit length is a multiple of 5. */
function base32(bytes: Buffer): string {
  let acc = 0n
  for (const b of bytes) acc = (acc << 8n) | BigInt(b)
  let out = ''
  for (let i = 0; i < (bytes.length * 8) / 5; i++) {
    out = ALPHABET[Number(acc & 31n)] + out
    acc >>= 5n
  }
  return out
}

function checkKey(key: Buffer): void {
  if (key.length < MIN_KEY_BYTES)
    throw new RangeError(`return-path key must be at least ${MIN_KEY_BYTES} bytes`)
}

function mac(key: Buffer, id: string, domain: string): string {
  const h = createHmac('sha256', key).update(`${CONTEXT}\0${id}\0${domain}`).digest()
  return base32(h.subarray(0, MAC_BYTES))
}

/**
 * The signed return path for one outbound message, `bounces+<id>-<mac>@<domain>`. The id is
 * folded to lower case (ids.ts writes it so). Throws RangeError for a key shorter than 16
 * bytes or an id that is not `prefix_<26 base32>`, AddressError for a domain that is not one.
 */
export function makeReturnPath(key: Buffer, outboundId: string, domain: string): string {
  checkKey(key)
  const id = outboundId.toLowerCase()
  if (!ID.test(id)) throw new RangeError(`not an outbound message id: '${outboundId.slice(0, 40)}'`)
  const d = normaliseDomain(domain)
  return `${PREFIX}${id}-${mac(key, id, d)}@${d}`
}

/**
 * The message a return path was made for, or null when the address is not one of ours or its
 * signature does not verify. Case-insensitive; one pair of angle brackets around the address
 * (an SMTP path) is allowed. The id and domain come back lower case. Throws RangeError only
 * for a key shorter than 16 bytes (a configuration error, not bad input).
 */
export function parseReturnPath(key: Buffer, address: string): { outboundId: string; domain: string } | null {
  checkKey(key)
  if (typeof address !== 'string' || address.length > 300) return null
  let a = address.trim()
  if (a.startsWith('<') && a.endsWith('>')) a = a.slice(1, -1)
  const at = a.lastIndexOf('@')
  if (at < 0) return null
  const local = a.slice(0, at)
  if (/[^\x21-\x7e]/.test(local)) return null // before case folding: the Kelvin sign (U+212A) folds to 'k'
  const m = LOCAL.exec(local.toLowerCase())
  if (!m) return null
  let domain: string
  try {
    domain = normaliseDomain(a.slice(at + 1))
  } catch {
    return null
  }
  const id = m[1] as string
  const given = Buffer.from(m[2] as string, 'latin1')
  const want = Buffer.from(mac(key, id, domain), 'latin1')
  if (given.length !== want.length || !timingSafeEqual(given, want)) return null
  return { outboundId: id, domain }
}

/** Cheap shape check on a local part: does it start with `bounces+` (any case)? Not a verification. */
export function isReturnPathLocal(local: string): boolean {
  return local.length > PREFIX.length && local.slice(0, PREFIX.length).toLowerCase() === PREFIX
}
