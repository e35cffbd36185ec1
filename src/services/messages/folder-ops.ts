// The IMAP bookkeeping of stored mail, in one place: every change to which folders hold a
// message, or to its flags and keywords, goes through these functions inside the caller's
// transaction. Invariants (RFC 9051 UIDs, RFC 7162 CONDSTORE/QRESYNC):
// - A membership gets the folder's next UID (folders.uidnext, strictly increasing, never reused).
// - Every change takes the mailbox's next MODSEQ (mailboxes.modseq + 1, atomic) and raises the
//   folder's highestmodseq; flag changes bump the MODSEQ of every membership of the message.
// - Removing a membership leaves an expunge tombstone (folder, uid, modseq) for VANISHED.

import { type Kysely, sql, type Transaction } from 'kysely'
import type { Database } from '../../store/schema.ts'

type Tx = Kysely<Database> | Transaction<Database>

/** System flags (RFC 9051 2.3.2) are stored as keywords with their backslash. */
export const SEEN = '\\Seen'
export const FLAGGED = '\\Flagged'
export const ANSWERED = '\\Answered'
export const DRAFT = '\\Draft'
export const DELETED = '\\Deleted'

/** Takes the mailbox's next MODSEQ. */
export async function nextModseq(tx: Tx, mailboxId: string, addBytes = 0): Promise<number> {
  const r = await tx
    .updateTable('mailboxes')
    .set(
      addBytes
        ? { modseq: sql`modseq + 1`, used_bytes: sql`used_bytes + ${addBytes}` }
        : { modseq: sql`modseq + 1` },
    )
    .where('id', '=', mailboxId)
    .returning('modseq')
    .executeTakeFirstOrThrow()
  return Number(r.modseq)
}

async function raiseHighest(tx: Tx, folderId: string, modseq: number, now: number) {
  await tx
    .updateTable('folders')
    .set({
      highestmodseq: sql`CASE WHEN highestmodseq < ${modseq} THEN ${modseq} ELSE highestmodseq END`,
      updated_at: now,
    })
    .where('id', '=', folderId)
    .execute()
}

/**
 * Adds a message to a folder with a new UID; returns the existing membership when already there.
 * `fresh`: the message was just made in this transaction, so it cannot be there yet (one read
 * fewer). `addBytes`: also adds to the mailbox's used bytes in the same statement (delivery).
 */
export async function addToFolder(
  tx: Tx,
  folder: { id: string; mailbox_id: string; org_id: string },
  messageId: string,
  now: number,
  opts: { fresh?: boolean; addBytes?: number } = {},
): Promise<{ uid: number; modseq: number; added: boolean }> {
  if (!opts.fresh) {
    const existing = await tx
      .selectFrom('folder_messages')
      .select(['uid', 'modseq'])
      .where('folder_id', '=', folder.id)
      .where('message_id', '=', messageId)
      .executeTakeFirst()
    if (existing) return { uid: Number(existing.uid), modseq: Number(existing.modseq), added: false }
  }
  // Lock order for every change: the mailbox row (its MODSEQ counter) first, then the folder row.
  const modseq = await nextModseq(tx, folder.mailbox_id, opts.addBytes ?? 0)
  // The UID and the folder's HIGHESTMODSEQ in one statement (both land at commit).
  const next = await takeUid(tx, modseq, now)
    .where('id', '=', folder.id)
    .returning('uidnext')
    .executeTakeFirstOrThrow()
  const uid = Number(next.uidnext) - 1
  await tx
    .insertInto('folder_messages')
    .values({
      folder_id: folder.id,
      message_id: messageId,
      org_id: folder.org_id,
      uid,
      modseq,
      created_at: now,
    })
    .execute()
  return { uid, modseq, added: true }
}

/** The folder update that takes the next UID and raises HIGHESTMODSEQ to `modseq`; the caller names the folder. */
function takeUid(tx: Tx, modseq: number, now: number) {
  return tx.updateTable('folders').set({
    uidnext: sql`uidnext + 1`,
    highestmodseq: sql`CASE WHEN highestmodseq < ${modseq} THEN ${modseq} ELSE highestmodseq END`,
    updated_at: now,
  })
}

/**
 * Adds a message made in this transaction to a mailbox's folder named by role or id, with
 * the mailbox's used bytes raised by `addBytes`: the folder is found by the same statement
 * that takes its UID (delivery; three statements in all). Throws when there is no such folder.
 */
export async function addNewToFolder(
  tx: Tx,
  where: { mailbox_id: string; role: NonNullable<Database['folders']['role']>; folder_id?: string },
  messageId: string,
  now: number,
  addBytes = 0,
): Promise<{ folder_id: string; uid: number; modseq: number }> {
  // Lock order as in addToFolder: the mailbox row first, then the folder row.
  const modseq = await nextModseq(tx, where.mailbox_id, addBytes)
  const q = takeUid(tx, modseq, now).where('mailbox_id', '=', where.mailbox_id)
  const next = await (where.folder_id
    ? q.where('id', '=', where.folder_id)
    : q.where('role', '=', where.role)
  )
    .returning(['id', 'uidnext', 'org_id'])
    .executeTakeFirst()
  if (!next) throw new Error(`mailbox ${where.mailbox_id} has no ${where.folder_id ?? where.role} folder`)
  const uid = Number(next.uidnext) - 1
  await tx
    .insertInto('folder_messages')
    .values({ folder_id: next.id, message_id: messageId, org_id: next.org_id, uid, modseq, created_at: now })
    .execute()
  return { folder_id: next.id, uid, modseq }
}

/** Removes a message from a folder, leaving a tombstone; false when it was not there. */
export async function removeFromFolder(
  tx: Tx,
  folder: { id: string; mailbox_id: string; org_id: string },
  messageId: string,
  now: number,
): Promise<boolean> {
  const row = await tx
    .selectFrom('folder_messages')
    .select('uid')
    .where('folder_id', '=', folder.id)
    .where('message_id', '=', messageId)
    .executeTakeFirst()
  if (!row) return false
  const modseq = await nextModseq(tx, folder.mailbox_id)
  await tx
    .deleteFrom('folder_messages')
    .where('folder_id', '=', folder.id)
    .where('message_id', '=', messageId)
    .execute()
  await tx
    .insertInto('expunged')
    .values({ folder_id: folder.id, uid: Number(row.uid), modseq, org_id: folder.org_id, created_at: now })
    .onConflict((oc) => oc.columns(['folder_id', 'uid']).doNothing())
    .execute()
  await raiseHighest(tx, folder.id, modseq, now)
  return true
}

/** Adds and removes keywords of a message; bumps the MODSEQ of each of its memberships when anything changed. */
export async function setKeywords(
  tx: Tx,
  message: { id: string; mailbox_id: string; org_id: string },
  change: { add?: readonly string[]; remove?: readonly string[] },
  now: number,
): Promise<boolean> {
  const current = new Set(
    (
      await tx.selectFrom('message_keywords').select('keyword').where('message_id', '=', message.id).execute()
    ).map((r) => r.keyword),
  )
  const add = [...new Set(change.add ?? [])].filter((k) => !current.has(k))
  const remove = [...new Set(change.remove ?? [])].filter((k) => current.has(k))
  if (add.length === 0 && remove.length === 0) return false
  // The mailbox row first (the lock order of addToFolder), so two STOREs or a STORE and an
  // APPEND on one mailbox queue instead of deadlocking on PostgreSQL.
  const modseq = await nextModseq(tx, message.mailbox_id)
  // Another session may change the same message at once (read committed on PostgreSQL): the
  // insert skips keywords it added meanwhile and only rows really written or deleted count.
  let changed = 0
  if (add.length)
    changed += (
      await tx
        .insertInto('message_keywords')
        .values(add.map((keyword) => ({ message_id: message.id, keyword, org_id: message.org_id })))
        .onConflict((oc) => oc.columns(['message_id', 'keyword']).doNothing())
        .returning('keyword')
        .execute()
    ).length
  if (remove.length)
    changed += Number(
      (
        await tx
          .deleteFrom('message_keywords')
          .where('message_id', '=', message.id)
          .where('keyword', 'in', remove)
          .executeTakeFirst()
      ).numDeletedRows,
    )
  if (changed === 0) return false
  const memberships = await tx
    .selectFrom('folder_messages')
    .select('folder_id')
    .where('message_id', '=', message.id)
    .execute()
  await tx.updateTable('folder_messages').set({ modseq }).where('message_id', '=', message.id).execute()
  for (const m of memberships) await raiseHighest(tx, m.folder_id, modseq, now)
  return true
}
