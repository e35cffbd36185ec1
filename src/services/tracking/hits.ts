// What happens when a tracking URL is fetched: an open (pixel), a click (redirect) or a
// one-click unsubscribe (RFC 8058). Each checks the token first (tokens.ts); a token that
// does not verify, or names no tracked message, is "not found" and writes nothing.
// Invariants:
// - A click redirects only to the URL stored for the token's message and link index.
// - Opens and clicks are events (email.opened, email.clicked) flagged bot when bots.ts says
//   so; HEAD requests (scanners checking a link) write no event, and neither do hits past
//   rate_limits.tracking_message for one message (a replayed URL cannot flood the events).
// - Unsubscribing suppresses the message's recipient in the message's org (reason
//   unsubscribe) and raises email.unsubscribed once, in one transaction; GET never does it.

import type { Store } from '../../store/db.ts'
import type { Clock } from '../../time/clock.ts'
import { writeEvent } from '../events/write.ts'
import { suppress } from '../outbound/suppressions.ts'
import type { RateLimiter } from '../ratelimit/limiter.ts'
import type { RateLimitRule } from '../ratelimit/rules.ts'
import { botReason } from './bots.ts'
import type { TrackingSettings } from './context.ts'
import { readToken, type TokenKind } from './tokens.ts'

export interface HitContext {
  store: Store
  clock: Clock
  tracking: TrackingSettings
  limiter: RateLimiter
  /** Opens and clicks recorded per message (rate_limits.tracking_message). */
  rule: RateLimitRule
}

export interface HitRequest {
  method: string
  userAgent: string | null
  ip: string | null
}

interface Tracked {
  key: string
  org_id: string
  outbound_id: string
  recipient: string | null
  track_opens: number
  track_clicks: number
  list_unsubscribe: number
  created_at: number
}

async function trackedFor(ctx: HitContext, kind: TokenKind, token: string) {
  const t = readToken(ctx.tracking.secret, kind, token)
  if (!t) return null
  const row = (await ctx.store.db
    .selectFrom('tracked_messages')
    .select([
      'key',
      'org_id',
      'outbound_id',
      'recipient',
      'track_opens',
      'track_clicks',
      'list_unsubscribe',
      'created_at',
    ])
    .where('key', '=', t.key)
    .executeTakeFirst()) as Tracked | undefined
  return row ? { row, index: t.index } : null
}

/** When the message reached its recipient (the first delivery), else when it was queued. */
async function deliveredAt(ctx: HitContext, t: Tracked): Promise<number> {
  let q = ctx.store.db
    .selectFrom('outbound_recipients')
    .select('delivered_at')
    .where('outbound_id', '=', t.outbound_id)
    .where('org_id', '=', t.org_id)
    .where('delivered_at', 'is not', null)
  if (t.recipient) q = q.where('address', '=', t.recipient)
  const rows = await q.execute()
  const times = rows.map((r) => Number(r.delivered_at))
  return times.length ? Math.min(...times) : Number(t.created_at)
}

async function hit(
  ctx: HitContext,
  t: Tracked,
  kind: 'open' | 'click',
  req: HitRequest,
  extra: Record<string, unknown>,
) {
  if (req.method === 'HEAD') return
  if (!(await ctx.limiter.hit(ctx.rule, t.key)).allowed) return
  const now = ctx.clock.now()
  const reason = botReason({
    kind,
    method: req.method,
    userAgent: req.userAgent,
    ip: req.ip,
    sinceDeliveryMs: now - (await deliveredAt(ctx, t)),
    prefetchWindowMs: ctx.tracking.prefetchWindowMs,
  })
  await ctx.store.db.transaction().execute(async (tx) => {
    await tx
      .updateTable('tracked_messages')
      .set((eb) => (kind === 'open' ? { opens: eb('opens', '+', 1) } : { clicks: eb('clicks', '+', 1) }))
      .where('key', '=', t.key)
      .execute()
    await writeEvent(tx, now, {
      org_id: t.org_id,
      type: kind === 'open' ? 'email.opened' : 'email.clicked',
      actor: 'tracking',
      ip: req.ip,
      subject_id: t.outbound_id,
      payload: {
        email_id: t.outbound_id,
        recipient: t.recipient,
        ...extra,
        user_agent: req.userAgent?.slice(0, 500) ?? null,
        ip: req.ip,
        bot: reason !== null,
        ...(reason ? { bot_reason: reason } : {}),
      },
    })
  })
}

/** Records an open; false when the token is not a valid open token of a tracked message. */
export async function recordOpen(ctx: HitContext, token: string, req: HitRequest): Promise<boolean> {
  const t = await trackedFor(ctx, 'open', token)
  if (!t || t.row.track_opens !== 1) return false
  await hit(ctx, t.row, 'open', req, {})
  return true
}

/** Records a click and returns the URL that was in the mail; null for a bad token. */
export async function followClick(ctx: HitContext, token: string, req: HitRequest): Promise<string | null> {
  const t = await trackedFor(ctx, 'click', token)
  if (!t || t.row.track_clicks !== 1 || t.index === null) return null
  const link = await ctx.store.db
    .selectFrom('tracked_links')
    .select('url')
    .where('message_key', '=', t.row.key)
    .where('idx', '=', t.index)
    .executeTakeFirst()
  if (!link) return null
  await hit(ctx, t.row, 'click', req, { url: link.url, link_index: t.index })
  return link.url
}

/** Who an unsubscribe token would unsubscribe (for the confirmation page); null for a bad token. */
export async function unsubscribeTarget(ctx: HitContext, token: string): Promise<{ address: string } | null> {
  const t = await trackedFor(ctx, 'unsubscribe', token)
  if (!t || t.row.list_unsubscribe !== 1 || !t.row.recipient) return null
  return { address: t.row.recipient }
}

/** Suppresses the recipient (one-click POST); null for a bad token. */
export async function unsubscribe(
  ctx: HitContext,
  token: string,
  req: HitRequest,
): Promise<{ address: string; already: boolean } | null> {
  const t = await trackedFor(ctx, 'unsubscribe', token)
  if (!t || t.row.list_unsubscribe !== 1 || !t.row.recipient) return null
  const { row } = t
  const address = row.recipient as string
  const now = ctx.clock.now()
  const added = await ctx.store.db.transaction().execute(async (tx) => {
    const fresh = await suppress(tx, now, {
      org_id: row.org_id,
      address,
      reason: 'unsubscribe',
      detail: 'one-click List-Unsubscribe (RFC 8058)',
      outbound_id: row.outbound_id,
    })
    if (fresh)
      await writeEvent(tx, now, {
        org_id: row.org_id,
        type: 'email.unsubscribed',
        actor: 'tracking',
        ip: req.ip,
        subject_id: row.outbound_id,
        payload: {
          email_id: row.outbound_id,
          recipient: address,
          user_agent: req.userAgent?.slice(0, 500) ?? null,
          ip: req.ip,
        },
      })
    return fresh
  })
  return { address, already: !added }
}
