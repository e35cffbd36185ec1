// Stored messages as the API shows them: list (filters, search, cursor pages), one message
// parsed for reading, the raw bytes, one attachment, changes (flags, keywords, folders,
// labels) and deletion (to Trash; from Trash, permanently).
// Invariants:
// - Every function finds its mailbox, message or folder through access.ts (org and principal
//   rule); nothing here queries outside it.
// - Lists without a folder (folder=, in:) leave out messages in Trash or Junk, as mail clients
//   do; name the folder to see them.
// - Changes run in one transaction and through moves.ts / folder-ops.ts; a message is never
//   left in no folder.

import { sql } from 'kysely'
import { BlobNotFoundError } from '../../store/blobs/blob-store.ts'
import type { Principal } from '../accounts/principal.ts'
import { ServiceError } from '../errors.ts'
import {
  findFolder,
  findMessage,
  findReadableMailbox,
  findThread,
  type MailboxRef,
  MESSAGE_COLUMNS,
  type MessageRow,
  mailboxFolders,
  targetMailbox,
} from './access.ts'
import { type MessagesContext, mailChanged, type Tx } from './context.ts'
import { decodeCursor, encodeCursor, type Page, pageSize } from './cursor.ts'
import { parseForReading, type ReadableMessage } from './mime.ts'
import {
  changeFlags,
  changeMemberships,
  checkKeywords,
  type FlagChange,
  foldersOf,
  labelFolders,
  rehome,
  setFolders,
  trashMessage,
} from './moves.ts'
import { deletePermanently } from './purge.ts'
import { inFolder, notInFolders, parseQuery, queryConditions, unreadCondition } from './query.ts'
import { type MessageSummary, type StoredAttachment, storedAttachments, summaries } from './views.ts'

export interface ListMessagesInput {
  /** Mailbox id or address. */
  mailbox?: string
  /** Folder id, name or role. */
  folder?: string
  thread?: string
  unread?: boolean
  /** Search query (query.ts). */
  q?: string
  limit?: number
  cursor?: string
}

export async function listMessages(
  ctx: MessagesContext,
  p: Principal,
  input: ListMessagesInput,
): Promise<Page<MessageSummary>> {
  const db = ctx.store.db
  const mailbox = await targetMailbox(db, p, input.mailbox, { folder: input.folder, thread: input.thread })
  if (!mailbox) return { data: [], next_cursor: null }
  const query = input.q ? parseQuery(input.q) : null
  const conditions = query ? queryConditions(ctx.store.dialect, query) : []
  const folderRefs = [...(input.folder ? [input.folder] : []), ...(query?.in ?? [])]
  for (const ref of folderRefs) conditions.push(inFolder((await findFolder(db, mailbox, ref)).id))
  if (folderRefs.length === 0) conditions.push(notInFolders(await hiddenFolderIds(db, mailbox)))
  if (input.thread) conditions.push(sql<boolean>`m.thread_id = ${(await findThread(db, p, input.thread)).id}`)
  if (input.unread !== undefined) conditions.push(unreadCondition(input.unread))
  const after = decodeCursor(input.cursor)
  if (after)
    conditions.push(
      sql<boolean>`(m.received_at < ${after.t} OR (m.received_at = ${after.t} AND m.id < ${after.id}))`,
    )
  const limit = pageSize(input.limit)
  let q = db
    .selectFrom('messages as m')
    .select(MESSAGE_COLUMNS)
    .where('m.org_id', '=', mailbox.org_id)
    .where('m.mailbox_id', '=', mailbox.id)
    .where('m.deleted_at', 'is', null)
  for (const c of conditions) q = q.where(c)
  const rows = await q
    .orderBy('m.received_at', 'desc')
    .orderBy('m.id', 'desc')
    .limit(limit + 1)
    .execute()
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return {
    data: await summaries(db, mailbox.org_id, page),
    next_cursor:
      rows.length > limit && last ? encodeCursor({ t: Number(last.received_at), id: last.id }) : null,
  }
}

/** Trash and Junk: left out of lists that name no folder. */
export async function hiddenFolderIds(db: Tx, mailbox: MailboxRef): Promise<string[]> {
  return (await mailboxFolders(db, mailbox))
    .filter((f) => f.role === 'trash' || f.role === 'junk')
    .map((f) => f.id)
}

export interface MessageDetail extends MessageSummary {
  message_id_header: string | null
  in_reply_to: string | null
  references: string[]
  auth_results: string | null
  spam_score: number | null
  /** The SMTP envelope sender (return path); other envelope fields are not shown. */
  envelope_from: string | null
  headers: ReadableMessage['headers']
  text: string | null
  html: string | null
  attachments: StoredAttachment[]
  /** Set when the MIME structure was flattened (mime.ts); the raw message is still readable. */
  parse_warning: string | null
}

async function readRaw(ctx: MessagesContext, m: MessageRow): Promise<Buffer | null> {
  try {
    return await ctx.blobs.get(m.org_id, m.blob_sha256)
  } catch (err) {
    if (err instanceof BlobNotFoundError) return null
    throw err
  }
}

async function parsed(ctx: MessagesContext, m: MessageRow): Promise<ReadableMessage> {
  const raw = await readRaw(ctx, m)
  if (!raw)
    return { headers: [], text: null, html: null, attachments: [], warning: 'The raw message is missing.' }
  return parseForReading(raw)
}

function envelopeFrom(json: string | null): string | null {
  try {
    const v = JSON.parse(json ?? 'null') as { mail_from?: unknown } | null
    return typeof v?.mail_from === 'string' ? v.mail_from : null
  } catch {
    return null
  }
}

export async function getMessage(ctx: MessagesContext, p: Principal, id: string): Promise<MessageDetail> {
  const db = ctx.store.db
  const m = await findMessage(db, p, id)
  const [summary] = await summaries(db, m.org_id, [m])
  const r = await parsed(ctx, m)
  return {
    ...(summary as MessageSummary),
    message_id_header: m.message_id_header,
    in_reply_to: m.in_reply_to,
    references: (m.references_header ?? '').split(/\s+/).filter(Boolean),
    auth_results: m.auth_results,
    spam_score: m.spam_score === null ? null : Number(m.spam_score),
    envelope_from: envelopeFrom(m.envelope),
    headers: r.headers,
    text: r.text,
    html: r.html,
    attachments: r.warning
      ? storedAttachments(m.attachments)
      : r.attachments.map(({ content: _content, ...a }) => a),
    parse_warning: r.warning,
  }
}

export interface Download {
  filename: string
  content_type: string
  bytes: Buffer
}

export async function rawMessage(ctx: MessagesContext, p: Principal, id: string): Promise<Download> {
  const m = await findMessage(ctx.store.db, p, id)
  const raw = await readRaw(ctx, m)
  if (!raw) throw new ServiceError('internal', 'RAW_MISSING', `The raw bytes of ${id} are missing.`)
  return { filename: `${m.id}.eml`, content_type: 'message/rfc822', bytes: raw }
}

export async function messageAttachment(
  ctx: MessagesContext,
  p: Principal,
  id: string,
  index: number,
): Promise<Download> {
  const m = await findMessage(ctx.store.db, p, id)
  const r = await parsed(ctx, m)
  if (r.warning && index < storedAttachments(m.attachments).length)
    throw new ServiceError('conflict', 'MESSAGE_NOT_PARSABLE', `${r.warning} (GET /v1/messages/${id}/raw)`)
  const a = r.attachments[index]
  if (!a)
    throw new ServiceError(
      'not_found',
      'ATTACHMENT_NOT_FOUND',
      `Message ${id} has ${r.attachments.length} attachment(s); there is no index ${index}.`,
    )
  return {
    filename: a.filename ?? `attachment-${index}`,
    content_type: a.content_type,
    bytes: a.content,
  }
}

export interface MessagePatch extends FlagChange {
  /** Exactly these folders (ids, names or roles). */
  folders?: string[]
  labels?: { add?: string[]; remove?: string[] }
}

/** Applies a patch to one message inside `tx`; true when anything changed. */
export async function patchMessageIn(
  tx: Tx,
  p: Principal,
  m: MessageRow,
  patch: MessagePatch,
  now: number,
): Promise<boolean> {
  const mailbox = await findReadableMailbox(tx, p, m.mailbox_id)
  let changed = false
  if (patch.folders) {
    const folders = []
    for (const ref of patch.folders) folders.push(await findFolder(tx, mailbox, ref))
    changed = (await setFolders(tx, m, folders, now)) || changed
  }
  if (patch.labels?.add?.length)
    changed =
      (await changeMemberships(tx, m, await labelFolders(tx, mailbox, patch.labels.add), [], now)) || changed
  if (patch.labels?.remove?.length) {
    changed =
      (await changeMemberships(tx, m, [], await labelFolders(tx, mailbox, patch.labels.remove), now)) ||
      changed
    await rehome(tx, m, 'archive', now)
  }
  changed = (await changeFlags(tx, m, patch, now)) || changed
  return changed
}

export function checkPatchKeywords(patch: FlagChange, field = 'body.keywords') {
  checkKeywords(`${field}.add`, patch.keywords?.add ?? [])
  checkKeywords(`${field}.remove`, patch.keywords?.remove ?? [])
}

export async function updateMessage(
  ctx: MessagesContext,
  p: Principal,
  id: string,
  patch: MessagePatch,
): Promise<MessageSummary> {
  checkPatchKeywords(patch)
  const db = ctx.store.db
  await db.transaction().execute(async (tx) => {
    const m = await findMessage(tx, p, id)
    if (await patchMessageIn(tx, p, m, patch, ctx.clock.now()))
      await mailChanged(ctx, tx, m.org_id, m.mailbox_id, 'updated')
  })
  const m = await findMessage(db, p, id)
  return (await summaries(db, m.org_id, [m]))[0] as MessageSummary
}

export interface DeleteResult {
  id: string
  /** trashed: moved to Trash; deleted: it was only in Trash and is gone for good. */
  result: 'trashed' | 'deleted'
}

export async function deleteMessage(ctx: MessagesContext, p: Principal, id: string): Promise<DeleteResult> {
  return ctx.store.db.transaction().execute(async (tx) => {
    const now = ctx.clock.now()
    const m = await findMessage(tx, p, id)
    const folders = await foldersOf(tx, m)
    let result: DeleteResult['result']
    if (folders.length === 1 && folders[0]?.role === 'trash') {
      await deletePermanently(tx, { blobs: ctx.blobs, dialect: ctx.store.dialect }, m, now)
      result = 'deleted'
    } else {
      await trashMessage(tx, m, now)
      result = 'trashed'
    }
    await mailChanged(ctx, tx, m.org_id, m.mailbox_id, result)
    return { id, result }
  })
}
