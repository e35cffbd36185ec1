// Uploaded attachments: files a program or person uploads once (POST /v1/attachments) and then
// names by id in a send (POST /v1/emails) or a draft. Owns the upload size rule, who may see
// which upload, and turning ids into bytes for composition.
// Invariants:
// - An upload is streamed into a staged blob of the org while its bytes are counted; one byte
//   over `maxBytes` refuses it (ATTACHMENT_TOO_LARGE, 413) and the staged bytes are discarded.
//   Only a whole good request is committed (stage, then commit): the row, the blob and the
//   row's blob reference in one transaction; a refused request leaves no row and no bytes.
// - Every row holds exactly one reference to its blob; the row's deletion (attachment-purge job,
//   purge.ts) releases it, so the blob collector keeps the bytes exactly as long as the row.
// - Who sees an upload: a mailbox-scoped key only what its mailbox uploaded; a person only what
//   they uploaded; an org-wide key every upload of its org. Anything else is 404, as is another
//   org's id.

import type { Readable } from 'node:stream'
import type { Selectable } from 'kysely'
import type { StagedBlob } from '../../store/blobs/blob-store.ts'
import { newId } from '../../store/ids.ts'
import type { AttachmentTable } from '../../store/schema.ts'
import type { Principal } from '../accounts/principal.ts'
import { ServiceError } from '../errors.ts'
import type { MessagesContext, Tx } from '../messages/context.ts'

export type AttachmentRow = Selectable<AttachmentTable>

export interface AttachmentSettings {
  /** Largest upload, bytes (attachments.max_bytes). */
  maxBytes: number
  /** How long an upload no draft links is kept, ms (attachments.unused_hours). */
  unusedMs: number
}

export interface AttachmentsContext extends Pick<MessagesContext, 'store' | 'clock' | 'blobs'> {
  attachments: AttachmentSettings
}

export interface AttachmentView {
  id: string
  filename: string
  content_type: string
  size: number
  sha256: string
  /** The uploading mailbox (mailbox-scoped keys), else null. */
  mailbox_id: string | null
  created_at: number
  /** When the upload is deleted unless a draft uses it. */
  expires_at: number
  /** Ids of the drafts that carry it (it does not expire while there is one). */
  draft_ids: string[]
}

export interface UploadInput {
  filename: string
  /** As the client declared it; anything that is not a media type becomes application/octet-stream. */
  content_type: string | null
  content: Readable | AsyncIterable<Uint8Array>
}

const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i

const invalid = (field: string, message: string) =>
  new ServiceError('invalid', 'INVALID_ATTACHMENT', `${field}: ${message}`, { details: [{ field, message }] })

/** Throws unless the name can go into a Content-Disposition header and a file system. */
export function checkFilename(filename: string, field: string): string {
  const name = filename.trim()
  if (!name) throw invalid(field, 'is required')
  if (/[\p{Cc}/\\]/u.test(name)) throw invalid(field, 'may not contain control characters or slashes')
  if (name.length > 255) throw invalid(field, 'may be at most 255 characters')
  return name
}

export const mediaTypeOrDefault = (t: string | null | undefined) =>
  t && MEDIA_TYPE.test(t.trim()) ? t.trim().toLowerCase() : 'application/octet-stream'

export const tooLarge = (max: number) =>
  new ServiceError(
    'too_large',
    'ATTACHMENT_TOO_LARGE',
    `The file is larger than ${max} bytes, the most an attachment may have (attachments.max_bytes); nothing was kept.`,
  )

/** The uploads `p` may see, as a filter on `attachments as a`. */
export function visibleAttachments(db: Tx, p: Principal) {
  const q = db.selectFrom('attachments as a').where('a.org_id', '=', p.org_id)
  if (p.kind === 'key')
    return p.key_scope === 'mailbox' ? q.where('a.mailbox_id', '=', p.mailbox_id ?? '') : q
  return q.where('a.user_id', '=', p.user_id ?? '')
}

/**
 * The bytes as they pass, up to the limit. Past it nothing more is written, the rest of the
 * source is read and dropped (so the sender's request ends cleanly and gets its answer; the
 * HTTP edge cuts a file off one byte past the limit), and then the upload is refused.
 */
async function* counted(source: UploadInput['content'], max: number): AsyncIterable<Uint8Array> {
  let size = 0
  for await (const chunk of source as AsyncIterable<Uint8Array>) {
    size += chunk.length
    if (size <= max) yield chunk
  }
  if (size > max) throw tooLarge(max)
}

/** An upload whose bytes are staged (fsynced, invisible) but not yet an attachment. */
export interface StagedAttachment {
  row: AttachmentRow
  staged: StagedBlob
}

/**
 * Streams an upload into a staged blob, checking its name and size; nothing is visible yet.
 * The caller commits it (commitAttachment) once the request is known to be good, or drops it.
 */
export async function stageAttachment(
  ctx: AttachmentsContext,
  p: Principal,
  input: UploadInput,
): Promise<StagedAttachment> {
  const filename = checkFilename(input.filename, 'file.filename')
  const contentType = mediaTypeOrDefault(input.content_type)
  const max = ctx.attachments.maxBytes
  const staged = await ctx.blobs.stage(p.org_id, counted(input.content, max))
  const now = ctx.clock.now()
  return {
    staged,
    row: {
      id: newId('att', now),
      org_id: p.org_id,
      mailbox_id: p.kind === 'key' && p.key_scope === 'mailbox' ? p.mailbox_id : null,
      api_key_id: p.key_id,
      user_id: p.kind === 'session' ? p.user_id : null,
      filename,
      content_type: contentType,
      size: staged.size,
      sha256: staged.sha256,
      created_at: now,
      expires_at: now + ctx.attachments.unusedMs,
    },
  }
}

export function discardStagedAttachment(ctx: Pick<AttachmentsContext, 'blobs'>, s: StagedAttachment) {
  return ctx.blobs.discard(s.staged)
}

/** Makes a staged upload an attachment: blob, row and its blob reference in one transaction. */
export async function commitAttachment(
  ctx: AttachmentsContext,
  s: StagedAttachment,
): Promise<AttachmentView> {
  try {
    await ctx.store.db.transaction().execute(async (tx) => {
      await ctx.blobs.commitStaged(tx, s.staged)
      await tx.insertInto('attachments').values(s.row).execute()
      await ctx.blobs.addRef(tx, s.row.org_id, s.row.sha256)
    })
  } catch (err) {
    await ctx.blobs.discard(s.staged).catch(() => {})
    throw err
  }
  return { ...view(s.row), draft_ids: [] }
}

const view = (r: AttachmentRow): Omit<AttachmentView, 'draft_ids'> => ({
  id: r.id,
  filename: r.filename,
  content_type: r.content_type,
  size: Number(r.size),
  sha256: r.sha256,
  mailbox_id: r.mailbox_id,
  created_at: Number(r.created_at),
  expires_at: Number(r.expires_at),
})

/** Uploads `p` may see, by id, in the order asked; 404 ATTACHMENT_NOT_FOUND naming the first missing one. */
export async function findAttachments(
  db: Tx,
  p: Principal,
  ids: readonly string[],
  fieldOf: (i: number) => string = (i) => `attachments[${i}]`,
): Promise<AttachmentRow[]> {
  if (ids.length === 0) return []
  const rows = await visibleAttachments(db, p)
    .selectAll('a')
    .where('a.id', 'in', [...new Set(ids)])
    .execute()
  const byId = new Map(rows.map((r) => [r.id, r]))
  return ids.map((id, i) => {
    const r = byId.get(id)
    if (!r)
      throw new ServiceError('not_found', 'ATTACHMENT_NOT_FOUND', `${fieldOf(i)}: no attachment ${id}.`, {
        details: [{ field: fieldOf(i), message: `no attachment ${id}` }],
      })
    return r
  })
}

export async function getAttachment(
  ctx: AttachmentsContext,
  p: Principal,
  id: string,
): Promise<AttachmentView> {
  const [row] = await findAttachments(ctx.store.db, p, [id], () => 'id')
  const a = row as AttachmentRow
  const links = await ctx.store.db
    .selectFrom('draft_attachments')
    .select('draft_id')
    .distinct()
    .where('attachment_id', '=', a.id)
    .where('org_id', '=', p.org_id)
    .orderBy('draft_id')
    .execute()
  return { ...view(a), draft_ids: links.map((l) => l.draft_id) }
}

/** An upload's bytes, checked against its hash by the blob store. */
export async function attachmentContent(
  ctx: AttachmentsContext,
  p: Principal,
  id: string,
): Promise<{ filename: string; content_type: string; bytes: Buffer }> {
  const [row] = await findAttachments(ctx.store.db, p, [id], () => 'id')
  const a = row as AttachmentRow
  return {
    filename: a.filename,
    content_type: a.content_type,
    bytes: await ctx.blobs.get(a.org_id, a.sha256),
  }
}

/** What composition needs of each upload, in the order given. */
export async function attachmentsForCompose(
  ctx: Pick<AttachmentsContext, 'store' | 'blobs'>,
  p: Principal,
  ids: readonly string[],
  fieldOf: (i: number) => string,
): Promise<{ id: string; filename: string; contentType: string; content: Buffer }[]> {
  const rows = await findAttachments(ctx.store.db, p, ids, fieldOf)
  const out = []
  for (const r of rows)
    out.push({
      id: r.id,
      filename: r.filename,
      contentType: r.content_type,
      content: await ctx.blobs.get(r.org_id, r.sha256),
    })
  return out
}

/** The settings from config (attachments.*). */
export const attachmentSettings = (c: { max_bytes: number; unused_hours: number }): AttachmentSettings => ({
  maxBytes: c.max_bytes,
  unusedMs: c.unused_hours * 3_600_000,
})
