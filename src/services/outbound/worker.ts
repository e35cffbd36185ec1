// The queue worker: claims due messages (leases shared by every process), runs one delivery
// attempt for each, and records what happened: recipient states, retries on the backoff
// schedule, bounces, suppressions, the delay notice, expiry, holds over the org cap, events
// and the trace; holds over a sender's warm-up ramp (services/warmup); test mail's simulated
// outcomes (test-mode.ts) instead of a delivery. main.ts starts one per process with the
// `workers` role. For mail clients' messages it also marks the delivery status notifications
// owed (dsn-policy.ts) with each outcome, and has notices.ts queue them after the attempt and
// on every poll.
// Invariants:
// - A message is worked on by one worker at a time (its lease); a crashed worker's lease
//   expires and the message is retried. Recipients in a final state are never sent again.
// - Every state change commits with its event in one transaction.
// - Shutdown stops claiming, lets attempts in flight finish, then closes idle connections.

import { randomBytes } from 'node:crypto'
import { claimOutbound } from '../../store/outbound-lease.ts'
import type { OutboundMessage, OutboundRecipient } from '../../store/schema.ts'
import type { Tx } from '../messages/context.ts'
import { releaseWarmup, reserveWarmup, WARMUP_HOLD_PREFIX, type WarmupGrant } from '../warmup/reserve.ts'
import type { OutboundContext } from './context.ts'
import { deliverGroup, type Outcome } from './deliver.ts'
import { successNotice, wantsNotice } from './dsn-policy.ts'
import { addTrace, emailEvent, type TraceRow } from './events.ts'
import { reserveCapacity } from './limits.ts'
import { sendNotices } from './notices.ts'
import { type ConnectionPool, createConnectionPool } from './pool.ts'
import { suppress } from './suppressions.ts'
import { type SimulatedOutcome, simulateDelivery } from './test-mode.ts'

export interface QueueWorker {
  start(): void
  /** Looks for due work now (after an enqueue in this process). */
  wake(): void
  stop(): Promise<void>
  /** Runs claims until nothing is due (tests, `postern queue run`). */
  drain(): Promise<void>
  readonly pool: ConnectionPool
}

const PENDING = ['queued', 'deferred'] as const
const isPending = (s: string) => (PENDING as readonly string[]).includes(s)

/** Hard bounces suppress the address: the mailbox does not exist or is disabled. */
export function isHardBounce(code: number, enhanced: string | null): boolean {
  if (code < 500) return false
  if (!enhanced) return code === 550 || code === 551 || code === 553
  return /^5\.1\.\d+$/.test(enhanced) || enhanced === '5.2.1'
}

export function createQueueWorker(
  ctx: OutboundContext,
  opts: {
    /** Runs at most once per poll interval before claiming (system mail drains through it). */
    periodic?: () => Promise<unknown>
  } = {},
): QueueWorker {
  let lastPeriodic = 0
  const periodic = async () => {
    const now = ctx.clock.now()
    if (now - lastPeriodic < ctx.settings.pollMs) return
    lastPeriodic = now
    try {
      // Notices marked by another process's attempt, a report at a return path, or a crash.
      await sendNotices(ctx)
      await opts.periodic?.()
    } catch (err) {
      ctx.log.error({ err }, 'periodic queue work failed')
    }
  }
  const owner = `w_${randomBytes(6).toString('hex')}`
  const pool = createConnectionPool({
    transport: ctx.transport,
    concurrency: ctx.settings.concurrency,
    perDestination: ctx.settings.perDestination,
  })
  const maxInFlight = Math.max(4, ctx.settings.concurrency * 2)
  const inFlight = new Set<Promise<void>>()
  let running = false
  let loop: Promise<void> | null = null
  let wakeUp: (() => void) | null = null
  let woken = false

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (woken) {
        woken = false
        return resolve()
      }
      const t = setTimeout(() => {
        wakeUp = null
        resolve()
      }, ms)
      wakeUp = () => {
        clearTimeout(t)
        wakeUp = null
        resolve()
      }
    })

  async function claimSome(): Promise<number> {
    const room = maxInFlight - inFlight.size
    if (room <= 0) return 0
    const claimed = await claimOutbound(ctx.store, {
      owner,
      now: ctx.clock.now(),
      leaseMs: ctx.settings.leaseMs,
      limit: room,
    })
    for (const c of claimed) {
      const p: Promise<void> = attempt(ctx, pool, c.id, owner)
        .catch((err) => ctx.log.error({ err, email_id: c.id }, 'delivery attempt failed'))
        .finally(() => {
          inFlight.delete(p)
          wakeUp?.()
        })
      inFlight.add(p)
    }
    return claimed.length
  }

  async function run(): Promise<void> {
    while (running) {
      let n = 0
      await periodic()
      try {
        n = await claimSome()
      } catch (err) {
        ctx.log.error({ err }, 'claiming queued mail failed')
      }
      if (!running) break
      if (n === 0 || inFlight.size >= maxInFlight) await sleep(ctx.settings.pollMs)
    }
  }

  return {
    pool,
    start() {
      if (running) return
      running = true
      loop = run()
    },
    wake() {
      if (wakeUp) wakeUp()
      else woken = true
    },
    async stop() {
      running = false
      wakeUp?.()
      await loop
      await Promise.allSettled([...inFlight])
      await pool.close()
    },
    async drain() {
      lastPeriodic = 0
      await periodic()
      for (;;) {
        const n = await claimSome()
        if (n === 0 && inFlight.size === 0) return
        if (inFlight.size) await Promise.race(inFlight)
      }
    },
  }
}

/** One attempt at one claimed message. */
async function attempt(ctx: OutboundContext, pool: ConnectionPool, id: string, owner: string): Promise<void> {
  const db = ctx.store.db
  const m = await db.selectFrom('outbound_messages').selectAll().where('id', '=', id).executeTakeFirst()
  if (!m || m.lease_owner !== owner) return
  const now = ctx.clock.now()
  const recipients = (
    await db.selectFrom('outbound_recipients').selectAll().where('outbound_id', '=', id).execute()
  ).filter((r) => isPending(r.state))
  const test = Number(m.test) === 1
  let due = recipients.filter((r) => r.next_attempt_at === null || Number(r.next_attempt_at) <= now)
  if (recipients.length === 0) return finish(ctx, m, now)
  if (m.expires_at !== null && now >= Number(m.expires_at)) return expire(ctx, m, recipients, now)
  if (due.length === 0) {
    await reschedule(ctx, m, recipients) // a delay notice it marks goes with the next sweep
    return
  }

  // The caps count recipients once, at their first attempt; retries do not count again. Mail
  // Postern itself sends (codes, resets, invitations) is not the tenant's sending: an org at
  // its cap must still get its password reset. Test mail counts against nothing.
  // The sender's warm-up ramp goes first and may grant only some recipients today: the rest
  // wait for the next day (the message is held once those granted are done).
  let warm: WarmupGrant | null = null
  const warmable = !test && (m.origin === 'api' || m.origin === 'batch' || m.origin === 'submission')
  const fresh = due.filter((r) => Number(r.attempts) === 0)
  if (warmable && fresh.length) {
    warm = await reserveWarmup(ctx, m.org_id, m.from_header, fresh.length)
    if (warm.granted === 0)
      return hold(
        ctx,
        m,
        warm.until ?? now + 1000,
        warm.ramp
          ? `${WARMUP_HOLD_PREFIX} of ${warm.ramp.cap} recipients for this sender (day ${warm.ramp.day} of ${warm.ramp.days})`
          : 'the warm-up counter is busy; trying again in a moment',
        warm.ramp ? { warmup_id: warm.ramp.id, day: warm.ramp.day, cap: warm.ramp.cap } : {},
      )
    if (warm.granted < fresh.length) {
      const later = new Set(fresh.slice(warm.granted).map((r) => r.id))
      due = due.filter((r) => !later.has(r.id))
    }
  }
  const firstTries = m.origin === 'system' || test ? 0 : due.filter((r) => Number(r.attempts) === 0).length
  const cap = firstTries
    ? await reserveCapacity(ctx, m.org_id, firstTries)
    : { ok: true as const, window: null, cap: 0, resetAt: 0 }
  if (!cap.ok) {
    if (warm?.ramp) await releaseWarmup(ctx, warm.ramp.id, warm.ramp.dayIndex, warm.granted)
    return hold(ctx, m, cap.resetAt, `over the organisation's ${cap.window}ly cap of ${cap.cap} recipients`)
  }

  const attemptNo = Number(m.attempts) + 1
  // The attempt's start (status, attempt count, the `sent` event) is written with the first
  // outcome, in the same transaction: one commit fewer per message.
  const started = { done: false }
  const begin = async (tx: Tx, at: number) => {
    if (started.done) return
    started.done = true
    await tx
      .updateTable('outbound_messages')
      .set({
        status: 'sending',
        attempts: attemptNo,
        held_reason: null,
        first_attempt_at: m.first_attempt_at ?? at,
        updated_at: at,
      })
      .where('id', '=', id)
      .execute()
    if (m.first_attempt_at === null)
      await emailEvent(tx, ctx.bus, at, { org_id: m.org_id, outbound_id: id, type: 'sent', test: m.test })
  }

  // Test mail is never sent: its outcomes are simulated (test-mode.ts) and its bytes not read.
  const raw = test ? Buffer.alloc(0) : await ctx.blobs.get(m.org_id, m.blob_sha256 as string)
  const deliver: typeof deliverGroup = test
    ? async (_ctx, _pool, msg, _domain, list) => simulateDelivery(list, msg.attempt, ctx.clock.now())
    : deliverGroup
  const byDomain = new Map<string, OutboundRecipient[]>()
  for (const r of due) {
    const list = byDomain.get(r.domain) ?? []
    list.push(r)
    byDomain.set(r.domain, list)
  }
  const notDue = recipients.filter((r) => !due.includes(r))
  const after: OutboundMessage = { ...m, attempts: attemptNo, first_attempt_at: m.first_attempt_at ?? now }
  // With one destination and every pending recipient due (the common case), the message is
  // finished or rescheduled in the transaction that records the outcomes.
  const single = byDomain.size === 1 && notDue.length === 0
  const stillPending: OutboundRecipient[] = [...notDue]
  let marked = 0
  await Promise.all(
    [...byDomain].map(async ([domain, list]) => {
      const result = await deliver(
        ctx,
        pool,
        {
          id,
          org_id: m.org_id,
          mailbox_id: m.mailbox_id,
          mail_from: m.mail_from,
          attempt: attemptNo,
          envid: m.dsn_envid,
          ret: m.dsn_ret === 'FULL' || m.dsn_ret === 'HDRS' ? m.dsn_ret : null,
          require_tls: Number(m.require_tls) === 1,
        },
        domain,
        list,
        raw,
      ).catch((err): { outcomes: Outcome[]; trace: TraceRow[] } => ({
        outcomes: list.map((recipient) => ({
          recipient,
          code: 451,
          enhanced: '4.3.0',
          message: `internal error: ${(err as Error).message}`,
          mta: null,
        })),
        trace: [
          {
            kind: 'error',
            attempt: attemptNo,
            at: ctx.clock.now(),
            detail: { message: (err as Error).message },
          },
        ],
      }))
      const n = await record(
        ctx,
        m,
        attemptNo,
        result.outcomes,
        result.trace,
        begin,
        async (tx, deferred, at) => {
          stillPending.push(...deferred)
          if (!single) return 0
          if (deferred.length === 0) await finishTx(tx, ctx, after, at)
          else return rescheduleTx(tx, ctx, after, deferred, at)
          return 0
        },
      )
      marked += n
    }),
  )
  if (!single) {
    if (stillPending.length === 0) await finish(ctx, after, ctx.clock.now())
    else marked += await reschedule(ctx, after, stillPending)
  }
  // Notices this attempt owes go out now; the periodic sweep is the safety net.
  if (marked) await sendNotices(ctx, { outboundId: id })
}

/** The wait before attempt n+1 after n failed attempts. */
export function retryDelay(retryMs: readonly number[], attempts: number): number {
  return retryMs[Math.min(Math.max(attempts - 1, 0), retryMs.length - 1)] as number
}

async function record(
  ctx: OutboundContext,
  m: OutboundMessage,
  attemptNo: number,
  outcomes: (Outcome | SimulatedOutcome)[],
  trace: TraceRow[],
  first: (tx: Tx, now: number) => Promise<void>,
  then: (tx: Tx, deferred: OutboundRecipient[], now: number) => Promise<number>,
): Promise<number> {
  const now = ctx.clock.now()
  return ctx.committer.run(async (tx) => {
    await first(tx, now)
    let marked = 0
    const deferred: OutboundRecipient[] = []
    await addTrace(tx, m.org_id, m.id, trace)
    for (const o of outcomes) {
      const r = o.recipient
      const attempts = Number(r.attempts) + 1
      const base = {
        attempts,
        last_code: o.code,
        last_enhanced_code: o.enhanced,
        last_response: o.message.slice(0, 1000),
        remote_mta: o.mta,
        updated_at: now,
      }
      if (o.code >= 200 && o.code < 300) {
        const notice = m.dsn_to ? successNotice(r.dsn_notify, o.mta === 'local', o.nextHopDsn ?? false) : null
        if (notice) marked++
        await setRecipient(tx, r.id, {
          ...base,
          state: 'delivered',
          delivered_at: now,
          next_attempt_at: null,
          ...(notice ? { dsn_pending: notice } : {}),
        })
        await emailEvent(tx, ctx.bus, now, {
          org_id: m.org_id,
          outbound_id: m.id,
          type: 'delivered',
          recipient: r.address,
          data: { code: o.code, response: o.message.slice(0, 300), mta: o.mta },
          test: m.test,
        })
        if ('complaint' in o && o.complaint)
          await emailEvent(tx, ctx.bus, now, {
            org_id: m.org_id,
            outbound_id: m.id,
            type: 'complained',
            recipient: r.address,
            data: { feedback_type: 'abuse', user_agent: null, reporting_mta: o.mta, source: 'simulated' },
            test: m.test,
          })
      } else if (o.code >= 500) {
        const notice = m.dsn_to !== null && wantsNotice(r.dsn_notify, 'failure')
        if (notice) marked++
        await bounceRecipient(ctx, tx, m, r, {
          ...base,
          code: o.code,
          enhanced: o.enhanced,
          message: o.message,
          now,
          notice,
          test: Number(m.test) === 1,
        })
      } else {
        const next = now + retryDelay(ctx.settings.retryMs, attempts)
        await setRecipient(tx, r.id, { ...base, state: 'deferred', next_attempt_at: next })
        deferred.push({ ...r, ...base, state: 'deferred', next_attempt_at: next })
        await emailEvent(tx, ctx.bus, now, {
          org_id: m.org_id,
          outbound_id: m.id,
          type: 'deferred',
          recipient: r.address,
          data: {
            code: o.code,
            enhanced: o.enhanced,
            response: o.message.slice(0, 300),
            mta: o.mta,
            attempt: attemptNo,
            next_attempt_at: new Date(next).toISOString(),
          },
          test: m.test,
        })
      }
    }
    return marked + (await then(tx, deferred, now))
  })
}

async function setRecipient(tx: Tx, id: string, set: Partial<OutboundRecipient>): Promise<void> {
  await tx.updateTable('outbound_recipients').set(set).where('id', '=', id).execute()
}

/** Marks a recipient bounced (5xx now, or a DSN later), suppressing the address on a hard bounce. */
export async function bounceRecipient(
  ctx: Pick<OutboundContext, 'bus'>,
  tx: Tx,
  m: Pick<OutboundMessage, 'id' | 'org_id'>,
  r: Pick<OutboundRecipient, 'id' | 'address'>,
  o: {
    code: number
    enhanced: string | null
    message: string
    now: number
    attempts?: number
    remote_mta?: string | null
    source?: 'smtp' | 'dsn'
    /** Owe the sender a failure notice (notices.ts mails it). */
    notice?: boolean
    /** Test mail (test-mode.ts): the event says so, and the address is not suppressed. */
    test?: boolean
  },
): Promise<void> {
  const set: Partial<OutboundRecipient> = {
    state: 'bounced',
    next_attempt_at: null,
    last_code: o.code,
    last_enhanced_code: o.enhanced,
    last_response: o.message.slice(0, 1000),
    updated_at: o.now,
  }
  if (o.notice) set.dsn_pending = 'failed'
  if (o.attempts !== undefined) set.attempts = o.attempts
  if (o.remote_mta !== undefined) set.remote_mta = o.remote_mta
  await setRecipient(tx, r.id, set)
  const hard = isHardBounce(o.code, o.enhanced)
  await emailEvent(tx, ctx.bus, o.now, {
    org_id: m.org_id,
    outbound_id: m.id,
    type: 'bounced',
    recipient: r.address,
    data: {
      code: o.code,
      enhanced: o.enhanced,
      response: o.message.slice(0, 300),
      hard,
      source: o.source ?? 'smtp',
    },
    test: o.test === true,
  })
  if (hard && !o.test)
    await suppress(tx, o.now, {
      org_id: m.org_id,
      address: r.address,
      reason: 'hard_bounce',
      detail: `${o.code} ${o.enhanced ?? ''} ${o.message}`.slice(0, 500),
      outbound_id: m.id,
    })
}

/** No pending recipient left: the message is sent (something was delivered) or failed. */
async function finish(ctx: OutboundContext, m: OutboundMessage, now: number): Promise<void> {
  await ctx.committer.run((tx) => finishTx(tx, ctx, m, now))
}

async function finishTx(tx: Tx, ctx: OutboundContext, m: OutboundMessage, now: number): Promise<void> {
  {
    const states = await tx
      .selectFrom('outbound_recipients')
      .select('state')
      .where('outbound_id', '=', m.id)
      .execute()
    const status = states.some((s) => s.state === 'delivered' || s.state === 'sent') ? 'sent' : 'failed'
    await tx
      .updateTable('outbound_messages')
      .set({
        status,
        finished_at: now,
        next_attempt_at: null,
        lease_owner: null,
        lease_until: null,
        updated_at: now,
      })
      .where('id', '=', m.id)
      .execute()
    if (status === 'failed' && !states.some((s) => s.state === 'cancelled'))
      await emailEvent(tx, ctx.bus, now, {
        org_id: m.org_id,
        outbound_id: m.id,
        type: 'failed',
        data: { reason: 'no recipient accepted the message' },
        test: m.test,
      })
    if (m.system_mail_id)
      await tx
        .updateTable('system_mail')
        .set({ status, sent_at: now })
        .where('id', '=', m.system_mail_id)
        .execute()
  }
}

/** Retry later: next attempt at the earliest pending recipient's time; the delay notice once. */
async function reschedule(
  ctx: OutboundContext,
  m: OutboundMessage,
  pending: OutboundRecipient[],
): Promise<number> {
  const now = ctx.clock.now()
  return ctx.committer.run((tx) => rescheduleTx(tx, ctx, m, pending, now))
}

async function rescheduleTx(
  tx: Tx,
  ctx: OutboundContext,
  m: OutboundMessage,
  pending: OutboundRecipient[],
  now: number,
): Promise<number> {
  let marked = 0
  const next = Math.min(...pending.map((r) => Number(r.next_attempt_at ?? now)))
  const since = Number(m.scheduled_at ?? m.created_at)
  const late = now - since >= ctx.settings.delayNoticeMs
  const notice = !m.delay_notified && late
  // A mail client's recipients that asked for it get one delay notice each (RFC 3461 4.1).
  if (late && m.dsn_to)
    for (const r of pending)
      if (!Number(r.dsn_delay_sent) && wantsNotice(r.dsn_notify, 'delay')) {
        await setRecipient(tx, r.id, { dsn_pending: 'delayed', dsn_delay_sent: 1 })
        marked++
      }
  await tx
    .updateTable('outbound_messages')
    .set({
      status: 'queued',
      next_attempt_at: next,
      lease_owner: null,
      lease_until: null,
      updated_at: now,
      ...(notice ? { delay_notified: 1 } : {}),
    })
    .where('id', '=', m.id)
    .where('status', '!=', 'cancelled')
    .execute()
  if (notice)
    await emailEvent(tx, ctx.bus, now, {
      org_id: m.org_id,
      outbound_id: m.id,
      type: 'delayed',
      data: {
        pending: pending.map((r) => ({ recipient: r.address, last_response: r.last_response })),
        next_attempt_at: new Date(next).toISOString(),
      },
      test: m.test,
    })
  return marked
}

async function hold(
  ctx: OutboundContext,
  m: OutboundMessage,
  until: number,
  reason: string,
  data: Record<string, unknown> = {},
): Promise<void> {
  const now = ctx.clock.now()
  await ctx.committer.run(async (tx) => {
    await tx
      .updateTable('outbound_messages')
      .set({
        status: 'held',
        held_reason: reason,
        next_attempt_at: until,
        lease_owner: null,
        lease_until: null,
        updated_at: now,
      })
      .where('id', '=', m.id)
      .execute()
    if (m.status !== 'held')
      await emailEvent(tx, ctx.bus, now, {
        org_id: m.org_id,
        outbound_id: m.id,
        type: 'held',
        data: { reason, until: new Date(until).toISOString(), ...data },
      })
  })
}

/** Past its lifetime: every pending recipient fails (an undeliverable bounce, never retried). */
async function expire(
  ctx: OutboundContext,
  m: OutboundMessage,
  pending: OutboundRecipient[],
  now: number,
): Promise<void> {
  await ctx.committer.run(async (tx) => {
    for (const r of pending) {
      await setRecipient(tx, r.id, {
        state: 'failed',
        next_attempt_at: null,
        ...(m.dsn_to && wantsNotice(r.dsn_notify, 'failure') ? { dsn_pending: 'failed' } : {}),
        last_response:
          `gave up after ${Math.round(ctx.settings.lifetimeMs / 3_600_000)} hours: ${r.last_response ?? 'never delivered'}`.slice(
            0,
            1000,
          ),
        updated_at: now,
      })
      await emailEvent(tx, ctx.bus, now, {
        org_id: m.org_id,
        outbound_id: m.id,
        type: 'failed',
        recipient: r.address,
        data: { reason: 'expired', last_response: r.last_response },
        test: m.test,
      })
    }
  })
  await finish(ctx, m, now)
  if (m.dsn_to) await sendNotices(ctx, { outboundId: m.id })
}
