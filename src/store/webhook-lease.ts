// Leases on webhook deliveries: how the senders of several processes share one outbox without
// attempting a delivery twice at once. The only dialect-specific part of webhook sending.
// Invariants:
// - A delivery is claimable when it is pending, due (`next_attempt_at <= now`), nobody holds an
//   unexpired lease on it, and its endpoint is active and its org not deleted (pending and
//   disabled endpoints get nothing; their rows wait).
// - A claim sets lease_owner and lease_until in the statement that selects the rows:
//   PostgreSQL with `FOR UPDATE SKIP LOCKED` (concurrent claimers skip each other's rows),
//   SQLite with one `UPDATE ... WHERE id IN (SELECT ...) RETURNING` (one writer at a time).
// - A crashed sender's lease expires and the delivery is claimed again (at-least-once); a
//   result is recorded only by the lease's owner (see services/webhooks/sender.ts).

import { sql } from 'kysely'
import type { Store } from './db.ts'

import type { WebhookDelivery } from './schema.ts'

/** A claimed delivery: its row as the claim left it (leased to the claimer). */
export type ClaimedDelivery = WebhookDelivery

export async function claimDeliveries(
  store: Store,
  o: { owner: string; now: number; leaseMs: number; limit: number },
): Promise<ClaimedDelivery[]> {
  const until = o.now + o.leaseMs
  const due = sql`status = 'pending' AND next_attempt_at <= ${o.now}
    AND (lease_until IS NULL OR lease_until < ${o.now})
    AND webhook_id IN (SELECT w.id FROM webhooks w JOIN orgs o ON o.id = w.org_id
      WHERE w.status = 'active' AND o.deleted_at IS NULL)`
  const lock = store.dialect === 'postgres' ? sql`FOR UPDATE SKIP LOCKED` : sql``
  const r = await sql<ClaimedDelivery>`
    UPDATE webhook_deliveries SET lease_owner = ${o.owner}, lease_until = ${until}
    WHERE id IN (
      SELECT id FROM webhook_deliveries WHERE ${due}
      ORDER BY next_attempt_at LIMIT ${o.limit} ${lock})
    RETURNING *`.execute(store.db)
  return r.rows
}
