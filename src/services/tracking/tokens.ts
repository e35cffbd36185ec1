// Tracking tokens: what the open pixel, click and unsubscribe URLs of a sent message carry.
// A token names the message by its key (the random unique part of its Message-ID, 80 bits),
// for clicks also the link's index, and is signed: HMAC-SHA256 under a key derived from the
// secrets file, bound to the kind of URL, cut to 128 bits.
// Forms: open `<key>.<sig>`, unsubscribe `<key>.<sig>`, click `<key>.<index>.<sig>`.
// Invariants: a token verifies only for the kind it was made for; nothing but the key and the
// index is taken from it (a click goes to the URL stored under that index, never one from the
// request); comparison is constant-time.

import { createHmac, timingSafeEqual } from 'node:crypto'

export type TokenKind = 'open' | 'click' | 'unsubscribe'

const KEY = /^[0-9a-hjkmnp-tv-z]{26}$/
const SIG_BYTES = 16

function signature(secret: Buffer, kind: TokenKind, key: string, index: number | null): Buffer {
  return createHmac('sha256', secret)
    .update(`postern tracking v1:${kind}:${key}:${index ?? ''}`)
    .digest()
    .subarray(0, SIG_BYTES)
}

export function makeToken(secret: Buffer, kind: TokenKind, key: string, index: number | null = null): string {
  const sig = signature(secret, kind, key, index).toString('base64url')
  return index === null ? `${key}.${sig}` : `${key}.${index}.${sig}`
}

/** The message key and link index of a valid token of `kind`, or null. */
export function readToken(
  secret: Buffer,
  kind: TokenKind,
  token: string,
): { key: string; index: number | null } | null {
  const parts = token.split('.')
  const withIndex = kind === 'click'
  if (parts.length !== (withIndex ? 3 : 2)) return null
  const key = parts[0] as string
  if (!KEY.test(key)) return null
  let index: number | null = null
  if (withIndex) {
    if (!/^(0|[1-9][0-9]{0,3})$/.test(parts[1] as string)) return null
    index = Number(parts[1])
  }
  // Compared as text: base64url has several spellings of the same bytes, and only the one
  // Postern wrote is accepted.
  const given = Buffer.from(parts[parts.length - 1] as string)
  const want = Buffer.from(signature(secret, kind, key, index).toString('base64url'))
  if (given.length !== want.length || !timingSafeEqual(given, want)) return null
  return { key, index }
}

/** The message key of a Message-ID made by the send path (`<key>@<domain>`). */
export const messageKey = (messageId: string): string => messageId.split('@')[0] as string
