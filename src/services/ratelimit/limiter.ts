// The rate limiter: fixed-window hit counters in the `rate_limits` table, one row per
// (rule, subject), shared by every process on the same database (no in-memory state a second
// node would miss).
// Invariants:
// - A hit is one atomic statement (INSERT ... ON CONFLICT (key) DO UPDATE ... RETURNING, with a
//   CASE restarting an expired window), the same SQL on SQLite (3.35+) and PostgreSQL, so two
//   processes never both get the last slot of a window.
// - Refused hits are counted too: hammering past the limit never frees a slot early.
// - A window starts at a subject's first hit and lasts rule.windowMs; an expired row behaves
//   exactly like a missing one, and prune() deletes it.
// - Keys are `<rule>:<subject>` with the subject lower-cased and, above 200 characters, replaced
//   by its SHA-256, so an attacker-chosen subject cannot grow the table's keys.
// - Headers: X-RateLimit-Reset is the Unix time (seconds) at which the window resets, as seed
//   003's mailcow-style API documents it (its example value is an epoch timestamp); Retry-After
//   carries the delta.

import { createHash } from 'node:crypto'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Store } from '../../store/db.ts'
import type { Database } from '../../store/schema.ts'
import type { Clock } from '../../time/clock.ts'
import { ServiceError } from '../errors.ts'
import type { RateLimitRule } from './rules.ts'

export interface RateLimitDecision {
  allowed: boolean
  limit: number
  remaining: number
  /** epoch ms when the window resets */
  resetAt: number
  /** whole seconds until the window resets, at decision time (X-RateLimit-Reset) */
  resetInS: number
  /** whole seconds to wait, 0 when allowed */
  retryAfterS: number
}

export interface RateLimitHit {
  rule: RateLimitRule
  subject: string
}

export interface RateLimiter {
  /** Counts `cost` hits (default 1; a batch send counts each message) for (rule, subject) and decides, in one atomic statement. */
  hit(
    rule: RateLimitRule,
    subject: string,
    cost?: number,
    /** Run inside this transaction instead of on its own (a group commit). */
    ex?: Kysely<Database> | Transaction<Database>,
  ): Promise<RateLimitDecision>
  /** The decision a hit costing `cost` would get, without counting anything (a read). */
  peek(rule: RateLimitRule, subject: string, cost?: number): Promise<RateLimitDecision>
  /** Several rules at once (e.g. login per IP and per email): counts all, allowed only if all
   * allow; returns the most restrictive decision. */
  hitAll(hits: RateLimitHit[]): Promise<RateLimitDecision>
  /** Forgets (rule, subject)'s counter. */
  reset(rule: RateLimitRule, subject: string): Promise<void>
  /** Deletes expired rows (a job calls it); returns how many. */
  prune(): Promise<number>
}

const MAX_SUBJECT = 200

/** `<prefix>:<subject>`, the subject lower-cased and hashed when longer than 200 characters. */
export function boundedKey(prefix: string, subject: string): string {
  const s = subject.toLowerCase()
  if (s.length <= MAX_SUBJECT) return `${prefix}:${s}`
  return `${prefix}:sha256:${createHash('sha256').update(s).digest('hex')}`
}

const ceilS = (ms: number): number => Math.max(0, Math.ceil(ms / 1000))

export function createRateLimiter(deps: { store: Store; clock: Clock }): RateLimiter {
  const { store, clock } = deps
  const db = store.db

  async function hit(
    rule: RateLimitRule,
    subject: string,
    cost = 1,
    ex: Kysely<Database> | Transaction<Database> = db,
  ): Promise<RateLimitDecision> {
    const now = clock.now()
    const expiresAt = now + rule.windowMs
    // Every value is bound as one parameter (no arithmetic on parameters: PostgreSQL cannot type
    // `$1 + $2`); in SET, `rate_limits.*` is the stored row, evaluated before any assignment.
    const expired = sql<boolean>`rate_limits.expires_at <= ${now}`
    const row = await ex
      .insertInto('rate_limits')
      .values({ key: boundedKey(rule.name, subject), window_start: now, count: cost, expires_at: expiresAt })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          window_start: sql<number>`CASE WHEN ${expired} THEN ${now} ELSE rate_limits.window_start END`,
          count: sql<number>`CASE WHEN ${expired} THEN ${cost} ELSE rate_limits.count + ${cost} END`,
          expires_at: sql<number>`CASE WHEN ${expired} THEN ${expiresAt} ELSE rate_limits.expires_at END`,
        }),
      )
      .returning(['count', 'expires_at'])
      .executeTakeFirstOrThrow()
    return decide(rule, Number(row.count), Number(row.expires_at), now)
  }

  return {
    hit,
    async peek(rule, subject, cost = 1) {
      const now = clock.now()
      const row = await db
        .selectFrom('rate_limits')
        .select(['count', 'expires_at'])
        .where('key', '=', boundedKey(rule.name, subject))
        .executeTakeFirst()
      const live = row && Number(row.expires_at) > now
      return decide(
        rule,
        (live ? Number(row.count) : 0) + cost,
        live ? Number(row.expires_at) : now + rule.windowMs,
        now,
      )
    },
    async hitAll(hits) {
      if (hits.length === 0) throw new Error('hitAll needs at least one hit')
      const decisions: RateLimitDecision[] = []
      for (const h of hits) decisions.push(await hit(h.rule, h.subject))
      return mostRestrictive(decisions)
    },
    async reset(rule, subject) {
      await db.deleteFrom('rate_limits').where('key', '=', boundedKey(rule.name, subject)).execute()
    },
    async prune() {
      const r = await db.deleteFrom('rate_limits').where('expires_at', '<=', clock.now()).executeTakeFirst()
      return Number(r.numDeletedRows)
    },
  }
}

/** The decision for `count` hits in a window ending at `resetAt`. */
function decide(rule: RateLimitRule, count: number, resetAt: number, now: number): RateLimitDecision {
  const allowed = count <= rule.limit
  const resetInS = ceilS(resetAt - now)
  return {
    allowed,
    limit: rule.limit,
    remaining: Math.max(0, rule.limit - count),
    resetAt,
    resetInS,
    retryAfterS: allowed ? 0 : Math.max(1, resetInS),
  }
}

/** A refusal beats an allowance (the longest wait wins); among allowances, the fewest remaining. */
function mostRestrictive(ds: RateLimitDecision[]): RateLimitDecision {
  return ds.reduce((worst, d) => {
    if (d.allowed !== worst.allowed) return d.allowed ? worst : d
    if (!d.allowed) return d.retryAfterS > worst.retryAfterS ? d : worst
    if (d.remaining !== worst.remaining) return d.remaining < worst.remaining ? d : worst
    return d.resetAt > worst.resetAt ? d : worst
  })
}

/** The response headers for a decision; Retry-After only when refused. */
export function rateLimitHeaders(d: RateLimitDecision): Record<string, string> {
  const h: Record<string, string> = {
    'X-RateLimit-Limit': String(d.limit),
    'X-RateLimit-Remaining': String(d.remaining),
    'X-RateLimit-Reset': String(Math.ceil(d.resetAt / 1000)),
  }
  if (!d.allowed) h['Retry-After'] = String(d.retryAfterS)
  return h
}

/** `N seconds`, `N minutes` or `N hours`, rounded up. */
export function describeWait(s: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`
  if (s < 120) return plural(Math.max(1, s), 'second')
  if (s < 2 * 3600) return plural(Math.ceil(s / 60), 'minute')
  return plural(Math.ceil(s / 3600), 'hour')
}

/** The 429 for a refused decision; `what` names what was limited, e.g. 'log-in attempts'. */
export function rateLimitedError(d: RateLimitDecision, what: string): ServiceError {
  const wait = Math.max(1, d.retryAfterS)
  return new ServiceError(
    'rate_limited',
    'RATE_LIMITED',
    `Too many ${what}; try again in ${describeWait(wait)}.`,
    {
      retryAfter: wait,
    },
  )
}
