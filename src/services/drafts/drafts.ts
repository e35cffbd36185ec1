// Drafts: messages in a mailbox's Drafts folder carrying \Draft (IMAP's draft flag, JMAP's
// $draft). A draft saved through the API has a `drafts` row: a stable id (drf_...), the fields
// it was composed from and the uploads it carries; every save composes a new message and
// expunges the old one, so IMAP clients see the change. A draft a mail client stored (APPEND to
// Drafts with \Draft) has no row: it is listed with its message id as its id, and becomes an
// API draft the first time it is changed through the API (save-draft.ts).
// This file: the views, finding a draft the caller may reach, listing and deleting.
// Invariants: every lookup is scoped by org and by the mailboxes the caller reaches (404
// otherwise); a draft's row and its message change in one transaction.

import { sql } from 'kysely'
import type { AddressInfo, AttachmentInfo } from '../../mail/parse.ts'
import { missingScope, type Principal } from '../accounts/principal.ts'
import type { AttachmentSettings } from '../attachments/attachments.ts'
import { ServiceError } from '../errors.ts'
import { writeEvent } from '../events/write.ts'
import { MESSAGE_COLUMNS, type MessageRow, reachableMailboxIds, targetMailbox } from '../messages/access.ts'
import type { MessagesContext, Tx } from '../messages/context.ts'
import { mailChanged } from '../messages/context.ts'
import { decodeCursor, encodeCursor, type Page, pageSize } from '../messages/cursor.ts'
import { DRAFT } from '../messages/folder-ops.ts'
import { deletePermanently } from '../messages/purge.ts'

export interface DraftsContext extends MessagesContext {
  attachments: AttachmentSettings
}

/** The fields a draft is composed from (the JSON of drafts.fields). */
export interface DraftFields {
  /** `Name <a@b>` or `a@b`; the mailbox or one of its aliases. */
  from: string
  to: string[]
  cc: string[]
  bcc: string[]
  reply_to: string[]
  subject: string
  text: string | null
  html: string | null
  /** A Message-ID with angle brackets, or null. */
  in_reply_to: string | null
}

export interface DraftAttachmentView {
  /** The upload (att_...); null for a part of a draft a mail client stored. */
  id: string | null
  filename: string | null
  content_type: string
  size: number
}

export interface DraftView extends DraftFields {
  /** drf_... for drafts saved through the API; the message id for drafts a mail client stored. */
  id: string
  /** The message holding the draft now (GET /v1/messages/{id} reads it). */
  message_id: string
  mailbox_id: string
  source: 'api' | 'imap'
  attachments: DraftAttachmentView[]
  created_at: number
  updated_at: number
}

/** A draft found for a caller: its message, and its row when it was saved through the API. */
export interface FoundDraft {
  message: MessageRow
  row: { id: string; fields: string; created_at: number; updated_at: number } | null
}

/** Saving and deleting drafts changes mail: the mailbox scope lets read keys in, this keeps them out. */
export function needScope(p: Principal, scope: 'write' | 'send'): void {
  const lacking = missingScope(p, scope)
  if (lacking) throw new ServiceError('forbidden', 'MISSING_SCOPE', `Forbidden: ${lacking}.`)
}

export const draftNotFound = (id: string) =>
  new ServiceError('not_found', 'DRAFT_NOT_FOUND', `No draft ${id} that you can reach.`)

export const draftChanged = () =>
  new ServiceError(
    'conflict',
    'DRAFT_CHANGED',
    'The draft was changed, sent or deleted meanwhile; read it again and retry.',
  )

/** Messages in a Drafts folder carrying \Draft, of mailboxes `p` reaches. */
function draftMessages(db: Tx, p: Principal) {
  return db
    .selectFrom('messages as m')
    .innerJoin('folder_messages as fm', 'fm.message_id', 'm.id')
    .innerJoin('folders as f', 'f.id', 'fm.folder_id')
    .leftJoin('drafts as d', 'd.message_id', 'm.id')
    .select(MESSAGE_COLUMNS)
    .select([
      'd.id as draft_id',
      'd.fields',
      'd.created_at as draft_created_at',
      'd.updated_at as draft_updated_at',
    ])
    .where('m.org_id', '=', p.org_id)
    .where('m.deleted_at', 'is', null)
    .where('m.mailbox_id', 'in', reachableMailboxIds(db, p))
    .where('f.role', '=', 'drafts')
    .where('f.org_id', '=', p.org_id)
    .where(({ exists, selectFrom }) =>
      exists(
        selectFrom('message_keywords as k')
          .select(sql`1`.as('x'))
          .whereRef('k.message_id', '=', 'm.id')
          .where('k.keyword', '=', DRAFT),
      ),
    )
}

type DraftRow = MessageRow & {
  draft_id: string | null
  fields: string | null
  draft_created_at: number | null
  draft_updated_at: number | null
}

const found = (r: DraftRow): FoundDraft => {
  const { draft_id, fields, draft_created_at, draft_updated_at, ...message } = r
  return {
    message: message as MessageRow,
    row:
      draft_id && fields
        ? {
            id: draft_id,
            fields,
            created_at: Number(draft_created_at),
            updated_at: Number(draft_updated_at),
          }
        : null,
  }
}

/** A draft by its drf_ id or its message id, if `p` reaches it; else 404. */
export async function findDraft(db: Tx, p: Principal, id: string): Promise<FoundDraft> {
  const q = draftMessages(db, p)
  const row = await (id.startsWith('drf_') ? q.where('d.id', '=', id) : q.where('m.id', '=', id))
    .limit(1)
    .executeTakeFirst()
  if (!row) throw draftNotFound(id)
  return found(row as DraftRow)
}

const fmt = (a: AddressInfo) => (a.name ? `${a.name} <${a.address}>` : a.address)
const addressList = (json: string): string[] => {
  try {
    const v = JSON.parse(json) as AddressInfo[]
    return Array.isArray(v) ? v.map(fmt) : []
  } catch {
    return []
  }
}

/** The fields of a draft as its message's stored metadata shows them (drafts a client stored). */
export function fieldsOfMessage(m: MessageRow): DraftFields {
  return {
    from: m.from_address ? fmt({ name: m.from_name ?? '', address: m.from_address }) : '',
    to: addressList(m.to_json),
    cc: addressList(m.cc_json),
    bcc: [],
    reply_to: addressList(m.reply_to_json),
    subject: m.subject,
    text: null,
    html: null,
    in_reply_to: m.in_reply_to,
  }
}

async function views(db: Tx, orgId: string, drafts: FoundDraft[]): Promise<DraftView[]> {
  const ids = drafts.flatMap((d) => (d.row ? [d.row.id] : []))
  const links = ids.length
    ? await db
        .selectFrom('draft_attachments as l')
        .innerJoin('attachments as a', 'a.id', 'l.attachment_id')
        .select(['l.draft_id', 'a.id', 'a.filename', 'a.content_type', 'a.size'])
        .where('l.org_id', '=', orgId)
        .where('l.draft_id', 'in', ids)
        .orderBy('l.draft_id')
        .orderBy('l.position')
        .execute()
    : []
  return drafts.map(({ message: m, row }) => {
    if (row)
      return {
        ...(JSON.parse(row.fields) as DraftFields),
        id: row.id,
        message_id: m.id,
        mailbox_id: m.mailbox_id,
        source: 'api' as const,
        attachments: links
          .filter((l) => l.draft_id === row.id)
          .map((l) => ({
            id: l.id,
            filename: l.filename,
            content_type: l.content_type,
            size: Number(l.size),
          })),
        created_at: row.created_at,
        updated_at: row.updated_at,
      }
    const parts = JSON.parse(m.attachments || '[]') as AttachmentInfo[]
    return {
      ...fieldsOfMessage(m),
      id: m.id,
      message_id: m.id,
      mailbox_id: m.mailbox_id,
      source: 'imap' as const,
      attachments: parts.map((a) => ({
        id: null,
        filename: a.filename,
        content_type: a.content_type,
        size: Number(a.size),
      })),
      created_at: Number(m.received_at),
      updated_at: Number(m.received_at),
    }
  })
}

export async function draftView(db: Tx, p: Principal, d: FoundDraft): Promise<DraftView> {
  return (await views(db, p.org_id, [d]))[0] as DraftView
}

export interface ListDraftsInput {
  mailbox?: string
  limit?: number
  cursor?: string
}

/** The drafts of a mailbox (the one named, or the only one `p` reaches), newest save first. */
export async function listDrafts(
  ctx: Pick<MessagesContext, 'store'>,
  p: Principal,
  input: ListDraftsInput,
): Promise<Page<DraftView>> {
  const db = ctx.store.db
  const mailbox = await targetMailbox(db, p, input.mailbox)
  if (!mailbox) return { data: [], next_cursor: null }
  const limit = pageSize(input.limit)
  const after = decodeCursor(input.cursor)
  let q = draftMessages(db, p).where('m.mailbox_id', '=', mailbox.id)
  if (after)
    q = q.where((eb) =>
      eb.or([
        eb('m.received_at', '<', after.t),
        eb.and([eb('m.received_at', '=', after.t), eb('m.id', '<', after.id)]),
      ]),
    )
  const rows = (await q
    .orderBy('m.received_at', 'desc')
    .orderBy('m.id', 'desc')
    .limit(limit + 1)
    .execute()) as DraftRow[]
  const page = rows.slice(0, limit)
  const last = page.at(-1)
  return {
    data: await views(db, p.org_id, page.map(found)),
    next_cursor:
      rows.length > limit && last ? encodeCursor({ t: Number(last.received_at), id: last.id }) : null,
  }
}

/** Deletes a draft for good: its message (every folder, blob reference released) and its row. */
export async function deleteDraft(
  ctx: DraftsContext,
  p: Principal,
  id: string,
): Promise<{ id: string; deleted: true }> {
  await ctx.store.db.transaction().execute(async (tx) => {
    const d = await findDraft(tx, p, id)
    const now = ctx.clock.now()
    await removeDraft(tx, ctx, d, now)
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'draft.deleted',
      actor: p.key_id ?? p.user_id ?? 'unknown',
      ip: null,
      subject_id: d.message.id,
      payload: { draft_id: d.row?.id ?? d.message.id, mailbox_id: d.message.mailbox_id },
    })
  })
  return { id, deleted: true }
}

/**
 * Removes a found draft inside the caller's transaction: the row (only if it still holds this
 * message, else DRAFT_CHANGED) and the message. Used by delete and by send.
 */
export async function removeDraft(
  tx: Tx,
  ctx: Pick<MessagesContext, 'blobs' | 'bus' | 'store'>,
  d: FoundDraft,
  now: number,
): Promise<void> {
  if (d.row) {
    const r = await tx
      .deleteFrom('drafts')
      .where('id', '=', d.row.id)
      .where('message_id', '=', d.message.id)
      .where('org_id', '=', d.message.org_id)
      .executeTakeFirst()
    if (Number(r.numDeletedRows) !== 1) throw draftChanged()
  }
  const still = await tx
    .selectFrom('messages')
    .select('id')
    .where('id', '=', d.message.id)
    .where('org_id', '=', d.message.org_id)
    .executeTakeFirst()
  if (!still) throw draftChanged()
  await deletePermanently(tx, { blobs: ctx.blobs, dialect: ctx.store.dialect }, d.message, now)
  await mailChanged(ctx, tx, d.message.org_id, d.message.mailbox_id, 'expunged')
}
