// STATUS (RFC 9051 6.3.11) and the counts SELECT reports: messages, unseen, recent, deleted,
// total size (STATUS=SIZE, RFC 8438), UIDNEXT, UIDVALIDITY and HIGHESTMODSEQ, in one query.

import { sql } from 'kysely'
import type { Tx } from '../messages/context.ts'
import { DELETED, SEEN } from '../messages/folder-ops.ts'
import type { FolderInfo, MailAccountRef } from './folder-view.ts'

export interface FolderStatus {
  messages: number
  unseen: number
  recent: number
  deleted: number
  size: number
  uidnext: number
  uidvalidity: number
  highestmodseq: number
}

export async function folderStatus(db: Tx, a: MailAccountRef, f: FolderInfo): Promise<FolderStatus> {
  // One pass over the folder; \Seen and \Deleted by index lookups joined per row.
  const r = await db
    .selectFrom('folder_messages as fm')
    .innerJoin('messages as m', 'm.id', 'fm.message_id')
    .leftJoin('message_keywords as ks', (j) =>
      j.onRef('ks.message_id', '=', 'fm.message_id').on('ks.keyword', '=', SEEN),
    )
    .leftJoin('message_keywords as kd', (j) =>
      j.onRef('kd.message_id', '=', 'fm.message_id').on('kd.keyword', '=', DELETED),
    )
    .select((eb) => [
      eb.fn.countAll<number>().as('n'),
      eb.fn.count<number>('ks.message_id').as('seen'),
      eb.fn.count<number>('kd.message_id').as('deleted'),
      sql<number>`SUM(CASE WHEN fm.uid >= ${f.recent_uid} THEN 1 ELSE 0 END)`.as('recent'),
      eb.fn.sum<number>('m.size').as('size'),
    ])
    .where('fm.folder_id', '=', f.id)
    .where('fm.org_id', '=', a.org_id)
    .where('m.mailbox_id', '=', a.mailbox_id)
    .where('m.deleted_at', 'is', null)
    .executeTakeFirst()
  const n = Number(r?.n ?? 0)
  return {
    messages: n,
    unseen: n - Number(r?.seen ?? 0),
    recent: Number(r?.recent ?? 0),
    deleted: Number(r?.deleted ?? 0),
    size: Number(r?.size ?? 0),
    uidnext: f.uidnext,
    uidvalidity: f.uidvalidity,
    highestmodseq: f.highestmodseq,
  }
}

/** The mailbox's storage quota and use, in bytes (quota 0: none), for IMAP QUOTA (RFC 9208). */
export async function mailboxUsage(db: Tx, a: MailAccountRef): Promise<{ quota: number; used: number }> {
  const row = await db
    .selectFrom('mailboxes')
    .select(['quota_bytes', 'used_bytes'])
    .where('id', '=', a.mailbox_id)
    .where('org_id', '=', a.org_id)
    .executeTakeFirst()
  return { quota: Number(row?.quota_bytes ?? 0), used: Number(row?.used_bytes ?? 0) }
}
