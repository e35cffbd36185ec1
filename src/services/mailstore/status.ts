// STATUS (RFC 9051 6.3.11) and the counts SELECT reports: messages, unseen, recent, deleted,
// total size (STATUS=SIZE, RFC 8438), UIDNEXT, UIDVALIDITY and HIGHESTMODSEQ, from the folder
// index (folder-index.ts) brought up to the folder row the caller read.

import { ServiceError } from '../errors.ts'
import type { Tx } from '../messages/context.ts'
import { folderSummary } from './folder-index.ts'
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
  const c = await folderSummary(db, a, f)
  return {
    messages: c.messages,
    unseen: c.messages - c.seen,
    recent: c.recent,
    deleted: c.deleted,
    size: c.size,
    uidnext: f.uidnext,
    uidvalidity: f.uidvalidity,
    highestmodseq: f.highestmodseq,
  }
}

/** The mailbox's storage quota and use, in bytes (quota 0: none), for IMAP QUOTA (RFC 9208). */
export async function mailboxUsage(
  db: Tx,
  a: Pick<MailAccountRef, 'org_id' | 'mailbox_id'>,
): Promise<{ quota: number; used: number }> {
  const row = await db
    .selectFrom('mailboxes')
    .select(['quota_bytes', 'used_bytes'])
    .where('id', '=', a.mailbox_id)
    .where('org_id', '=', a.org_id)
    .executeTakeFirst()
  return { quota: Number(row?.quota_bytes ?? 0), used: Number(row?.used_bytes ?? 0) }
}

/**
 * Refuses (409 OVER_QUOTA, IMAP [OVERQUOTA]) a write that would take the mailbox past its quota:
 * `bytes` added, `freed` released by the same write. Call inside the write's transaction.
 */
export async function ensureRoom(
  db: Tx,
  a: Pick<MailAccountRef, 'org_id' | 'mailbox_id'>,
  bytes: number,
  freed = 0,
): Promise<void> {
  const { quota, used } = await mailboxUsage(db, a)
  if (quota > 0 && used - freed + bytes > quota)
    throw new ServiceError(
      'conflict',
      'OVER_QUOTA',
      'The mailbox is full: delete mail or ask for a larger quota.',
    )
}
