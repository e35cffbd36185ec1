// Remembers for a while that a mail client's password matched a mailbox's stored hash, so a
// client that opens many connections (IMAP clients open several and reconnect often; SMTP
// submission logs in per connection) costs one Argon2id verification per TTL instead of one
// per connection. Dovecot's auth_cache does the same.
// Invariants:
// - Only successes are remembered; a wrong password always runs the full verification (and
//   counts against the lock-out as before).
// - An entry is an HMAC, under a random key made when the process starts, of the stored hash
//   and the secret: the secret itself is never kept, and a changed password has a new stored
//   hash, so entries made with the old one never match again.
// - Bounded: at most `max` entries, the least recently added dropped first; an entry older
//   than the TTL never matches. A TTL of 0 turns the cache off.

import { createHmac, randomBytes } from 'node:crypto'

export interface VerifiedLogins {
  /** True when this secret was verified against this stored hash within the TTL. */
  has(storedHash: string, secret: string): boolean
  add(storedHash: string, secret: string): void
}

export function createVerifiedLogins(opts: {
  ttlMs: number
  now: () => number
  max?: number
}): VerifiedLogins {
  const key = randomBytes(32)
  const max = opts.max ?? 10_000
  const seen = new Map<string, number>()
  const entry = (storedHash: string, secret: string) =>
    createHmac('sha256', key).update(storedHash).update('\0').update(secret).digest('base64')
  return {
    has(storedHash, secret) {
      if (opts.ttlMs <= 0) return false
      const k = entry(storedHash, secret)
      const at = seen.get(k)
      if (at === undefined) return false
      if (opts.now() - at < opts.ttlMs) return true
      seen.delete(k)
      return false
    },
    add(storedHash, secret) {
      if (opts.ttlMs <= 0) return
      const k = entry(storedHash, secret)
      seen.delete(k)
      seen.set(k, opts.now())
      for (const oldest of seen.keys()) {
        if (seen.size <= max) break
        seen.delete(oldest)
      }
    },
  }
}
