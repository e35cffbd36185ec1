// Per-org sending caps, so one tenant cannot burn the shared IP: recipients delivered per hour
// and per day. The operator's config (`outbound.org_hourly_cap`, `org_daily_cap`) is a ceiling;
// an org's own settings (`send_hourly_cap`, `send_daily_cap`) may only lower it (effectiveCap). Counted with the rate limiter's atomic
// windows when the queue hands recipients to delivery; the send API peeks at the same
// counters and answers 429 when a request cannot fit, and the queue holds (never drops)
// messages that would go over.
// Invariants: a refused reservation is given back, so refusals do not eat the window; a tenant
// setting never raises or removes an operator cap (0 in an org's settings means "no cap of the
// org's own", never "no cap" while the operator set one).

import type { RateLimitRule } from '../ratelimit/rules.ts'
import type { OutboundContext } from './context.ts'

export interface CapDecision {
  ok: boolean
  /** Which window refused, when one did. */
  window: 'hour' | 'day' | null
  cap: number
  remaining: number
  /** Epoch ms when the refusing window resets. */
  resetAt: number
}

const CAPS_TTL_MS = 60_000
const capsCache = new WeakMap<object, Map<string, { at: number; rules: RateLimitRule[] }>>()

/** The org's cap rules (its settings over the config), re-read at most once a minute. */
export async function orgCaps(
  ctx: Pick<OutboundContext, 'store' | 'settings' | 'clock'>,
  orgId: string,
): Promise<RateLimitRule[]> {
  let cache = capsCache.get(ctx)
  if (!cache) {
    cache = new Map()
    capsCache.set(ctx, cache)
  }
  const now = ctx.clock.now()
  const hit = cache.get(orgId)
  if (hit && now - hit.at < CAPS_TTL_MS) return hit.rules
  const org = await ctx.store.db
    .selectFrom('orgs')
    .select('settings')
    .where('id', '=', orgId)
    .executeTakeFirst()
  let s: Record<string, unknown> = {}
  try {
    s = JSON.parse(org?.settings ?? '{}') as Record<string, unknown>
  } catch {}
  const hour = effectiveCap(ctx.settings.orgHourlyCap, s.send_hourly_cap)
  const day = effectiveCap(ctx.settings.orgDailyCap, s.send_daily_cap)
  const rules: RateLimitRule[] = []
  if (hour > 0) rules.push({ name: 'org_send_hour', limit: hour, windowMs: 3_600_000 })
  if (day > 0) rules.push({ name: 'org_send_day', limit: day, windowMs: 86_400_000 })
  if (cache.size > 10_000) cache.clear()
  cache.set(orgId, { at: now, rules })
  return rules
}

/**
 * The cap that applies: the lower of the operator's and the org's, where 0 (or an unusable
 * value) on either side means that side sets none. 0 = no cap at all.
 */
export function effectiveCap(operator: number, org: unknown): number {
  const own = typeof org === 'number' && Number.isSafeInteger(org) && org > 0 ? org : 0
  if (operator <= 0) return own
  return own > 0 ? Math.min(own, operator) : operator
}

const windowOf = (r: RateLimitRule): 'hour' | 'day' => (r.name === 'org_send_hour' ? 'hour' : 'day')

const OK: CapDecision = { ok: true, window: null, cap: 0, remaining: 0, resetAt: 0 }

/**
 * Counts `n` recipients against the org's caps; gives them back and refuses when any cap would
 * be exceeded. The counters move inside a group commit, not in transactions of their own.
 */
export async function reserveCapacity(
  ctx: Pick<OutboundContext, 'limiter' | 'store' | 'settings' | 'clock' | 'committer'>,
  orgId: string,
  n: number,
): Promise<CapDecision> {
  const rules = await orgCaps(ctx, orgId)
  if (rules.length === 0) return OK
  return ctx.committer.run(async (tx) => {
    const taken: RateLimitRule[] = []
    for (const rule of rules) {
      const d = await ctx.limiter.hit(rule, orgId, n, tx)
      taken.push(rule)
      if (!d.allowed) {
        for (const t of taken) await ctx.limiter.hit(t, orgId, -n, tx)
        return {
          ok: false,
          window: windowOf(rule),
          cap: rule.limit,
          remaining: d.remaining,
          resetAt: d.resetAt,
        }
      }
    }
    return OK
  })
}

/** Whether `n` more recipients fit now, without counting them (the send API's check; a read). */
export async function peekCapacity(
  ctx: Pick<OutboundContext, 'limiter' | 'store' | 'settings' | 'clock'>,
  orgId: string,
  n: number,
): Promise<CapDecision> {
  for (const rule of await orgCaps(ctx, orgId)) {
    const d = await ctx.limiter.peek(rule, orgId, 0)
    if (d.remaining < n)
      return {
        ok: false,
        window: windowOf(rule),
        cap: rule.limit,
        remaining: d.remaining,
        resetAt: d.resetAt,
      }
  }
  return OK
}
