// Audit events: security-relevant actions (log-ins, key and role changes, 2FA changes) written
// to the events table with who did it, from where and when. Never carries a secret.

import type { Kysely, Transaction } from 'kysely'
import type { ChangeBus } from '../../store/change-bus.ts'
import { newId } from '../../store/ids.ts'
import type { Database } from '../../store/schema.ts'

export interface AuditEntry {
  org_id: string | null
  type: string
  /** A user id, key id or 'system'. */
  actor: string | null
  ip: string | null
  subject_id?: string | null
  payload?: Record<string, unknown>
}

export async function audit(
  db: Kysely<Database> | Transaction<Database>,
  now: number,
  e: AuditEntry,
): Promise<void> {
  await db
    .insertInto('events')
    .values({
      id: newId('evt', now),
      org_id: e.org_id,
      type: e.type,
      actor: e.actor,
      ip: e.ip,
      subject_id: e.subject_id ?? null,
      payload: JSON.stringify(e.payload ?? {}),
      created_at: now,
    })
    .execute()
}

/** An audited change that other processes hear about too: the event row and the change-bus note, in one transaction. */
export async function recordChange(
  bus: ChangeBus,
  tx: Kysely<Database> | Transaction<Database>,
  now: number,
  e: AuditEntry & { topic: string; data: Record<string, unknown> },
): Promise<void> {
  const { topic, data, ...entry } = e
  await audit(tx, now, entry)
  await bus.publish(tx, { topic, org_id: e.org_id, data })
}
