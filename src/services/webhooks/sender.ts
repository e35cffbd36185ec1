// The webhook sender: claims due deliveries from the outbox (leases shared by every process,
// store/webhook-lease.ts), POSTs each signed message (Standard Webhooks 1.0) through the connect
// guard, and records the attempt: the delivery log row, success, or the next retry on an
// exponential backoff (webhooks.retry_base_ms doubling, at most six hours apart) until the
// retry window (webhooks.retry_hours) closes. An endpoint whose attempts have all failed for
// webhooks.disable_after_hours (or webhooks.disable_after_failures in a row) is disabled, with
// a `webhook.disabled` event and a mail to the org's owners and admins. Runs in the workers
// role of every process.
// Invariants:
// - A delivery is attempted by one sender at a time (its lease); a result is recorded only
//   while the sender still owns the lease, in one transaction with the endpoint's streak, so
//   two processes never both record one delivery. A sender killed mid-attempt loses nothing:
//   the lease expires and the delivery is attempted again (at-least-once; the receiver can
//   deduplicate on webhook-id, which is the delivery's id and never changes).
// - The body is built at the first attempt (payload.ts) and stored with its result, so every
//   retry sends the same bytes (a sender killed before recording its first attempt leaves the
//   body to be built again by the next).
// - Results that finish together are recorded in one transaction (one commit for many).
// - 2xx is success; anything else (3xx included: redirects are never followed) is a failure.

import { randomBytes } from 'node:crypto'
import { HttpsGetError } from '../../net/https-get.ts'
import { newId } from '../../store/ids.ts'
import type { Webhook, WebhookDelivery } from '../../store/schema.ts'
import { claimDeliveries } from '../../store/webhook-lease.ts'
import { writeEvent } from '../events/write.ts'
import type { Tx } from '../messages/context.ts'
import { queueSystemMail } from '../system-mail/system-mail.ts'
import type { WebhooksContext } from './context.ts'
import { buildBody, type EventRow } from './payload.ts'
import { signedHeaders } from './signing.ts'
import { liveSecrets } from './verification.ts'

export interface WebhookSender {
  start(): void
  wake(): void
  stop(): Promise<void>
  /** Attempts every due delivery until none is due (tests, benchmarks). */
  drain(): Promise<void>
}

const MAX_DELAY_MS = 6 * 3_600_000
const EXCERPT_BYTES = 1024

/** The wait after the n-th failed attempt (n >= 1). */
export function retryDelay(baseMs: number, n: number): number {
  return Math.min(baseMs * 2 ** Math.min(n - 1, 30), MAX_DELAY_MS)
}

interface Outcome {
  ok: boolean
  status: number | null
  latencyMs: number
  excerpt: string
  error: string | null
}

export function createWebhookSender(ctx: WebhooksContext): WebhookSender {
  const owner = `wh_${randomBytes(6).toString('hex')}`
  const record = createRecorder(ctx)
  const bodies = createBodyCache()
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
    const room = ctx.settings.concurrency - inFlight.size
    if (room <= 0) return 0
    const claimed = await claimDeliveries(ctx.store, {
      owner,
      now: ctx.clock.now(),
      leaseMs: ctx.settings.leaseMs,
      limit: room,
    })
    // The endpoints of the batch, read once.
    const ids = [...new Set(claimed.map((c) => c.webhook_id))]
    const hooks = ids.length
      ? await ctx.store.db.selectFrom('webhooks').selectAll().where('id', 'in', ids).execute()
      : []
    const byId = new Map(hooks.map((h) => [h.id, h]))
    // The events of the deliveries whose body is still to be built, read in one query.
    const eventIds = [
      ...new Set(claimed.filter((c) => c.body === null && c.event_id).map((c) => c.event_id as string)),
    ]
    const events = eventIds.length
      ? await ctx.store.db
          .selectFrom('events')
          .select(['id', 'org_id', 'type', 'subject_id', 'mailbox_id', 'payload', 'created_at'])
          .where('id', 'in', eventIds)
          .execute()
      : []
    const eventById = new Map(events.map((e) => [e.id, { ...e, created_at: Number(e.created_at) }]))
    for (const c of claimed) {
      const event = c.event_id ? eventById.get(c.event_id) : undefined
      const p: Promise<void> = attempt(ctx, c, byId.get(c.webhook_id), event, owner, record, bodies)
        .catch((err) => ctx.log.error({ err, delivery_id: c.id }, 'webhook attempt failed'))
        .finally(() => {
          inFlight.delete(p)
          // Claim again once half the slots are free: one claim (a write) for many deliveries.
          if (inFlight.size <= ctx.settings.concurrency / 2) wakeUp?.()
        })
      inFlight.add(p)
    }
    return claimed.length
  }

  async function run(): Promise<void> {
    while (running) {
      let n = 0
      try {
        n = await claimSome()
      } catch (err) {
        ctx.log.error({ err }, 'claiming webhook deliveries failed')
      }
      if (!running) break
      if (n === 0 || inFlight.size > ctx.settings.concurrency / 2) await sleep(ctx.settings.pollMs)
    }
  }

  return {
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
    },
    async drain() {
      for (;;) {
        const n = await claimSome()
        if (inFlight.size === 0 && n === 0) return
        await Promise.race(inFlight)
      }
    },
  }
}

async function post(ctx: WebhooksContext, hook: Webhook, d: WebhookDelivery, body: string): Promise<Outcome> {
  const now = ctx.clock.now()
  const started = performance.now()
  const took = () => Math.round(performance.now() - started)
  try {
    const res = await ctx.post({
      url: new URL(hook.url),
      headers: signedHeaders(liveSecrets(ctx, hook, now), d.id, Math.floor(now / 1000), body),
      body,
      timeoutMs: ctx.settings.timeoutMs,
      maxBytes: EXCERPT_BYTES,
    })
    const excerpt = excerptOf(res.body)
    const ok = res.status >= 200 && res.status <= 299
    const error = ok
      ? null
      : res.status >= 300 && res.status < 400
        ? `redirect not followed (${res.status}${res.location ? ` to ${res.location.slice(0, 200)}` : ''})`
        : `answered ${res.status}`
    return { ok, status: res.status, latencyMs: took(), excerpt, error }
  } catch (err) {
    const code = err instanceof HttpsGetError ? err.code : 'ERROR'
    return {
      ok: false,
      status: null,
      latencyMs: took(),
      excerpt: '',
      error: `${code}: ${(err as Error).message}`,
    }
  }
}

/** At most EXCERPT_BYTES of a response as text, without NUL (PostgreSQL text refuses it). */
export function excerptOf(body: Buffer): string {
  let text = body.subarray(0, EXCERPT_BYTES).toString('utf8').replaceAll('\u0000', '')
  while (Buffer.byteLength(text) > EXCERPT_BYTES) text = text.slice(0, -1)
  // A character cut at the limit decodes as U+FFFD: drop it.
  return body.length >= EXCERPT_BYTES ? text.replace(/\uFFFD$/, '') : text
}

type BodyCache = (eventId: string, build: () => Promise<string>) => Promise<string>

/**
 * The bodies built lately, by event: an event going to several endpoints is read (and an
 * inbound message parsed) once. Small and per process; a miss only costs a rebuild.
 */
function createBodyCache(size = 256): BodyCache {
  const cache = new Map<string, Promise<string>>()
  return (eventId, build) => {
    const hit = cache.get(eventId)
    if (hit) return hit
    const p = build()
    cache.set(eventId, p)
    p.catch(() => cache.delete(eventId))
    if (cache.size > size) cache.delete(cache.keys().next().value as string)
    return p
  }
}

/** What one attempt leaves to record. */
interface Result {
  d: WebhookDelivery
  owner: string
  o: Outcome
  /** The body, when this attempt built it (stored with the result). */
  body: string | null
  /** No retry: the delivery fails now (its event is gone). */
  final: boolean
}

type Recorder = (r: Result) => Promise<void>

/**
 * Records results in batches: every result that finished while the previous batch was being
 * written goes into the next transaction (one commit, one fsync on SQLite, for all of them).
 */
function createRecorder(ctx: WebhooksContext): Recorder {
  const queue: { r: Result; done: () => void; fail: (e: unknown) => void }[] = []
  let running: Promise<void> | null = null
  const flush = async () => {
    await new Promise((res) => setImmediate(res))
    while (queue.length > 0) {
      const batch = queue.splice(0, 200)
      try {
        await ctx.store.db.transaction().execute((tx) =>
          recordResults(
            ctx,
            tx,
            batch.map((x) => x.r),
          ),
        )
        for (const x of batch) x.done()
      } catch {
        // One bad result must not sink the others: each is written on its own. One that still
        // fails keeps its lease, which expires; the delivery is then attempted again.
        for (const x of batch)
          await ctx.store.db
            .transaction()
            .execute((tx) => recordResults(ctx, tx, [x.r]))
            .then(x.done, x.fail)
      }
    }
    running = null
  }
  return (r) =>
    new Promise<void>((done, fail) => {
      queue.push({ r, done, fail })
      running ??= flush()
    })
}

/** One attempt of a delivery this sender leased (`d` as claimed, `hook` its endpoint, `event` its event). */
async function attempt(
  ctx: WebhooksContext,
  d: WebhookDelivery,
  hook: Webhook | undefined,
  event: EventRow | undefined,
  owner: string,
  record: Recorder,
  bodies: BodyCache,
): Promise<void> {
  const id = d.id
  if (d.status !== 'pending') return
  if (!hook || hook.org_id !== d.org_id || hook.status !== 'active') {
    await release(ctx, id, owner)
    return
  }
  let body = d.body
  let built: string | null = null
  if (body === null) {
    if (!event || event.org_id !== d.org_id) {
      const o = { ok: false, status: null, latencyMs: 0, excerpt: '', error: 'the event no longer exists' }
      await record({ d, owner, o, body: null, final: true })
      return
    }
    body = await bodies(event.id, () => buildBody(ctx, event))
    built = body
  }
  const outcome = await post(ctx, hook, d, body)
  ctx.log.debug(
    { delivery_id: id, webhook_id: hook.id, owner, status: outcome.status, error: outcome.error },
    'webhook attempt',
  )
  await record({ d, owner, o: outcome, body: built, final: false })
}

async function release(ctx: WebhooksContext, id: string, owner: string): Promise<void> {
  await ctx.store.db
    .updateTable('webhook_deliveries')
    .set({ lease_owner: null, lease_until: null })
    .where('id', '=', id)
    .where('lease_owner', '=', owner)
    .execute()
}

/**
 * Writes a batch of results in the recorder's transaction: each delivery only while `owner`
 * still holds its lease; then the log rows in one insert and the endpoints' streaks.
 */
async function recordResults(ctx: WebhooksContext, tx: Tx, results: readonly Result[]): Promise<void> {
  const now = ctx.clock.now()
  const logged: Result[] = []
  for (const r of results) {
    const { d, owner, o, final } = r
    const n = Number(d.attempts) + 1
    const delay = retryDelay(ctx.settings.retryBaseMs, n)
    const giveUp = final || now + delay > Number(d.created_at) + ctx.settings.retryWindowMs
    const u = await tx
      .updateTable('webhook_deliveries')
      .set({
        status: o.ok ? 'succeeded' : giveUp ? 'failed' : 'pending',
        attempts: n,
        next_attempt_at: o.ok || giveUp ? now : now + delay,
        lease_owner: null,
        lease_until: null,
        last_status_code: o.status,
        last_error: o.error,
        delivered_at: o.ok ? now : null,
        updated_at: now,
        ...(r.body !== null ? { body: r.body } : {}),
      })
      .where('id', '=', d.id)
      .where('lease_owner', '=', owner)
      .executeTakeFirst()
    // The lease was lost (expired and taken over): the new owner records its own attempt.
    if (Number(u.numUpdatedRows) > 0) logged.push(r)
  }
  if (logged.length === 0) return
  await tx
    .insertInto('webhook_attempts')
    .values(
      logged.map(({ d, o }) => ({
        id: newId('wat', now),
        org_id: d.org_id,
        delivery_id: d.id,
        attempt: Number(d.attempts) + 1,
        status_code: o.status,
        latency_ms: o.latencyMs,
        response_excerpt: o.excerpt,
        error: o.error,
        at: now,
      })),
    )
    .execute()
  const recovered = [...new Set(logged.filter((r) => r.o.ok).map((r) => r.d.webhook_id))]
  if (recovered.length > 0)
    await tx
      .updateTable('webhooks')
      .set({ failing_since: null, consecutive_failures: 0 })
      .where('id', 'in', recovered)
      .where('consecutive_failures', '>', 0)
      .execute()
  for (const r of logged) if (!r.o.ok && !r.final) await recordFailure(ctx, tx, r.d, now, r.o.error)
}

/** Extends the endpoint's failure streak and disables it when the streak is persistent. */
async function recordFailure(
  ctx: WebhooksContext,
  tx: Tx,
  d: WebhookDelivery,
  now: number,
  error: string | null,
): Promise<void> {
  const hook = await tx
    .updateTable('webhooks')
    .set((eb) => ({
      consecutive_failures: eb('consecutive_failures', '+', 1),
      failing_since: eb.fn.coalesce('failing_since', eb.val(now)),
    }))
    .where('id', '=', d.webhook_id)
    .where('org_id', '=', d.org_id)
    .returningAll()
    .executeTakeFirst()
  if (hook?.status !== 'active') return
  const failures = Number(hook.consecutive_failures)
  const since = Number(hook.failing_since ?? now)
  const byTime = now - since >= ctx.settings.disableAfterMs
  const byCount = ctx.settings.disableAfterFailures > 0 && failures >= ctx.settings.disableAfterFailures
  if (!byTime && !byCount) return
  const reason = byTime
    ? `every attempt failed for ${Math.round((now - since) / 3_600_000)} hours`
    : `${failures} attempts in a row failed`
  await tx
    .updateTable('webhooks')
    .set({ status: 'disabled', disabled_at: now, disabled_reason: reason, updated_at: now })
    .where('id', '=', hook.id)
    .where('status', '=', 'active')
    .execute()
  await writeEvent(tx, now, {
    org_id: hook.org_id,
    type: 'webhook.disabled',
    actor: 'webhooks',
    ip: null,
    subject_id: hook.id,
    payload: { webhook_id: hook.id, url: hook.url, reason, consecutive_failures: failures },
  })
  const admins = await tx
    .selectFrom('users')
    .select('email')
    .where('org_id', '=', hook.org_id)
    .where('role', 'in', ['owner', 'admin'])
    .where('disabled', '=', 0)
    .execute()
  for (const a of admins)
    await queueSystemMail(tx, now, {
      org_id: hook.org_id,
      kind: 'notice',
      to: a.email,
      subject: 'A webhook endpoint was disabled',
      text: [
        `Postern disabled the webhook endpoint ${hook.url} (${hook.id}): ${reason}.`,
        `The last attempt: ${error ?? 'see the delivery log'}.`,
        '',
        'Deliveries still pending are kept. Once the endpoint works again, re-enable it',
        `(PATCH /v1/webhooks/${hook.id} with {"enabled": true}); it answers a new verification`,
        'challenge and then receives what is pending.',
      ].join('\n'),
    })
}
