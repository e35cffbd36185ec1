// The authentication throttle: counts failed log-ins per account and per client address in
// `auth_failures`, slows down repeated failures and locks a key out for a while. One set of
// counters serves every protocol that authenticates (HTTP log-in now, IMAP and SMTP AUTH later).
// Invariants:
// - Rows are keyed `account:<lower-cased name>` and `ip:<address>` (IPv4-mapped IPv6 written as
//   IPv4); subjects above 200 characters are hashed (boundedKey).
// - Counting is one atomic upsert per key (INSERT ... ON CONFLICT DO UPDATE ... RETURNING, the
//   same SQL on both dialects), so failures from several processes are never lost.
// - Failures count in a fixed window starting at the first failure (settings.windowMs). A lapsed
//   lock also starts a new count: the lock was the penalty, so the next failure does not re-lock.
// - A live lock is never extended by further failures nor lifted by a success.
// - The throttle never sleeps: it returns the delay, and the caller waits before answering.
//   Delay: 0 below slowdownAfter failures, then 250 ms doubling per failure, capped at 3 s.

import { sql } from 'kysely'
import type { Config } from '../../config/schema.ts'
import type { Store } from '../../store/db.ts'
import type { AuthFailureTable } from '../../store/schema.ts'
import type { Clock } from '../../time/clock.ts'
import { boundedKey } from './limiter.ts'

export interface ThrottleKeys {
  account?: string | null
  ip?: string | null
}

export interface ThrottleState {
  locked: boolean
  retryAfterS: number
  /** delay to apply before answering this attempt */
  delayMs: number
}

export interface AuthThrottleSettings {
  /** Failures after which each new attempt is delayed (auth.slowdown_after). */
  slowdownAfter: number
  /** Failures that lock an account (auth.lockout_after). */
  lockoutAfter: number
  /** Failures that lock a client address (auth.lockout_ip_after). */
  lockoutIpAfter: number
  /** Window in which failures are counted (auth.lockout_window_minutes). */
  windowMs: number
  /** How long a lock lasts (auth.lockout_minutes). */
  lockMs: number
}

export interface AuthThrottle {
  /** Before checking credentials. Locked when either key is locked. */
  check(keys: ThrottleKeys): Promise<ThrottleState>
  /** After a failure: counts it for each key, locks a key that reached its threshold. Returns
   * the new state. */
  recordFailure(keys: ThrottleKeys): Promise<ThrottleState>
  /** After a success: clears the account's counter (not the address's), unless it is locked. */
  recordSuccess(keys: ThrottleKeys): Promise<void>
  /** Deletes rows that no longer count (window over, not locked); returns how many. */
  prune(): Promise<number>
}

const FIRST_DELAY_MS = 250
const MAX_DELAY_MS = 3000

export function authThrottleSettings(config: Config): AuthThrottleSettings {
  return {
    slowdownAfter: config.auth.slowdown_after,
    lockoutAfter: config.auth.lockout_after,
    lockoutIpAfter: config.auth.lockout_ip_after,
    windowMs: config.auth.lockout_window_minutes * 60_000,
    lockMs: config.auth.lockout_minutes * 60_000,
  }
}

/** The address as one key: trimmed, lower-cased, `::ffff:1.2.3.4` as `1.2.3.4`. */
function normalizeIp(ip: string): string {
  const s = ip.trim().toLowerCase()
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  return mapped ? (mapped[1] as string) : s
}

interface KeyedThreshold {
  key: string
  lockAfter: number
}

type Row = Pick<AuthFailureTable, 'failures' | 'first_failed_at' | 'locked_until'>

export function createAuthThrottle(deps: {
  store: Store
  clock: Clock
  settings: AuthThrottleSettings
}): AuthThrottle {
  const { store, clock, settings } = deps
  const db = store.db

  function keysOf(k: ThrottleKeys): KeyedThreshold[] {
    const out: KeyedThreshold[] = []
    const account = k.account?.trim()
    if (account) out.push({ key: boundedKey('account', account), lockAfter: settings.lockoutAfter })
    const ip = k.ip ? normalizeIp(k.ip) : ''
    if (ip) out.push({ key: boundedKey('ip', ip), lockAfter: settings.lockoutIpAfter })
    return out
  }

  function delayFor(failures: number): number {
    if (failures < settings.slowdownAfter) return 0
    const steps = Math.min(failures - settings.slowdownAfter, 16)
    return Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** steps)
  }

  /** The state rows give at `now`: an expired window or a lapsed lock counts as no failures. */
  function stateOf(rows: Row[], now: number): ThrottleState {
    let locked = false
    let retryAfterS = 0
    let delayMs = 0
    for (const r of rows) {
      const lockedUntil = r.locked_until === null ? null : Number(r.locked_until)
      if (lockedUntil !== null && lockedUntil > now) {
        locked = true
        retryAfterS = Math.max(retryAfterS, Math.ceil((lockedUntil - now) / 1000))
      }
      const stale =
        Number(r.first_failed_at) <= now - settings.windowMs || (lockedUntil !== null && lockedUntil <= now)
      delayMs = Math.max(delayMs, delayFor(stale ? 0 : Number(r.failures)))
    }
    return { locked, retryAfterS, delayMs }
  }

  /** One atomic upsert: counts a failure for `key`, restarting a stale count, locking at the threshold. */
  async function countFailure(k: KeyedThreshold, now: number): Promise<Row> {
    const lockUntil = now + settings.lockMs
    const cut = now - settings.windowMs
    const stale = sql<boolean>`(auth_failures.first_failed_at <= ${cut} OR auth_failures.locked_until <= ${now})`
    const failures = sql<number>`CASE WHEN ${stale} THEN 1 ELSE auth_failures.failures + 1 END`
    return db
      .insertInto('auth_failures')
      .values({
        key: k.key,
        failures: 1,
        first_failed_at: now,
        last_failed_at: now,
        locked_until: k.lockAfter <= 1 ? lockUntil : null,
      })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          failures,
          first_failed_at: sql<number>`CASE WHEN ${stale} THEN ${now} ELSE auth_failures.first_failed_at END`,
          last_failed_at: now,
          locked_until: sql<number | null>`CASE
            WHEN auth_failures.locked_until > ${now} THEN auth_failures.locked_until
            WHEN ${failures} >= ${k.lockAfter} THEN ${lockUntil}
            ELSE NULL END`,
        }),
      )
      .returning(['failures', 'first_failed_at', 'locked_until'])
      .executeTakeFirstOrThrow()
  }

  return {
    async check(keys) {
      const ks = keysOf(keys)
      if (ks.length === 0) return { locked: false, retryAfterS: 0, delayMs: 0 }
      const rows = await db
        .selectFrom('auth_failures')
        .select(['failures', 'first_failed_at', 'locked_until'])
        .where(
          'key',
          'in',
          ks.map((k) => k.key),
        )
        .execute()
      return stateOf(rows, clock.now())
    },
    async recordFailure(keys) {
      const now = clock.now()
      const rows: Row[] = []
      for (const k of keysOf(keys)) rows.push(await countFailure(k, now))
      return stateOf(rows, now)
    },
    async recordSuccess(keys) {
      const account = keysOf({ account: keys.account }).at(0)
      if (!account) return
      const now = clock.now()
      await db
        .deleteFrom('auth_failures')
        .where('key', '=', account.key)
        .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
        .execute()
    },
    async prune() {
      const now = clock.now()
      const r = await db
        .deleteFrom('auth_failures')
        .where((eb) =>
          eb.and([
            eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]),
            eb.or([eb('first_failed_at', '<=', now - settings.windowMs), eb('locked_until', '<=', now)]),
          ]),
        )
        .executeTakeFirst()
      return Number(r.numDeletedRows)
    },
  }
}
