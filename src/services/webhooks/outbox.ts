// The webhook outbox, fed by the event writer: when an event of an org is written, one
// delivery row per active endpoint of that org whose filter takes the event type is written
// in the same transaction (events/write.ts calls fanOut). So a delivery exists exactly when
// its event committed, and a crash never loses one (at-least-once from here on).
// Invariants:
// - One row per (endpoint, event): webhook_deliveries_once is unique and inserts ignore a
//   duplicate, so no path can queue an event twice for one endpoint.
// - Only `active` endpoints get rows: a pending one (challenge not answered) or a disabled one
//   gets no traffic.
// - The body is not built here (the sender builds it from the event at the first attempt),
//   so an event's transaction stays small.

import type { Kysely, Transaction } from 'kysely'
import { newId } from '../../store/ids.ts'
import type { Database } from '../../store/schema.ts'

type Tx = Kysely<Database> | Transaction<Database>

/** True when an endpoint's filter (types and `<noun>.*` prefixes; empty: all) takes `type`. */
export function filterTakes(filter: readonly string[], type: string): boolean {
  if (filter.length === 0) return true
  return filter.some((f) => f === type || (f.endsWith('.*') && type.startsWith(f.slice(0, -1))))
}

export function parseFilter(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json)
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
  } catch {
    return []
  }
}

/** The active endpoints of an org that take `type`. */
export async function endpointsFor(db: Tx, orgId: string, type: string): Promise<string[]> {
  const rows = await db
    .selectFrom('webhooks')
    .select(['id', 'event_types'])
    .where('org_id', '=', orgId)
    .where('status', '=', 'active')
    .execute()
  return rows.filter((r) => filterTakes(parseFilter(r.event_types), type)).map((r) => r.id)
}

/** Writes the delivery rows of one event for the given endpoints (in the event's transaction). */
export async function queueDeliveries(
  tx: Tx,
  now: number,
  e: { event_id: string | null; org_id: string; type: string; webhook_ids: readonly string[]; body?: string },
): Promise<string[]> {
  if (e.webhook_ids.length === 0) return []
  const rows = e.webhook_ids.map((webhook_id) => ({
    id: newId('wdl', now),
    org_id: e.org_id,
    webhook_id,
    event_id: e.event_id,
    event_type: e.type,
    body: e.body ?? null,
    status: 'pending' as const,
    next_attempt_at: now,
    lease_owner: null,
    lease_until: null,
    last_status_code: null,
    last_error: null,
    delivered_at: null,
    created_at: now,
    updated_at: now,
  }))
  await tx
    .insertInto('webhook_deliveries')
    .values(rows)
    .onConflict((oc) => oc.columns(['webhook_id', 'event_id']).doNothing())
    .execute()
  return rows.map((r) => r.id)
}

/** Deletes finished deliveries (succeeded or failed) last changed before `before`, with their attempts. */
export async function pruneDeliveries(db: Tx, before: number, batch = 5_000): Promise<number> {
  let total = 0
  for (;;) {
    const ids = (
      await db
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('status', '!=', 'pending')
        .where('updated_at', '<', before)
        .limit(batch)
        .execute()
    ).map((r) => r.id)
    if (ids.length === 0) return total
    await db.deleteFrom('webhook_attempts').where('delivery_id', 'in', ids).execute()
    await db.deleteFrom('webhook_deliveries').where('id', 'in', ids).execute()
    total += ids.length
    if (ids.length < batch) return total
  }
}
