import type { Folder } from '../../store/schema.ts'
import type { MessagesContext, Tx } from '../messages/context.ts'
import { folderEntries } from './folder-index.ts'

/** The mailbox a mail client logged in to. */
export interface MailAccountRef {
  mailbox_id: string
  org_id: string
  address: string
}

export interface FolderInfo {
  id: string
  name: string
  role: Folder['role']
  subscribed: boolean
  uidvalidity: number
  uidnext: number
  highestmodseq: number
  recent_uid: number
}

/** One message of a folder, as a session lists it. */
export interface Entry {
  uid: number
  /** The membership's MODSEQ (RFC 7162): raised by every flag change of the message. */
  modseq: number
  message_id: string
}

const info = (f: Folder): FolderInfo => ({
  id: f.id,
  name: f.role === 'inbox' ? 'INBOX' : f.name,
  role: f.role,
  subscribed: Number(f.subscribed) === 1,
  uidvalidity: Number(f.uidvalidity),
  uidnext: Number(f.uidnext),
  highestmodseq: Number(f.highestmodseq),
  recent_uid: Number(f.recent_uid),
})

export async function listFolders(db: Tx, a: MailAccountRef): Promise<FolderInfo[]> {
  const rows = await db
    .selectFrom('folders')
    .selectAll()
    .where('org_id', '=', a.org_id)
    .where('mailbox_id', '=', a.mailbox_id)
    .execute()
  return rows
    .map(info)
    .sort((x, y) => (x.name === 'INBOX' ? -1 : y.name === 'INBOX' ? 1 : x.name < y.name ? -1 : 1))
}

/** The folder of that IMAP name (INBOX in any case is the inbox), or null. */
export async function folderByName(db: Tx, a: MailAccountRef, name: string): Promise<FolderInfo | null> {
  const q = db
    .selectFrom('folders')
    .selectAll()
    .where('org_id', '=', a.org_id)
    .where('mailbox_id', '=', a.mailbox_id)
  const row =
    name.toUpperCase() === 'INBOX'
      ? await q.where('role', '=', 'inbox').executeTakeFirst()
      : await q
          .where('name', '=', name)
          .where((eb) => eb.or([eb('role', 'is', null), eb('role', '!=', 'inbox')]))
          .executeTakeFirst()
  return row ? info(row) : null
}

export async function folderById(db: Tx, a: MailAccountRef, id: string): Promise<FolderInfo | null> {
  const row = await db
    .selectFrom('folders')
    .selectAll()
    .where('id', '=', id)
    .where('org_id', '=', a.org_id)
    .where('mailbox_id', '=', a.mailbox_id)
    .executeTakeFirst()
  return row ? info(row) : null
}

/**
 * The folder's memberships changed after a MODSEQ, in UID order: read through the
 * (folder_id, modseq) index and sorted here, so a change check on a large folder touches the
 * changed rows only. (The whole list comes from the folder index, folder-index.ts.)
 */
async function changedEntries(db: Tx, a: MailAccountRef, folderId: string, modseq: number): Promise<Entry[]> {
  const rows = await db
    .selectFrom('folder_messages as fm')
    .innerJoin('messages as m', 'm.id', 'fm.message_id')
    .select(['fm.uid', 'fm.modseq', 'fm.message_id'])
    .where('fm.folder_id', '=', folderId)
    .where('fm.org_id', '=', a.org_id)
    .where('m.mailbox_id', '=', a.mailbox_id)
    .where('m.deleted_at', 'is', null)
    .where('fm.modseq', '>', modseq)
    .execute()
  const out = rows.map((r) => ({ uid: Number(r.uid), modseq: Number(r.modseq), message_id: r.message_id }))
  out.sort((x, y) => x.uid - y.uid)
  return out
}

export interface OpenedFolder {
  folder: FolderInfo
  /** null when `reuse` said the caller already holds the list for this state of the folder. */
  entries: Entry[] | null
  /** UIDs at or above this are \Recent to this session. */
  recentFrom: number
}

/**
 * Lists a folder for SELECT or EXAMINE. A read-write open claims \Recent: the next session
 * sees none of the messages this one was shown as recent (RFC 3501 2.3.2).
 */
export async function openFolder(
  db: Tx,
  a: MailAccountRef,
  folderId: string,
  readWrite: boolean,
  reuse: (f: FolderInfo) => boolean = () => false,
): Promise<OpenedFolder | null> {
  return db.transaction().execute(async (tx) => {
    const folder = await folderById(tx, a, folderId)
    if (!folder) return null
    if (readWrite && folder.recent_uid < folder.uidnext)
      await tx
        .updateTable('folders')
        .set({ recent_uid: folder.uidnext })
        .where('id', '=', folder.id)
        .where('org_id', '=', a.org_id)
        .execute()
    const list = reuse(folder) ? null : await folderEntries(tx, a, folder)
    // EXAMINE shows what is recent without claiming it.
    return { folder, entries: list, recentFrom: folder.recent_uid }
  })
}

export interface FolderChanges {
  folder: FolderInfo
  /** Memberships added or re-flagged after the MODSEQ, in UID order. */
  changed: Entry[]
  /** UIDs expunged after the MODSEQ (tombstones), ascending. */
  vanished: number[]
}

/** What happened in a folder after `modseq`: the basis of IDLE, NOOP and QRESYNC answers. */
export async function changesSince(
  db: Tx,
  a: MailAccountRef,
  folderId: string,
  modseq: number,
): Promise<FolderChanges | null> {
  const folder = await folderById(db, a, folderId)
  if (!folder) return null
  if (folder.highestmodseq <= modseq) return { folder, changed: [], vanished: [] }
  const changed = await changedEntries(db, a, folderId, modseq)
  const gone = await db
    .selectFrom('expunged')
    .select('uid')
    .where('folder_id', '=', folderId)
    .where('org_id', '=', a.org_id)
    .where('modseq', '>', modseq)
    .orderBy('uid')
    .execute()
  return { folder, changed, vanished: gone.map((g) => Number(g.uid)) }
}

/**
 * Claims \Recent for messages that arrived while a read-write session had the folder open:
 * returns the UIDs this session may show as \Recent (those no other session claimed first),
 * and moves the folder's mark past them (RFC 3501 2.3.2: one session sees each as recent).
 */
export async function claimRecent(
  ctx: Pick<MessagesContext, 'store'>,
  a: MailAccountRef,
  folderId: string,
  uids: readonly number[],
): Promise<number[]> {
  if (uids.length === 0) return []
  const top = Math.max(...uids.slice(-1), 0) + 1
  return ctx.store.db.transaction().execute(async (tx) => {
    let q = tx
      .selectFrom('folders')
      .select('recent_uid')
      .where('id', '=', folderId)
      .where('org_id', '=', a.org_id)
      .where('mailbox_id', '=', a.mailbox_id)
    if (ctx.store.dialect === 'postgres') q = q.forUpdate()
    const row = await q.executeTakeFirst()
    if (!row) return []
    const from = Number(row.recent_uid)
    if (from >= top) return []
    await tx
      .updateTable('folders')
      .set({ recent_uid: top })
      .where('id', '=', folderId)
      .where('org_id', '=', a.org_id)
      .execute()
    return uids.filter((u) => u >= from)
  })
}

/** Keywords and system flags of messages, by message id. */
export async function flagsOf(
  db: Tx,
  orgId: string,
  messageIds: readonly string[],
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>()
  for (const id of messageIds) out.set(id, [])
  for (let i = 0; i < messageIds.length; i += 500) {
    const chunk = messageIds.slice(i, i + 500)
    const rows = await db
      .selectFrom('message_keywords')
      .select(['message_id', 'keyword'])
      .where('org_id', '=', orgId)
      .where('message_id', 'in', chunk)
      .execute()
    for (const r of rows) out.get(r.message_id)?.push(r.keyword)
  }
  return out
}

export interface StoredMessage {
  id: string
  blob_sha256: string
  size: number
  /** INTERNALDATE: when the message arrived (or the date APPEND gave). */
  received_at: number
  /** The Date header (SENTBEFORE/SENTON/SENTSINCE), null when missing or unparsable. */
  sent_at: number | null
}

export async function storedMessages(
  db: Tx,
  orgId: string,
  ids: readonly string[],
): Promise<Map<string, StoredMessage>> {
  const out = new Map<string, StoredMessage>()
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db
      .selectFrom('messages')
      .select(['id', 'blob_sha256', 'size', 'received_at', 'sent_at'])
      .where('org_id', '=', orgId)
      .where('id', 'in', ids.slice(i, i + 500))
      .execute()
    for (const r of rows)
      out.set(r.id, {
        id: r.id,
        blob_sha256: r.blob_sha256,
        size: Number(r.size),
        received_at: Number(r.received_at),
        sent_at: r.sent_at === null ? null : Number(r.sent_at),
      })
  }
  return out
}

/** What THREAD=REFERENCES (RFC 5256) reads of each message. */
export interface ThreadFields {
  id: string
  message_id_header: string | null
  in_reply_to: string | null
  references: string[]
  subject: string
  /** The Date header, or the arrival time without one. */
  date: number
}

export async function threadFields(
  db: Tx,
  orgId: string,
  ids: readonly string[],
): Promise<Map<string, ThreadFields>> {
  const out = new Map<string, ThreadFields>()
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db
      .selectFrom('messages')
      .select([
        'id',
        'message_id_header',
        'in_reply_to',
        'references_header',
        'subject',
        'sent_at',
        'received_at',
      ])
      .where('org_id', '=', orgId)
      .where('id', 'in', ids.slice(i, i + 500))
      .execute()
    for (const r of rows)
      out.set(r.id, {
        id: r.id,
        message_id_header: r.message_id_header,
        in_reply_to: r.in_reply_to,
        references: (r.references_header ?? '').split(/\s+/).filter(Boolean),
        subject: r.subject,
        date: Number(r.sent_at ?? r.received_at),
      })
  }
  return out
}
