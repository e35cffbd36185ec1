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
  | 'sig'
  | 'att'
  | 'drf'
  | 'wup'
  | 'whk'
  | 'wdl'
  | 'wat'

// Monotonic within a process (as ULID's monotonic mode, per millisecond value): an id made
// for a millisecond that recently had one takes that one's random part plus one, so ids of
// one time sort in the order they were made (events of one transaction list in order), even
// when ids for other times are made in between.
const recent = new Map<number, bigint>()
const RAND_MAX = (1n << 80n) - 1n
/** Random bytes drawn 4 KiB at a time: one system call per 400 ids, not one per id. */
let pool = Buffer.alloc(0)
let poolAt = 0
const random80 = (): bigint => {
  if (poolAt + 10 > pool.length) {
    pool = randomBytes(4096)
    poolAt = 0
  }
  let acc = 0n
  for (let i = 0; i < 10; i++) acc = (acc << 8n) | BigInt(pool[poolAt + i] as number)
  poolAt += 10
  return acc
}

export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  let time = ''
  let t = now
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time
    t = Math.floor(t / 32)
  }
  const prev = recent.get(now)
  let acc = prev !== undefined && prev < RAND_MAX ? prev + 1n : random80()
  if (prev === undefined && recent.size >= 256) recent.delete(recent.keys().next().value as number)
  recent.set(now, acc)
  let rand = ''
  // 80 bits -> 16 base32 characters, 5 bits at a time.
  for (let i = 0; i < 16; i++) {
    rand = ALPHABET[Number(acc & 31n)] + rand
    acc >>= 5n
  }
  return `${prefix}_${time}${rand}`
}

/** The greatest id `newId(prefix, ms)` can return: every id made at or before `ms` sorts at or below it. */
export function lastIdAt(prefix: IdPrefix, ms: number): string {
  let time = ''
  let t = Math.max(0, ms)
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time
    t = Math.floor(t / 32)
  }
  return `${prefix}_${time}${'z'.repeat(16)}`
}

/** The millisecond time an id was made for (its first 10 characters after the prefix). */
export function timeOfId(id: string): number {
  const start = id.indexOf('_') + 1
  let t = 0
  for (let i = start; i < start + 10 && i < id.length; i++)
    t = t * 32 + Math.max(0, ALPHABET.indexOf(id[i] as string))
  return t
}
