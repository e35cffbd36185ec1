// Saving a draft through the API: create, or update (the fields given replace those fields;
// `attachments` replaces the list of uploads). Each save composes the whole message anew
// (Bcc kept, as a stored draft should), files it in the mailbox's Drafts folder with \Draft and
// \Seen, and expunges the message it replaces, so IMAP clients see the old one vanish and the
// new one arrive. A draft a mail client stored is adopted on its first API update: its fields
// come from its message, its attachment parts become uploads the draft links.
// Invariants:
// - From is the mailbox or one of its aliases (checked on every save, and again on send).
// - The new message, the old one's removal, the row and its links are one transaction; the row
//   is updated only if it still holds the message this save read (else DRAFT_CHANGED), so two
//   concurrent saves cannot both win.
// - The mailbox quota holds; staged bytes of a save that fails are discarded.

import addressparser from 'nodemailer/lib/addressparser'
import { ComposeError, composeMessage } from '../../mail/compose.ts'
import { parseMessage } from '../../mail/parse.ts'
import type { StagedBlob } from '../../store/blobs/blob-store.ts'
import { newId } from '../../store/ids.ts'
import type { Principal } from '../accounts/principal.ts'
import {
  type AttachmentRow,
  checkFilename,
  findAttachments,
  mediaTypeOrDefault,
} from '../attachments/attachments.ts'
import { fileMessage } from '../delivery/file-message.ts'
import { ServiceError } from '../errors.ts'
import { ensureRoom } from '../mailstore/status.ts'
import { findReadableMailbox, type MailboxRef, roleFolder, targetMailbox } from '../messages/access.ts'
import type { Tx } from '../messages/context.ts'
import { mailChanged } from '../messages/context.ts'
import { DRAFT, SEEN } from '../messages/folder-ops.ts'

/** The keyword JMAP (RFC 8621) and webmail use for drafts, set beside IMAP's \Draft flag. */
const DRAFT_KEYWORD = '$draft'

import { parseForReading } from '../messages/mime.ts'
import { deletePermanently } from '../messages/purge.ts'
import { parseAddresses, senderMailbox } from '../outbound/send.ts'
import {
  type DraftFields,
  type DraftsContext,
  type DraftView,
  draftChanged,
  draftView,
  type FoundDraft,
  fieldsOfMessage,
  findDraft,
  needScope,
} from './drafts.ts'

export interface DraftInput {
  /** Create only: the mailbox (id or address); default the only one the caller reaches. */
  mailbox?: string
  from?: string
  to?: string | string[]
  cc?: string | string[]
  bcc?: string | string[]
  reply_to?: string | string[]
  subject?: string
  text?: string | null
  html?: string | null
  /** Upload ids (POST /v1/attachments), in order; replaces the draft's list. */
  attachments?: string[]
  in_reply_to?: string | null
}

const MAX_ADDRESSES = 1000

const invalid = (field: string, message: string) =>
  new ServiceError('invalid', 'INVALID_DRAFT', `${field}: ${message}`, { details: [{ field, message }] })

const asList = (v: string | string[] | undefined): string[] | undefined =>
  v === undefined ? undefined : Array.isArray(v) ? v : v === '' ? [] : [v]

/** A part of a client-stored draft that becomes an upload when the draft is adopted. */
interface AdoptedPart {
  filename: string
  content_type: string
  content: Buffer
}

/** What goes into the draft's message besides its fields. */
interface Parts {
  uploads: AttachmentRow[]
  adopted: AdoptedPart[]
}

async function mailboxOf(db: Tx, p: Principal, given: string | undefined): Promise<MailboxRef> {
  const m = given ? await findReadableMailbox(db, p, given) : await targetMailbox(db, p, undefined)
  if (!m) throw new ServiceError('not_found', 'MAILBOX_NOT_FOUND', 'You reach no mailbox to keep a draft in.')
  return m
}

/** The session user's default send-from alias when it sends as this mailbox, else the mailbox address. */
async function defaultFrom(ctx: DraftsContext, p: Principal, mailbox: MailboxRef): Promise<string> {
  if (p.kind !== 'session' || !p.user_id) return mailbox.address
  const alias = await ctx.store.db
    .selectFrom('users as u')
    .innerJoin('aliases as a', 'a.id', 'u.default_alias_id')
    .select('a.address')
    .where('u.id', '=', p.user_id)
    .where('u.org_id', '=', p.org_id)
    .where('a.org_id', '=', p.org_id)
    .executeTakeFirst()
  if (alias && (await senderMailbox(ctx, alias.address)) === mailbox.id) return alias.address
  return mailbox.address
}

/** Checks the fields; returns the parsed From (which must be the mailbox or one of its aliases). */
async function checkFields(ctx: DraftsContext, mailbox: MailboxRef, f: DraftFields) {
  const [from] = parseAddresses('from', [f.from], 1)
  if (!from) throw invalid('from', 'is required')
  const own =
    from.address.toLowerCase() === mailbox.address || (await senderMailbox(ctx, from.address)) === mailbox.id
  if (!own)
    throw new ServiceError(
      'forbidden',
      'SENDER_NOT_ALLOWED',
      `from: a draft of ${mailbox.address} is sent as the mailbox or one of its aliases`,
      { details: [{ field: 'from', message: 'not this mailbox or one of its aliases' }] },
    )
  const list = (field: keyof DraftFields, v: string[]) => parseAddresses(field, v, MAX_ADDRESSES)
  if (/[\r\n\0]/.test(f.subject)) throw invalid('subject', 'must not contain line breaks (CR or LF)')
  if (f.in_reply_to !== null && !/^<[^<>\s]{1,900}>$/.test(f.in_reply_to))
    throw invalid('in_reply_to', 'must be one Message-ID, e.g. <abc@example.com>')
  return {
    from,
    to: list('to', f.to),
    cc: list('cc', f.cc),
    bcc: list('bcc', f.bcc),
    replyTo: list('reply_to', f.reply_to),
  }
}

/** The fields after a patch; a missing field keeps its value. */
function merge(base: DraftFields, input: DraftInput): DraftFields {
  const inReplyTo = input.in_reply_to === undefined ? base.in_reply_to : input.in_reply_to
  const trimmed = inReplyTo?.trim() ?? null
  return {
    from: input.from ?? base.from,
    to: asList(input.to) ?? base.to,
    cc: asList(input.cc) ?? base.cc,
    bcc: asList(input.bcc) ?? base.bcc,
    reply_to: asList(input.reply_to) ?? base.reply_to,
    subject: input.subject ?? base.subject,
    text: input.text === undefined ? base.text : input.text,
    html: input.html === undefined ? base.html : input.html,
    in_reply_to: trimmed ? (trimmed.startsWith('<') ? trimmed : `<${trimmed}>`) : null,
  }
}

/** References for a reply: the replied message's own references (when it is in this mailbox) and its id. */
export async function referencesFor(
  db: Tx,
  mailbox: MailboxRef,
  inReplyTo: string | null,
): Promise<string[]> {
  if (!inReplyTo) return []
  const parent = await db
    .selectFrom('messages')
    .select('references_header')
    .where('org_id', '=', mailbox.org_id)
    .where('mailbox_id', '=', mailbox.id)
    .where('message_id_header', '=', inReplyTo)
    .executeTakeFirst()
  const before = parent?.references_header?.split(/\s+/).filter(Boolean) ?? []
  return [...before.slice(-20), inReplyTo]
}

/** The stored draft message: all fields, Bcc kept, a fresh Message-ID and Date. */
export async function composeDraft(
  ctx: DraftsContext,
  mailbox: MailboxRef,
  fields: DraftFields,
  attachments: { filename: string; content: Buffer; contentType: string | null }[],
): Promise<Buffer> {
  const a = await checkFields(ctx, mailbox, fields)
  const now = ctx.clock.now()
  try {
    return await composeMessage({
      ...a,
      subject: fields.subject,
      text: fields.text,
      html: fields.html,
      attachments,
      messageId: `${newId('msg', now).slice(4)}@${a.from.address.split('@').pop()}`,
      date: new Date(now),
      inReplyTo: fields.in_reply_to,
      references: await referencesFor(ctx.store.db, mailbox, fields.in_reply_to),
      keepBcc: true,
    })
  } catch (err) {
    if (err instanceof ComposeError) throw invalid(err.field, err.message)
    throw err
  }
}

export async function createDraft(ctx: DraftsContext, p: Principal, input: DraftInput): Promise<DraftView> {
  needScope(p, 'write')
  const mailbox = await mailboxOf(ctx.store.db, p, input.mailbox)
  const base: DraftFields = {
    from: await defaultFrom(ctx, p, mailbox),
    to: [],
    cc: [],
    bcc: [],
    reply_to: [],
    subject: '',
    text: null,
    html: null,
    in_reply_to: null,
  }
  const uploads = await findAttachments(ctx.store.db, p, input.attachments ?? [])
  return save(ctx, p, mailbox, null, merge(base, input), { uploads, adopted: [] })
}

export async function updateDraft(
  ctx: DraftsContext,
  p: Principal,
  id: string,
  input: DraftInput,
): Promise<DraftView> {
  needScope(p, 'write')
  const db = ctx.store.db
  if (input.mailbox !== undefined)
    throw invalid('mailbox', 'a draft stays in its mailbox; create a new draft for another one')
  const d = await findDraft(db, p, id)
  const mailbox = await findReadableMailbox(db, p, d.message.mailbox_id)
  let base: DraftFields
  let parts: Parts
  if (d.row) {
    base = JSON.parse(d.row.fields) as DraftFields
    const linked = await db
      .selectFrom('draft_attachments as l')
      .innerJoin('attachments as a', 'a.id', 'l.attachment_id')
      .selectAll('a')
      .where('l.draft_id', '=', d.row.id)
      .where('l.org_id', '=', p.org_id)
      .orderBy('l.position')
      .execute()
    parts = { uploads: linked, adopted: [] }
  } else {
    const adopted = await readClientDraft(ctx, d)
    base = adopted.fields
    parts = { uploads: [], adopted: adopted.parts }
  }
  if (input.attachments !== undefined)
    parts = { uploads: await findAttachments(db, p, input.attachments), adopted: [] }
  return save(ctx, p, mailbox, d, merge(base, input), parts)
}

/** A draft a mail client stored, read back: its fields and its attachment parts. */
export async function readClientDraft(
  ctx: Pick<DraftsContext, 'blobs'>,
  d: FoundDraft,
): Promise<{ fields: DraftFields; parts: AdoptedPart[] }> {
  const m = d.message
  const r = await parseForReading(await ctx.blobs.get(m.org_id, m.blob_sha256))
  if (r.warning)
    throw new ServiceError(
      'conflict',
      'DRAFT_UNREADABLE',
      `This draft cannot be read as a message (${r.warning}); change or send it from the mail client that wrote it.`,
    )
  const bcc = r.headers
    .filter((h) => h.name.toLowerCase() === 'bcc')
    .flatMap((h) => addressparser(h.value, { flatten: true }) as { name: string; address: string }[])
    .filter((a) => a.address)
    .map((a) => (a.name ? `${a.name} <${a.address}>` : a.address))
  return {
    fields: { ...fieldsOfMessage(m), bcc, text: r.text, html: r.html },
    parts: r.attachments.map((a, i) => ({
      filename: safeName(a.filename, i),
      content_type: mediaTypeOrDefault(a.content_type),
      content: a.content,
    })),
  }
}

const safeName = (name: string | null, i: number) => {
  try {
    return checkFilename(name ?? '', 'filename')
  } catch {
    return `attachment-${i + 1}`
  }
}

async function save(
  ctx: DraftsContext,
  p: Principal,
  mailbox: MailboxRef,
  old: FoundDraft | null,
  fields: DraftFields,
  parts: Parts,
): Promise<DraftView> {
  const uploadBytes = []
  for (const u of parts.uploads)
    uploadBytes.push({
      filename: u.filename,
      contentType: u.content_type,
      content: await ctx.blobs.get(u.org_id, u.sha256),
    })
  const adoptedBytes = parts.adopted.map((a) => ({
    filename: a.filename,
    contentType: a.content_type,
    content: a.content,
  }))
  const raw = await composeDraft(ctx, mailbox, fields, [...uploadBytes, ...adoptedBytes])
  const parsed = await parseMessage(raw)
  const staged: StagedBlob[] = [await ctx.blobs.stage(mailbox.org_id, raw)]
  try {
    for (const a of parts.adopted) staged.push(await ctx.blobs.stage(mailbox.org_id, a.content))
    const draftId = await ctx.store.db.transaction().execute(async (tx) => {
      const now = ctx.clock.now()
      const drafts = await roleFolder(tx, mailbox, 'drafts')
      const freed = old ? Number(old.message.size) : 0
      await ensureRoom(tx, { org_id: mailbox.org_id, mailbox_id: mailbox.id }, raw.length, freed)
      const blob = await ctx.blobs.commitStaged(tx, staged[0] as StagedBlob)
      const actor = p.key_id ?? p.user_id ?? 'unknown'
      const id = old?.row?.id ?? newId('drf', now)
      const messageId = await fileMessage(
        tx,
        { blobs: ctx.blobs, bus: ctx.bus, dialect: ctx.store.dialect },
        {
          org_id: mailbox.org_id,
          mailbox_id: mailbox.id,
          role: 'inbox',
          folder_id: drafts.id,
          blob,
          parsed,
          now,
          auth_summary: null,
          envelope: null,
          // \Draft for IMAP clients, $draft as JMAP and the issue name it.
          keywords: [DRAFT, DRAFT_KEYWORD, SEEN],
          event: { type: 'draft.saved', actor, ip: null, payload: { draft_id: id, mailbox_id: mailbox.id } },
        },
      )
      // Client-stored parts become uploads of this draft (one blob reference each).
      const adoptedRows: AttachmentRow[] = []
      for (const [i, a] of parts.adopted.entries()) {
        const s = await ctx.blobs.commitStaged(tx, staged[i + 1] as StagedBlob)
        const row: AttachmentRow = {
          id: newId('att', now),
          org_id: mailbox.org_id,
          mailbox_id: mailbox.id,
          api_key_id: p.key_id,
          user_id: p.kind === 'session' ? p.user_id : null,
          filename: a.filename,
          content_type: a.content_type,
          size: s.size,
          sha256: s.sha256,
          created_at: now,
          expires_at: now + ctx.attachments.unusedMs,
        }
        await tx.insertInto('attachments').values(row).execute()
        await ctx.blobs.addRef(tx, row.org_id, row.sha256)
        adoptedRows.push(row)
      }
      if (old?.row) {
        const r = await tx
          .updateTable('drafts')
          .set({ message_id: messageId, fields: JSON.stringify(fields), updated_at: now })
          .where('id', '=', old.row.id)
          .where('org_id', '=', mailbox.org_id)
          .where('message_id', '=', old.message.id)
          .executeTakeFirst()
        if (Number(r.numUpdatedRows) !== 1) throw draftChanged()
        await tx.deleteFrom('draft_attachments').where('draft_id', '=', id).execute()
      } else
        await tx
          .insertInto('drafts')
          .values({
            id,
            org_id: mailbox.org_id,
            mailbox_id: mailbox.id,
            message_id: messageId,
            fields: JSON.stringify(fields),
            created_at: now,
            updated_at: now,
          })
          .execute()
      const links = [...parts.uploads, ...adoptedRows]
      if (links.length)
        await tx
          .insertInto('draft_attachments')
          .values(
            links.map((a, position) => ({
              draft_id: id,
              position,
              attachment_id: a.id,
              org_id: mailbox.org_id,
            })),
          )
          .execute()
      if (old) {
        const still = await tx
          .selectFrom('messages')
          .select('id')
          .where('id', '=', old.message.id)
          .where('org_id', '=', mailbox.org_id)
          .executeTakeFirst()
        if (!still) throw draftChanged()
        await deletePermanently(tx, { blobs: ctx.blobs, dialect: ctx.store.dialect }, old.message, now)
      }
      await mailChanged(ctx, tx, mailbox.org_id, mailbox.id, 'draft saved')
      return id
    })
    return draftView(ctx.store.db, p, await findDraft(ctx.store.db, p, draftId))
  } catch (err) {
    for (const s of staged) await ctx.blobs.discard(s).catch(() => {})
    throw err
  }
}
