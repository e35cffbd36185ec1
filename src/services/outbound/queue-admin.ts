// Managing the queue: cancel before sending, reschedule (a scheduled send, or a deferred
// message's next attempt), pause and resume an org's deliveries, and the queue's counts.
// Invariants:
// - Nothing a worker holds a live lease on is changed: cancel and reschedule answer 409
//   while a delivery attempt is running, so a message is never cancelled half-sent.
// - Every change is an event.

import { sql } from 'kysely'
import type { OutboundMessage } from '../../store/schema.ts'
import type { Principal } from '../accounts/principal.ts'
import { ServiceError } from '../errors.ts'
import { writeEvent } from '../events/write.ts'
import type { OutboundContext } from './context.ts'
import { emailEvent } from './events.ts'
import { type EmailSummary, type EmailView, findEmail, getEmail, listEmails } from './views.ts'

const OPEN = ['scheduled', 'queued', 'held'] as const

const busy = (id: string) =>
  new ServiceError(
    'conflict',
    'EMAIL_BEING_DELIVERED',
    `Email ${id} is being delivered right now; try again in a few seconds.`,
    { retryAfter: 5 },
  )
const closed = (m: OutboundMessage) =>
  new ServiceError(
    'conflict',
    'EMAIL_NOT_PENDING',
    `Email ${m.id} is ${m.status}; only scheduled, queued or held mail can be changed.`,
  )

export async function cancelEmail(
  ctx: Pick<OutboundContext, 'store' | 'clock' | 'bus' | 'committer'>,
  p: Principal,
  id: string,
): Promise<EmailView> {
  const m = await findEmail(ctx.store.db, p, id)
  const now = ctx.clock.now()
  if (!(OPEN as readonly string[]).includes(m.status)) throw m.status === 'sending' ? busy(id) : closed(m)
  const done = await ctx.committer.run(async (tx) => {
    const r = await tx
      .updateTable('outbound_messages')
      .set({ status: 'cancelled', next_attempt_at: null, finished_at: now, updated_at: now })
      .where('id', '=', m.id)
      .where('org_id', '=', p.org_id)
      .where('status', 'in', [...OPEN])
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .executeTakeFirst()
    if (Number(r.numUpdatedRows) === 0) return false
    const pending = await tx
      .updateTable('outbound_recipients')
      .set({ state: 'cancelled', next_attempt_at: null, updated_at: now })
      .where('outbound_id', '=', m.id)
      .where('state', 'in', ['queued', 'deferred'])
      .returning('address')
      .execute()
    await emailEvent(tx, ctx.bus, now, {
      org_id: m.org_id,
      outbound_id: m.id,
      type: 'cancelled',
      actor: p.key_id ?? p.user_id ?? 'unknown',
      test: m.test,
      data: { recipients: pending.map((x) => x.address) },
    })
    return true
  })
  if (!done) throw busy(id)
  return getEmail(ctx, p, id)
}

/** Moves a scheduled send, or the next attempt of queued, deferred or held mail (`at` null: now). */
export async function rescheduleEmail(
  ctx: Pick<OutboundContext, 'store' | 'clock' | 'bus' | 'committer' | 'wake'>,
  p: Principal,
  id: string,
  at: string | null,
): Promise<EmailView> {
  const m = await findEmail(ctx.store.db, p, id)
  const now = ctx.clock.now()
  let when = now
  if (at !== null) {
    when = Date.parse(at)
    if (!Number.isFinite(when) || !/\d{4}-\d{2}-\d{2}T/.test(at))
      throw new ServiceError('invalid', 'INVALID_DATE', 'scheduled_at must be an ISO 8601 date and time', {
        details: [{ field: 'scheduled_at', message: 'not an ISO 8601 date and time' }],
      })
    if (when > now + 30 * 86_400_000)
      throw new ServiceError('invalid', 'INVALID_DATE', 'scheduled_at may be at most 30 days ahead', {
        details: [{ field: 'scheduled_at', message: 'more than 30 days ahead' }],
      })
    when = Math.max(when, now)
  }
  if (!(OPEN as readonly string[]).includes(m.status)) throw m.status === 'sending' ? busy(id) : closed(m)
  const done = await ctx.committer.run(async (tx) => {
    const scheduled = m.status === 'scheduled' && when > now
    const r = await tx
      .updateTable('outbound_messages')
      .set({
        next_attempt_at: when,
        updated_at: now,
        ...(m.status === 'scheduled'
          ? { scheduled_at: scheduled ? when : null, status: scheduled ? 'scheduled' : 'queued' }
          : {}),
        ...(m.status === 'held' ? { status: 'queued', held_reason: null } : {}),
        // A later start also moves the end of the retry lifetime for mail not yet tried.
        ...(m.first_attempt_at === null
          ? { expires_at: when + (Number(m.expires_at) - Number(m.scheduled_at ?? m.created_at)) }
          : {}),
      })
      .where('id', '=', m.id)
      .where('org_id', '=', p.org_id)
      .where('status', 'in', [...OPEN])
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .executeTakeFirst()
    if (Number(r.numUpdatedRows) === 0) return false
    await tx
      .updateTable('outbound_recipients')
      .set({ next_attempt_at: when, updated_at: now })
      .where('outbound_id', '=', m.id)
      .where('state', 'in', ['queued', 'deferred'])
      .execute()
    await emailEvent(tx, ctx.bus, now, {
      org_id: m.org_id,
      outbound_id: m.id,
      type: 'rescheduled',
      actor: p.key_id ?? p.user_id ?? 'unknown',
      test: m.test,
      data: { at: new Date(when).toISOString() },
    })
    return true
  })
  if (!done) throw busy(id)
  ctx.wake?.()
  return getEmail(ctx, p, id)
}

export interface QueueStatus {
  paused: boolean
  paused_at: string | null
  messages: Record<string, number>
  recipients: Record<string, number>
  oldest_pending_at: string | null
  next_attempt_at: string | null
}

export async function queueStatus(ctx: Pick<OutboundContext, 'store'>, p: Principal): Promise<QueueStatus> {
  const db = ctx.store.db
  const pause = await db
    .selectFrom('queue_pauses')
    .selectAll()
    .where('org_id', '=', p.org_id)
    .executeTakeFirst()
  const msgs = await db
    .selectFrom('outbound_messages')
    .select(['status', sql<number>`count(*)`.as('n')])
    .where('org_id', '=', p.org_id)
    .where('status', 'in', ['scheduled', 'queued', 'held', 'sending'])
    .groupBy('status')
    .execute()
  const rcpts = await db
    .selectFrom('outbound_recipients')
    .innerJoin('outbound_messages as m', 'm.id', 'outbound_recipients.outbound_id')
    .select(['outbound_recipients.state', sql<number>`count(*)`.as('n')])
    .where('outbound_recipients.org_id', '=', p.org_id)
    .where('m.status', 'in', ['scheduled', 'queued', 'held', 'sending'])
    .groupBy('outbound_recipients.state')
    .execute()
  const times = await db
    .selectFrom('outbound_messages')
    .select((eb) => [eb.fn.min('created_at').as('oldest'), eb.fn.min('next_attempt_at').as('next')])
    .where('org_id', '=', p.org_id)
    .where('status', 'in', ['queued', 'held', 'sending'])
    .executeTakeFirst()
  const iso = (v: unknown) => (v === null || v === undefined ? null : new Date(Number(v)).toISOString())
  return {
    paused: Boolean(pause),
    paused_at: iso(pause?.created_at),
    messages: Object.fromEntries(msgs.map((r) => [r.status, Number(r.n)])),
    recipients: Object.fromEntries(rcpts.map((r) => [r.state, Number(r.n)])),
    oldest_pending_at: iso(times?.oldest),
    next_attempt_at: iso(times?.next),
  }
}

export async function listQueue(
  ctx: Pick<OutboundContext, 'store'>,
  p: Principal,
  q: { status?: OutboundMessage['status']; limit?: number; cursor?: string },
): Promise<{ data: EmailSummary[]; next_cursor: string | null }> {
  return listEmails(ctx, p, {
    status: q.status ? [q.status] : ['scheduled', 'queued', 'held', 'sending'],
    ...(q.limit !== undefined ? { limit: q.limit } : {}),
    ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
  })
}

export async function setQueuePaused(
  ctx: Pick<OutboundContext, 'store' | 'clock' | 'bus' | 'wake'>,
  p: Principal,
  paused: boolean,
): Promise<QueueStatus> {
  const now = ctx.clock.now()
  await ctx.store.db.transaction().execute(async (tx) => {
    if (paused)
      await tx
        .insertInto('queue_pauses')
        .values({ org_id: p.org_id, paused_by: p.user_id ?? p.key_id, created_at: now })
        .onConflict((oc) => oc.column('org_id').doNothing())
        .execute()
    else await tx.deleteFrom('queue_pauses').where('org_id', '=', p.org_id).execute()
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: paused ? 'queue.paused' : 'queue.resumed',
      actor: p.user_id ?? p.key_id,
      ip: null,
    })
  })
  if (!paused) ctx.wake?.()
  return queueStatus(ctx, p)
}
