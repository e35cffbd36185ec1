// COPY and MOVE between folders of one mailbox (RFC 9051 6.4.7, RFC 6851 MOVE, RFC 4315
// COPYUID). A message lives once and is a member of folders, so a copy is a new membership
// (a new UID in the target, the same flags); a move also ends the source membership, leaving a
// tombstone there. Both are one transaction: all of the set or none of it.
// A message already in the target keeps its UID there (it is reported as the copy's UID).

import { ServiceError } from '../errors.ts'
import type { MessagesContext } from '../messages/context.ts'
import { mailChanged } from '../messages/context.ts'
import { addToFolder, removeFromFolder } from '../messages/folder-ops.ts'
import { recordSpamSignal, verdictOf } from '../messages/spam-signals.ts'
import { folderById, type MailAccountRef } from './folder-view.ts'

export interface CopyResult {
  /** The target's UIDVALIDITY, for COPYUID. */
  uidvalidity: number
  /** [source UID, target UID], in source UID order. */
  pairs: [number, number][]
}

export async function copyMessages(
  ctx: MessagesContext,
  a: MailAccountRef,
  fromFolderId: string,
  uids: readonly number[],
  toFolderId: string,
  move: boolean,
): Promise<CopyResult> {
  const now = ctx.clock.now()
  return ctx.store.db.transaction().execute(async (tx) => {
    const from = await folderById(tx, a, fromFolderId)
    const to = await folderById(tx, a, toFolderId)
    if (!from || !to) throw new ServiceError('not_found', 'FOLDER_NOT_FOUND', 'No such folder.')
    const source = { id: from.id, mailbox_id: a.mailbox_id, org_id: a.org_id }
    const target = { id: to.id, mailbox_id: a.mailbox_id, org_id: a.org_id }
    const pairs: [number, number][] = []
    for (let i = 0; i < uids.length; i += 500) {
      const rows = await tx
        .selectFrom('folder_messages')
        .select(['uid', 'message_id'])
        .where('folder_id', '=', from.id)
        .where('org_id', '=', a.org_id)
        .where('uid', 'in', uids.slice(i, i + 500))
        .orderBy('uid')
        .execute()
      for (const r of rows) {
        const added = await addToFolder(tx, target, r.message_id, now)
        if (move && from.id !== to.id) await removeFromFolder(tx, source, r.message_id, now)
        const verdict = added.added ? verdictOf([from.role], [to.role]) : null
        if (verdict) await recordSpamSignal(tx, { id: r.message_id, ...a }, verdict, 'imap', now)
        pairs.push([Number(r.uid), added.uid])
      }
    }
    if (pairs.length) await mailChanged(ctx, tx, a.org_id, a.mailbox_id, move ? 'moved' : 'copied')
    return { uidvalidity: to.uidvalidity, pairs }
  })
}
