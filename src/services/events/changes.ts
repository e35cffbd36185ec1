// The change-bus topics: internal notes that tell every process to refresh what it holds (IMAP
// sessions, caches, the queue worker). Not events: they are never shown to users, carry ids
// and a `what` hint only, and may be coalesced or lost when a process is down (a session that
// missed one re-reads from the store). Events (types.ts) are the durable, user-facing record.

export const CHANGE_TOPICS = [
  /** A mailbox's stored mail changed: data { mailbox_id, what, folder_id? }. */
  'mail.changed',
  /** A mailbox's settings, folders or password changed: data { mailbox_id, what }. */
  'mailbox.changed',
  /** An alias changed: data { alias_id, what }. */
  'alias.changed',
  /** A domain changed: data { domain_id, what }. */
  'domain.changed',
  /** Outbound work became due (a send, a reschedule): data { email_id, what }. */
  'queue.changed',
] as const

export type ChangeTopic = (typeof CHANGE_TOPICS)[number]

import type { Kysely, Transaction } from 'kysely'
import type { ChangeBus } from '../../store/change-bus.ts'
import type { Database } from '../../store/schema.ts'

/** Publishes a change note in the caller's transaction (delivered to other processes on commit). */
export async function notifyChange(
  bus: ChangeBus,
  tx: Kysely<Database> | Transaction<Database>,
  topic: ChangeTopic,
  orgId: string | null,
  data: Record<string, unknown>,
): Promise<void> {
  await bus.publish(tx, { topic, org_id: orgId, data })
}
