// The delivery log of an endpoint and the manual actions on it (scope admin): list deliveries
// with their attempts, queue a test message, redeliver one delivery.
// Invariants: scoped by org and endpoint (another org's ids are not found); a redelivery reuses
// the delivery's row, so the receiver sees the same webhook-id and body (it can deduplicate).

import type { WebhookAttempt, WebhookDelivery } from '../../store/schema.ts'
import type { Principal } from '../accounts/principal.ts'
import { ServiceError } from '../errors.ts'
import { decodeCursor, olderThan, type Page, pageOf, pageSize } from '../messages/cursor.ts'
import type { WebhooksContext } from './context.ts'
import { findWebhook } from './endpoints.ts'
import { queueDeliveries } from './outbox.ts'

export interface AttemptView {
  attempt: number
  at: string
  status_code: number | null
  latency_ms: number
  response_excerpt: string
  error: string | null
}

export interface DeliveryView {
  id: string
  webhook_id: string
  event_id: string | null
  event_type: string
  status: WebhookDelivery['status']
  attempts: number
  next_attempt_at: string | null
  last_status_code: number | null
  last_error: string | null
  delivered_at: string | null
  created_at: string
  log: AttemptView[]
}

const iso = (t: number | null) => (t === null ? null : new Date(Number(t)).toISOString())

function deliveryView(d: WebhookDelivery, attempts: WebhookAttempt[]): DeliveryView {
  return {
    id: d.id,
    webhook_id: d.webhook_id,
    event_id: d.event_id,
    event_type: d.event_type,
    status: d.status,
    attempts: Number(d.attempts),
    next_attempt_at: d.status === 'pending' ? iso(d.next_attempt_at) : null,
    last_status_code: d.last_status_code === null ? null : Number(d.last_status_code),
    last_error: d.last_error,
    delivered_at: iso(d.delivered_at),
    created_at: iso(d.created_at) as string,
    log: attempts
      .filter((a) => a.delivery_id === d.id)
      .sort((a, b) => Number(a.attempt) - Number(b.attempt))
      .map((a) => ({
        attempt: Number(a.attempt),
        at: iso(a.at) as string,
        status_code: a.status_code === null ? null : Number(a.status_code),
        latency_ms: Number(a.latency_ms),
        response_excerpt: a.response_excerpt,
        error: a.error,
      })),
  }
}

async function withLog(
  ctx: WebhooksContext,
  orgId: string,
  rows: WebhookDelivery[],
): Promise<DeliveryView[]> {
  if (rows.length === 0) return []
  const attempts = await ctx.store.db
    .selectFrom('webhook_attempts')
    .selectAll()
    .where('org_id', '=', orgId)
    .where(
      'delivery_id',
      'in',
      rows.map((r) => r.id),
    )
    .execute()
  return rows.map((r) => deliveryView(r, attempts))
}

export async function listDeliveries(
  ctx: WebhooksContext,
  p: Principal,
  webhookId: string,
  q: { status?: WebhookDelivery['status']; limit?: number; cursor?: string },
): Promise<Page<DeliveryView>> {
  await findWebhook(ctx, p, webhookId)
  const after = decodeCursor(q.cursor)
  const limit = pageSize(q.limit)
  let query = ctx.store.db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('org_id', '=', p.org_id)
    .where('webhook_id', '=', webhookId)
  if (q.status) query = query.where('status', '=', q.status)
  if (after) query = query.where(olderThan(after, 'created_at', 'id'))
  const rows = await query
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute()
  const { page, next_cursor } = pageOf(rows, limit)
  return {
    data: await withLog(ctx, p.org_id, page),
    next_cursor,
  }
}

async function findDelivery(ctx: WebhooksContext, p: Principal, webhookId: string, id: string) {
  const d = await ctx.store.db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('org_id', '=', p.org_id)
    .where('webhook_id', '=', webhookId)
    .where('id', '=', id)
    .executeTakeFirst()
  if (!d) throw new ServiceError('not_found', 'DELIVERY_NOT_FOUND', `No delivery ${id} of this webhook.`)
  return d
}

/** Queues a `webhook.test` message to an active endpoint; the sender delivers it like any other. */
export async function sendTest(ctx: WebhooksContext, p: Principal, webhookId: string): Promise<DeliveryView> {
  const hook = await findWebhook(ctx, p, webhookId)
  if (hook.status !== 'active')
    throw new ServiceError(
      'conflict',
      hook.status === 'pending' ? 'WEBHOOK_NOT_VERIFIED' : 'WEBHOOK_DISABLED',
      hook.status === 'pending'
        ? 'The webhook has not answered its verification challenge yet; verify it first.'
        : 'The webhook is disabled; enable it first (PATCH enabled).',
    )
  const now = ctx.clock.now()
  const body = JSON.stringify({
    type: 'webhook.test',
    timestamp: new Date(now).toISOString(),
    data: { webhook_id: webhookId, message: 'A test delivery from Postern.' },
  })
  const [id] = await queueDeliveries(ctx.store.db, now, {
    event_id: null,
    org_id: p.org_id,
    type: 'webhook.test',
    webhook_ids: [webhookId],
    body,
  })
  const [view] = await withLog(ctx, p.org_id, [await findDelivery(ctx, p, webhookId, id as string)])
  return view as DeliveryView
}

/** Queues a delivery again now (whatever its state); the same webhook-id and body are sent. */
export async function redeliver(
  ctx: WebhooksContext,
  p: Principal,
  webhookId: string,
  id: string,
): Promise<DeliveryView> {
  await findWebhook(ctx, p, webhookId)
  await findDelivery(ctx, p, webhookId, id)
  const now = ctx.clock.now()
  await ctx.store.db
    .updateTable('webhook_deliveries')
    .set({
      status: 'pending',
      // An attempt in flight keeps its lease; the row is claimed again once that ends. A
      // redelivery always gets at least one attempt, even past its retry window.
      next_attempt_at: now,
      updated_at: now,
    })
    .where('id', '=', id)
    .where('org_id', '=', p.org_id)
    .execute()
  const [view] = await withLog(ctx, p.org_id, [await findDelivery(ctx, p, webhookId, id)])
  return view as DeliveryView
}
