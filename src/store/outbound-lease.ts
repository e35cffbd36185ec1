// Leases on outbound queue items: how several workers (threads of one process or several
// processes) share one queue without delivering a message twice at once. The only
// dialect-specific part of the queue lives here.
// Invariants:
// - A message is claimable when it is queued, scheduled, held, or sending under an expired
//   lease (a crashed worker), and due (`next_attempt_at <= now`), its
//   org's queue is not paused, and nobody holds an unexpired lease on it.
// - A claim sets lease_owner and lease_until in the same statement that selects the rows:
//   PostgreSQL with `FOR UPDATE SKIP LOCKED` (concurrent claimers skip each other's rows),
//   SQLite with one `UPDATE ... WHERE id IN (SELECT ...) RETURNING` (one writer at a time).
// - A crashed worker's lease simply expires; the message is then claimed again. Recipients
//   whose 250 was recorded are final and are never sent again.

import { sql } from 'kysely'
import type { Store } from './db.ts'

export interface ClaimedMessage {
  id: string
  org_id: string
}

export async function claimOutbound(
  store: Store,
  o: { owner: string; now: number; leaseMs: number; limit: number },
): Promise<ClaimedMessage[]> {
  const until = o.now + o.leaseMs
  // 'sending' with an expired lease: its worker died mid-attempt; the attempt is taken over.
  const due = sql`status IN ('queued', 'held', 'scheduled', 'sending') AND next_attempt_at <= ${o.now}
    AND (lease_until IS NULL OR lease_until < ${o.now})
    AND org_id NOT IN (SELECT org_id FROM queue_pauses)`
  if (store.dialect === 'postgres') {
    const r = await sql<ClaimedMessage>`
      UPDATE outbound_messages SET lease_owner = ${o.owner}, lease_until = ${until}
      WHERE id IN (
        SELECT id FROM outbound_messages WHERE ${due}
        ORDER BY next_attempt_at LIMIT ${o.limit} FOR UPDATE SKIP LOCKED)
      RETURNING id, org_id`.execute(store.db)
    return r.rows
  }
  const r = await sql<ClaimedMessage>`
    UPDATE outbound_messages SET lease_owner = ${o.owner}, lease_until = ${until}
    WHERE id IN (
      SELECT id FROM outbound_messages WHERE ${due}
      ORDER BY next_attempt_at LIMIT ${o.limit})
    RETURNING id, org_id`.execute(store.db)
  return r.rows
}

/** The earliest time something becomes due (for the worker's sleep), or null. */
export async function nextDueAt(store: Store): Promise<number | null> {
  const r = await store.db
    .selectFrom('outbound_messages')
    .select((eb) => eb.fn.min('next_attempt_at').as('at'))
    .where('status', 'in', ['queued', 'held', 'scheduled', 'sending'])
    .executeTakeFirst()
  return r?.at == null ? null : Number(r.at)
}
