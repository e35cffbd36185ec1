// What the mail-reading services need: the store, the clock, the change bus and the blob store
// (raw messages live there under namespace = org id, address = messages.blob_sha256). Protocols
// build one context and pass it to every function of this folder.
// Invariant (SQLite): inside a transaction, every query goes through `tx`, never `store.db`
// (one connection, one query at a time: a query on `db` inside a transaction would wait forever).

import type { Kysely, Transaction } from 'kysely'
import type { BlobStore } from '../../store/blobs/blob-store.ts'
import type { ChangeBus } from '../../store/change-bus.ts'
import type { Store } from '../../store/db.ts'
import type { Database } from '../../store/schema.ts'
import type { Clock } from '../../time/clock.ts'
import { notifyChange } from '../events/changes.ts'

/** Re-exported for the protocols, which may not import store/ themselves. */
export type { BlobStore }

export interface MessagesContext {
  store: Store
  clock: Clock
  bus: ChangeBus
  blobs: BlobStore
}

export type Tx = Kysely<Database> | Transaction<Database>

/** Tells other processes (IMAP IDLE, live feeds) that a mailbox's mail changed; a hint, not data. */
export async function mailChanged(
  ctx: Pick<MessagesContext, 'bus'>,
  tx: Tx,
  orgId: string,
  mailboxId: string,
  what: string,
): Promise<void> {
  await notifyChange(ctx.bus, tx, 'mail.changed', orgId, { mailbox_id: mailboxId, what })
}
