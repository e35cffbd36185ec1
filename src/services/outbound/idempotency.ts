// Idempotency keys of the send API (the `Idempotency-Key` header): the same key with the same
// body within 24 hours returns the first response without sending again; the same key with a
// different body is a conflict. A key is reserved before the send runs, so two concurrent
// requests with one key cannot both send.
// Invariants: keys are per org; the stored response is exactly what the first caller got;
// a reservation whose request failed is removed so the caller may retry with the same key.

import { createHash } from 'node:crypto'
import { ServiceError } from '../errors.ts'
import type { OutboundContext } from './context.ts'

const TTL_MS = 24 * 3_600_000
/** A reservation older than this whose request never finished (a crash) may be taken over. */
const ABANDONED_MS = 5 * 60_000
const IN_PROGRESS = 0

const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, val) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val).sort(([a], [b]) => (a < b ? -1 : 1)))
      : val,
  )

export interface StoredResponse<T> {
  status: number
  body: T
  replayed: boolean
}

export async function withIdempotency<T>(
  ctx: Pick<OutboundContext, 'store' | 'clock'>,
  orgId: string,
  key: string | undefined,
  request: unknown,
  run: () => Promise<{ status: number; body: T }>,
): Promise<StoredResponse<T>> {
  if (key === undefined) return { ...(await run()), replayed: false }
  if (key.length < 1 || key.length > 256 || /[^\x21-\x7e]/.test(key))
    throw new ServiceError(
      'invalid',
      'INVALID_IDEMPOTENCY_KEY',
      'Idempotency-Key must be 1 to 256 printable ASCII characters without spaces',
    )
  const db = ctx.store.db
  const now = ctx.clock.now()
  const hash = createHash('sha256').update(canonical(request)).digest('hex')
  const existing = await db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('org_id', '=', orgId)
    .where('key', '=', key)
    .executeTakeFirst()
  if (existing) {
    const age = now - Number(existing.created_at)
    const stale = age >= TTL_MS || (Number(existing.status) === IN_PROGRESS && age >= ABANDONED_MS)
    if (!stale) {
      if (existing.request_hash !== hash)
        throw new ServiceError(
          'conflict',
          'IDEMPOTENCY_KEY_REUSED',
          'This Idempotency-Key was used with a different request body in the last 24 hours; use a new key for a new request.',
        )
      if (Number(existing.status) === IN_PROGRESS)
        throw new ServiceError(
          'conflict',
          'IDEMPOTENCY_IN_PROGRESS',
          'A request with this Idempotency-Key is still being processed; retry in a moment.',
          { retryAfter: 1 },
        )
      return { status: Number(existing.status), body: JSON.parse(existing.response) as T, replayed: true }
    }
    await db
      .deleteFrom('idempotency_keys')
      .where('org_id', '=', orgId)
      .where('key', '=', key)
      .where('created_at', '=', existing.created_at)
      .execute()
  }
  const reserved = await db
    .insertInto('idempotency_keys')
    .values({
      org_id: orgId,
      key,
      request_hash: hash,
      status: IN_PROGRESS,
      response: 'null',
      created_at: now,
    })
    .onConflict((oc) => oc.columns(['org_id', 'key']).doNothing())
    .executeTakeFirst()
  if (Number(reserved.numInsertedOrUpdatedRows ?? 0) === 0)
    // Someone reserved it between our read and insert: answer as for an in-progress key.
    throw new ServiceError(
      'conflict',
      'IDEMPOTENCY_IN_PROGRESS',
      'A request with this Idempotency-Key is still being processed; retry in a moment.',
      { retryAfter: 1 },
    )
  let result: { status: number; body: T }
  try {
    result = await run()
  } catch (err) {
    await db.deleteFrom('idempotency_keys').where('org_id', '=', orgId).where('key', '=', key).execute()
    throw err
  }
  await db
    .updateTable('idempotency_keys')
    .set({ status: result.status, response: JSON.stringify(result.body) })
    .where('org_id', '=', orgId)
    .where('key', '=', key)
    .execute()
  return { ...result, replayed: false }
}

/** Deletes keys older than 24 hours (a job). */
export async function pruneIdempotencyKeys(ctx: Pick<OutboundContext, 'store' | 'clock'>): Promise<number> {
  const r = await ctx.store.db
    .deleteFrom('idempotency_keys')
    .where('created_at', '<', ctx.clock.now() - TTL_MS)
    .executeTakeFirst()
  return Number(r.numDeletedRows)
}
