// Permanent deletion of stored messages, and the daily `trash-purge` job built on it.
// Deleting a message, in the caller's transaction: unindex it (full text), remove every
// membership through folder-ops (tombstones, MODSEQ), drop its keywords, release its blob
// reference (the blob collector deletes the bytes once nothing points at them), delete the
// row, then keep its thread row right (count and times; the thread goes with its last message)
// and lower the mailbox's used_bytes.
// Trash purge: a Trash membership older than TRASH_RETENTION_DAYS ends. A message that is only
// in Trash is deleted as above; one that is also elsewhere (an IMAP client copied it to Trash
// without expunging the original) only leaves Trash.

import { sql } from 'kysely'
import type { DialectName } from '../../store/db.ts'
import { unindexMessage } from '../../store/fulltext.ts'
import type { JobDef } from '../jobs/runner.ts'
import type { MessageRow } from './access.ts'
import type { MessagesContext, Tx } from './context.ts'
import { mailChanged } from './context.ts'
import { removeFromFolder } from './folder-ops.ts'
import { foldersOf } from './moves.ts'

export const TRASH_RETENTION_DAYS = 30
const DAY = 86_400_000

type Deletable = Pick<MessageRow, 'id' | 'org_id' | 'mailbox_id' | 'thread_id' | 'blob_sha256' | 'size'>

export async function deletePermanently(
  tx: Tx,
  ctx: Pick<MessagesContext, 'blobs'> & { dialect: DialectName },
  m: Deletable,
  now: number,
): Promise<void> {
  await unindexMessage(tx, ctx.dialect, m.id)
  for (const f of await foldersOf(tx, m)) await removeFromFolder(tx, f, m.id, now)
  await tx
    .deleteFrom('message_keywords')
    .where('message_id', '=', m.id)
    .where('org_id', '=', m.org_id)
    .execute()
  await ctx.blobs.release(tx, m.org_id, m.blob_sha256)
  await tx.deleteFrom('messages').where('id', '=', m.id).where('org_id', '=', m.org_id).execute()
  if (m.thread_id) await refreshThread(tx, m.org_id, m.thread_id)
  const size = Number(m.size)
  await tx
    .updateTable('mailboxes')
    .set({ used_bytes: sql`CASE WHEN used_bytes > ${size} THEN used_bytes - ${size} ELSE 0 END` })
    .where('id', '=', m.mailbox_id)
    .where('org_id', '=', m.org_id)
    .execute()
}

/** Recounts a thread after a message left it; deletes it when empty. */
async function refreshThread(tx: Tx, orgId: string, threadId: string) {
  const agg = await tx
    .selectFrom('messages')
    .select((eb) => [
      eb.fn.countAll<number>().as('n'),
      eb.fn.min<number>('received_at').as('first'),
      eb.fn.max<number>('received_at').as('last'),
    ])
    .where('thread_id', '=', threadId)
    .where('org_id', '=', orgId)
    .executeTakeFirstOrThrow()
  if (Number(agg.n) === 0) {
    await tx.deleteFrom('threads').where('id', '=', threadId).where('org_id', '=', orgId).execute()
    return
  }
  await tx
    .updateTable('threads')
    .set({
      message_count: Number(agg.n),
      first_message_at: Number(agg.first),
      last_message_at: Number(agg.last),
    })
    .where('id', '=', threadId)
    .where('org_id', '=', orgId)
    .execute()
}

const DELETABLE = ['id', 'org_id', 'mailbox_id', 'thread_id', 'blob_sha256', 'size'] as const

/** Ends Trash memberships older than the retention; returns what it did. */
export async function purgeTrash(
  ctx: MessagesContext,
  opts: { retentionMs?: number; batch?: number; signal?: AbortSignal } = {},
): Promise<{ deleted: number; left_trash: number }> {
  const db = ctx.store.db
  const batch = opts.batch ?? 200
  const result = { deleted: 0, left_trash: 0 }
  const cutoff = ctx.clock.now() - (opts.retentionMs ?? TRASH_RETENTION_DAYS * DAY)
  for (;;) {
    if (opts.signal?.aborted) break
    const due = await db
      .selectFrom('folder_messages as fm')
      .innerJoin('folders as f', 'f.id', 'fm.folder_id')
      .select(['fm.message_id', 'f.id as folder_id'])
      .where('f.role', '=', 'trash')
      .where('fm.created_at', '<', cutoff)
      .orderBy('fm.created_at')
      .limit(batch)
      .execute()
    if (due.length === 0) break
    const before = result.deleted + result.left_trash
    await db.transaction().execute(async (tx) => {
      const now = ctx.clock.now()
      const touched = new Map<string, string>()
      for (const d of due) {
        const m = await tx
          .selectFrom('messages')
          .select(DELETABLE)
          .where('id', '=', d.message_id)
          .executeTakeFirst()
        if (!m) continue
        const folders = await foldersOf(tx, m)
        const trash = folders.find((f) => f.id === d.folder_id)
        if (!trash) continue
        if (folders.length === 1) {
          await deletePermanently(tx, { blobs: ctx.blobs, dialect: ctx.store.dialect }, m, now)
          result.deleted++
        } else {
          await removeFromFolder(tx, trash, m.id, now)
          result.left_trash++
        }
        touched.set(m.mailbox_id, m.org_id)
      }
      for (const [mailboxId, orgId] of touched) await mailChanged(ctx, tx, orgId, mailboxId, 'purged')
    })
    if (due.length < batch || result.deleted + result.left_trash === before) break
  }
  return result
}

export function trashPurgeJob(ctx: MessagesContext): JobDef {
  return {
    name: 'trash-purge',
    description: `Permanently deletes messages that have been in Trash for more than ${TRASH_RETENTION_DAYS} days.`,
    intervalMs: DAY,
    firstRunDelayMs: 10 * 60_000,
    run: async ({ signal }) => purgeTrash(ctx, { signal }),
  }
}
