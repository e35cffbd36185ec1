// Random secrets Postern hands out (API keys, session ids, reset and invite tokens, app
// passwords) and the one way they are stored: a SHA-256 hex digest. These are random, so a
// fast hash is enough; argon2id is only for passwords people choose (passwords.ts).

import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto'

export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex')

/** `<prefix>_<base64url of `bytes` random bytes>`, e.g. pst_reset_Qm9... */
export function newSecret(prefix: string, bytes = 24): string {
  return `${prefix}_${randomBytes(bytes).toString('base64url')}`
}

/** A code people type: `digits` decimal digits, uniformly random. */
export function newNumericCode(digits = 6): string {
  return String(randomInt(0, 10 ** digits)).padStart(digits, '0')
}

/** An app password: 4 groups of 4 lower-case letters, easy to type on a phone (~75 bits). */
export function newAppPassword(): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz'
  const groups: string[] = []
  for (let g = 0; g < 4; g++) {
    let s = ''
    for (let i = 0; i < 4; i++) s += alphabet[randomInt(alphabet.length)]
    groups.push(s)
  }
  return groups.join('-')
}

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
