// Filing one stored message into one mailbox: the message row, its thread, its folder
// membership (UID, MODSEQ), the search index, the mailbox's used bytes, the event and the
// change note. Inbound delivery files into Inbox or Junk; sending files a copy into Sent.
// Invariants: runs inside the caller's transaction; the blob is already committed there and
// this adds the message's reference to it; nothing here touches the bytes.

import type { Transaction } from 'kysely'
import type { ParsedSummary } from '../../mail/parse.ts'
import { normaliseSubject } from '../../mail/parse.ts'
import type { BlobStore } from '../../store/blobs/blob-store.ts'
import type { ChangeBus } from '../../store/change-bus.ts'
import type { DialectName } from '../../store/db.ts'
import { indexInserted, searchOnInsert } from '../../store/fulltext.ts'
import { newId } from '../../store/ids.ts'
import type { Database } from '../../store/schema.ts'
import { notifyChange } from '../events/changes.ts'
import type { EventType } from '../events/types.ts'
import { writeEvent } from '../events/write.ts'
import { addNewToFolder } from '../messages/folder-ops.ts'
import { assignThread } from './threading.ts'

export interface FileMessageInput {
  org_id: string
  mailbox_id: string
  role: 'inbox' | 'junk' | 'sent'
  /** Files into this folder of the mailbox instead of the role's (IMAP APPEND). */
  folder_id?: string
  /** INTERNALDATE when not now (IMAP APPEND's date-time). */
  received_at?: number
  blob: { sha256: string; size: number }
  /** The caller already counted this message's reference to the blob (commitStaged's refs). */
  blob_ref_counted?: boolean
  parsed: ParsedSummary
  now: number
  auth_summary: string | null
  envelope: string | null
  /** Keywords set on arrival, e.g. \Seen for a Sent copy. */
  keywords?: readonly string[]
  event: { type: EventType; actor: string; ip: string | null; payload: Record<string, unknown> }
}

export async function fileMessage(
  tx: Transaction<Database>,
  deps: { blobs: BlobStore; bus: ChangeBus; dialect: DialectName },
  m: FileMessageInput,
): Promise<string> {
  const { parsed, now } = m
  const threadId = await assignThread(tx, {
    org_id: m.org_id,
    mailbox_id: m.mailbox_id,
    subject_norm: normaliseSubject(parsed.subject),
    in_reply_to: parsed.in_reply_to,
    references: parsed.references,
    at: now,
  })
  const addressesText = [parsed.from, ...parsed.to, ...parsed.cc]
    .filter((a) => a !== null)
    .map((a) => `${a.name} ${a.address}`)
    .join(' ')
  const text = { subject: parsed.subject, addresses: addressesText, body: parsed.text }
  const id = newId('msg', now)
  await tx
    .insertInto('messages')
    .values({
      id,
      org_id: m.org_id,
      mailbox_id: m.mailbox_id,
      thread_id: threadId,
      blob_sha256: m.blob.sha256,
      size: m.blob.size,
      message_id_header: parsed.message_id,
      in_reply_to: parsed.in_reply_to,
      references_header: parsed.references.length ? parsed.references.join(' ') : null,
      subject: parsed.subject,
      from_address: parsed.from?.address ?? null,
      from_name: parsed.from?.name ?? null,
      to_json: JSON.stringify(parsed.to),
      cc_json: JSON.stringify(parsed.cc),
      reply_to_json: JSON.stringify(parsed.reply_to),
      sent_at: parsed.date,
      received_at: m.received_at ?? now,
      has_attachments: parsed.attachments.length > 0 ? 1 : 0,
      preview: parsed.preview,
      attachments: JSON.stringify(parsed.attachments),
      auth_results: m.auth_summary,
      spam_score: null,
      envelope: m.envelope,
      created_at: now,
      deleted_at: null,
      ...searchOnInsert(deps.dialect, text),
    })
    .execute()
  if (!m.blob_ref_counted) await deps.blobs.addRef(tx, m.org_id, m.blob.sha256)
  if (m.keywords?.length)
    await tx
      .insertInto('message_keywords')
      .values(m.keywords.map((keyword) => ({ message_id: id, keyword, org_id: m.org_id })))
      .execute()
  // The folder is found by the statement that takes its UID: a mailbox without it fails here.
  await addNewToFolder(
    tx,
    { mailbox_id: m.mailbox_id, role: m.role, folder_id: m.folder_id },
    id,
    now,
    m.blob.size,
  )
  await indexInserted(tx, deps.dialect, id, text)
  await writeEvent(tx, now, {
    org_id: m.org_id,
    type: m.event.type,
    actor: m.event.actor,
    ip: m.event.ip,
    subject_id: id,
    payload: m.event.payload,
  })
  await notifyChange(deps.bus, tx, 'mail.changed', m.org_id, {
    mailbox_id: m.mailbox_id,
    what: 'added',
    message_id: id,
    folder: m.role,
  })
  return id
}
