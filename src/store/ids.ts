// Opaque, prefixed, sortable ids (`msg_01J...`): a 48-bit millisecond time and 80 random bits
// in Crockford base32, so ids sort by creation time and never reveal a count.

import { randomBytes } from 'node:crypto'

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'

export type IdPrefix =
  | 'org'
  | 'usr'
  | 'ses'
  | 'key'
  | 'app'
  | 'dom'
  | 'dkim'
  | 'mbx'
  | 'als'
  | 'fld'
  | 'thr'
  | 'msg'
  | 'eml'
  | 'rcp'
  | 'evt'
  | 'req'
  | 'sup'
  | 'trc'

export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  let time = ''
  let t = now
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time
    t = Math.floor(t / 32)
  }
  const rnd = randomBytes(10)
  let rand = ''
  // 80 bits -> 16 base32 characters, 5 bits at a time.
  let acc = 0n
  for (const b of rnd) acc = (acc << 8n) | BigInt(b)
  for (let i = 0; i < 16; i++) {
    rand = ALPHABET[Number(acc & 31n)] + rand
    acc >>= 5n
  }
  return `${prefix}_${time}${rand}`
}
