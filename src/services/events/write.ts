// The one writer of events: a row in the events table (type, org, actor, where from, subject,
// payload, time) written in the caller's transaction, so an event exists exactly when the
// change it describes committed. Webhooks, the events API and the live feed read these rows.
// Each event also queues its webhook deliveries in the same transaction (webhooks/outbox.ts).
// Invariants: the type is one of EVENT_TYPES (types.ts); payloads never carry a secret
// (passwords, tokens, keys, message bodies); ids are monotonic, so one transaction's events
// list in the order they were written.

import type { Kysely, Transaction } from 'kysely'
import type { ChangeBus } from '../../store/change-bus.ts'
import { newId } from '../../store/ids.ts'
import type { Database } from '../../store/schema.ts'
import { endpointsFor, queueDeliveries } from '../webhooks/outbox.ts'
import type { ChangeTopic } from './changes.ts'
import { EVENT_TYPES, type EventType } from './types.ts'

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
  /** The mailbox it is about (default: payload.mailbox_id), so mailbox-scoped keys see it. */
  mailbox_id?: string | null
}

export async function writeEvent(tx: Tx, now: number, e: EventEntry): Promise<void> {
  const id = newId('evt', now)
  const payload = e.payload ?? {}
  const row = {
    id,
    org_id: e.org_id,
    type: e.type,
    actor: e.actor,
    ip: e.ip,
    subject_id: e.subject_id ?? null,
    payload: JSON.stringify(payload),
    mailbox_id:
      e.mailbox_id ??
      (typeof payload.mailbox_id === 'string'
        ? payload.mailbox_id
        : EVENT_TYPES[e.type].subject === 'mailbox'
          ? (e.subject_id ?? null)
          : null),
    recipient: typeof payload.recipient === 'string' ? payload.recipient.toLowerCase() : null,
    created_at: now,
  }
  // The org's webhook endpoints that take this type get their outbox rows in the same
  // transaction as the event (webhooks/outbox.ts): none are lost, none are made for nothing.
  if (e.org_id && tx.isTransaction) {
    // Inside a transaction the insert itself says whether the org has any active endpoint,
    // so an org without webhooks (the common case) costs one statement, not two.
    const org = e.org_id
    const r = await tx
      .insertInto('events')
      .values(row)
      .returning((eb) =>
        eb
          .selectFrom('webhooks')
          .select((w) => w.fn.countAll<number>().as('n'))
          .where('org_id', '=', org)
          .where('status', '=', 'active')
          .as('active_hooks'),
      )
      .executeTakeFirstOrThrow()
    if (Number(r.active_hooks) > 0) await queueFor(tx, now, id, org, e.type)
    return
  }
  const hooks = e.org_id ? await endpointsFor(tx, e.org_id, e.type) : []
  const write = async (t: Tx) => {
    await t.insertInto('events').values(row).execute()
    if (hooks.length > 0)
      await queueDeliveries(t, now, {
        event_id: id,
        org_id: e.org_id as string,
        type: e.type,
        webhook_ids: hooks,
      })
  }
  if (hooks.length > 0 && !tx.isTransaction) await tx.transaction().execute(write)
  else await write(tx)
}

async function queueFor(tx: Tx, now: number, eventId: string, orgId: string, type: EventType): Promise<void> {
  const hooks = await endpointsFor(tx, orgId, type)
  if (hooks.length > 0)
    await queueDeliveries(tx, now, { event_id: eventId, org_id: orgId, type, webhook_ids: hooks })
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
