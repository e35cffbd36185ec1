// EXPUNGE, UID EXPUNGE (RFC 4315) and CLOSE: ends the membership of every \Deleted message of a
// folder (optionally only the given UIDs). A message that is then in no folder at all is
// deleted permanently (its blob reference released), as an IMAP user expects; one still in
// another folder (a label, or the target of a COPY) lives on there, without the \Deleted flag.
// (Flags are per message; a \Deleted set in one folder shows in the others until the expunge.)

import type { MessagesContext } from '../messages/context.ts'
import { mailChanged } from '../messages/context.ts'
import { DELETED, removeFromFolder, setKeywords } from '../messages/folder-ops.ts'
import { deletePermanently } from '../messages/purge.ts'
import type { MailAccountRef } from './folder-view.ts'

/** Returns the expunged UIDs, ascending. */
export async function expungeDeleted(
  ctx: MessagesContext,
  a: MailAccountRef,
  folderId: string,
  onlyUids: readonly number[] | null,
): Promise<number[]> {
  const now = ctx.clock.now()
  return ctx.store.db.transaction().execute(async (tx) => {
    let q = tx
      .selectFrom('folder_messages as fm')
      .innerJoin('messages as m', 'm.id', 'fm.message_id')
      .innerJoin('message_keywords as k', 'k.message_id', 'fm.message_id')
      .select(['fm.uid', 'm.id', 'm.org_id', 'm.mailbox_id', 'm.thread_id', 'm.blob_sha256', 'm.size'])
      .where('fm.folder_id', '=', folderId)
      .where('fm.org_id', '=', a.org_id)
      .where('m.mailbox_id', '=', a.mailbox_id)
      .where('k.keyword', '=', DELETED)
    if (onlyUids) {
      if (onlyUids.length === 0) return []
      if (onlyUids.length <= 1000) q = q.where('fm.uid', 'in', onlyUids)
    }
    let rows = await q.orderBy('fm.uid').execute()
    if (onlyUids && onlyUids.length > 1000) {
      const keep = new Set(onlyUids)
      rows = rows.filter((r) => keep.has(Number(r.uid)))
    }
    const folder = { id: folderId, mailbox_id: a.mailbox_id, org_id: a.org_id }
    for (const r of rows) {
      await removeFromFolder(tx, folder, r.id, now)
      const left = await tx
        .selectFrom('folder_messages')
        .select('folder_id')
        .where('message_id', '=', r.id)
        .executeTakeFirst()
      if (!left) await deletePermanently(tx, { blobs: ctx.blobs, dialect: ctx.store.dialect }, r, now)
      // Flags belong to the message, not the membership: the \Deleted that expunged it here
      // must not doom its copies elsewhere (COPY to Trash, then \Deleted and EXPUNGE here).
      else
        await setKeywords(
          tx,
          { id: r.id, mailbox_id: a.mailbox_id, org_id: a.org_id },
          { remove: [DELETED] },
          now,
        )
    }
    if (rows.length) await mailChanged(ctx, tx, a.org_id, a.mailbox_id, 'expunged')
    return rows.map((r) => Number(r.uid))
  })
}
