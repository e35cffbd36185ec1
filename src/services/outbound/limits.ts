// Per-org sending caps, so one tenant cannot burn the shared IP: recipients delivered per hour
// and per day, from config (`outbound.org_hourly_cap`, `org_daily_cap`) or the org's own
// settings (`send_hourly_cap`, `send_daily_cap`). Counted with the rate limiter's atomic
// windows when the queue hands recipients to delivery; the send API peeks at the same
// counters and answers 429 when a request cannot fit, and the queue holds (never drops)
// messages that would go over.
// Invariant: a refused reservation is given back, so refusals do not eat the window.

import type { Tx } from '../messages/context.ts'
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

export async function orgCaps(
  tx: Tx,
  orgId: string,
  ctx: Pick<OutboundContext, 'settings'>,
): Promise<RateLimitRule[]> {
  const org = await tx.selectFrom('orgs').select('settings').where('id', '=', orgId).executeTakeFirst()
  let s: Record<string, unknown> = {}
  try {
    s = JSON.parse(org?.settings ?? '{}') as Record<string, unknown>
  } catch {}
  const pick = (v: unknown, d: number) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : d)
  const hour = pick(s.send_hourly_cap, ctx.settings.orgHourlyCap)
  const day = pick(s.send_daily_cap, ctx.settings.orgDailyCap)
  const rules: RateLimitRule[] = []
  if (hour > 0) rules.push({ name: 'org_send_hour', limit: hour, windowMs: 3_600_000 })
  if (day > 0) rules.push({ name: 'org_send_day', limit: day, windowMs: 86_400_000 })
  return rules
}

const windowOf = (r: RateLimitRule): 'hour' | 'day' => (r.name === 'org_send_hour' ? 'hour' : 'day')

/** Counts `n` recipients against the org's caps; gives them back and refuses when any cap would be exceeded. */
export async function reserveCapacity(
  ctx: Pick<OutboundContext, 'limiter' | 'store' | 'settings'>,
  orgId: string,
  n: number,
): Promise<CapDecision> {
  const rules = await orgCaps(ctx.store.db, orgId, ctx)
  const taken: RateLimitRule[] = []
  for (const rule of rules) {
    const d = await ctx.limiter.hit(rule, orgId, n)
    taken.push(rule)
    if (!d.allowed) {
      for (const t of taken) await ctx.limiter.hit(t, orgId, -n)
      return {
        ok: false,
        window: windowOf(rule),
        cap: rule.limit,
        remaining: d.remaining,
        resetAt: d.resetAt,
      }
    }
  }
  return { ok: true, window: null, cap: 0, remaining: 0, resetAt: 0 }
}

/** Whether `n` more recipients fit now, without counting them (the send API's check). */
export async function peekCapacity(
  ctx: Pick<OutboundContext, 'limiter' | 'store' | 'settings' | 'clock'>,
  orgId: string,
  n: number,
): Promise<CapDecision> {
  const rules = await orgCaps(ctx.store.db, orgId, ctx)
  for (const rule of rules) {
    const d = await ctx.limiter.hit(rule, orgId, 0)
    const used = rule.limit - d.remaining
    if (used + n > rule.limit)
      return {
        ok: false,
        window: windowOf(rule),
        cap: rule.limit,
        remaining: d.remaining,
        resetAt: d.resetAt,
      }
  }
  return { ok: true, window: null, cap: 0, remaining: 0, resetAt: 0 }
}
