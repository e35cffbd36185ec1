// The one writer of events: a row in the events table (type, org, actor, where from, subject,
// payload, time) written in the caller's transaction, so an event exists exactly when the
// change it describes committed. Webhooks, the events API and the live feed read these rows.
// Invariants: the type is one of EVENT_TYPES (types.ts); payloads never carry a secret
// (passwords, tokens, keys, message bodies); ids are monotonic, so one transaction's events
// list in the order they were written.

import type { Kysely, Transaction } from 'kysely'
import type { ChangeBus } from '../../store/change-bus.ts'
import { newId } from '../../store/ids.ts'
import type { Database } from '../../store/schema.ts'
import type { ChangeTopic } from './changes.ts'
import type { EventType } from './types.ts'

type Tx = Kysely<Database> | Transaction<Database>

export interface EventEntry {
  org_id: string | null
  type: EventType
  /** A user id, key id, 'system', 'queue', 'smtp' ... */
  actor: string | null
  ip: string | null
  /** The id of what the event is about (types.ts says which kind per type). */
  subject_id?: string | null
  payload?: Record<string, unknown>
}

export async function writeEvent(tx: Tx, now: number, e: EventEntry): Promise<void> {
  await tx
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

/** An event plus the change-bus note that makes other processes refresh, in one transaction. */
export async function recordChange(
  bus: ChangeBus,
  tx: Tx,
  now: number,
  e: EventEntry & { topic: ChangeTopic; data: Record<string, unknown> },
): Promise<void> {
  const { topic, data, ...entry } = e
  await writeEvent(tx, now, entry)
  await bus.publish(tx, { topic, org_id: e.org_id, data })
}
