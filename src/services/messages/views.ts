// What the API shows of stored messages: rows plus their folders (with UIDs) and keywords,
// loaded for a whole page in two queries. System flags are booleans; `keywords` lists the
// others ($Important, custom keywords). Labels are the role-less folders a message is in.
// Times stay epoch milliseconds here; the HTTP edge writes ISO 8601.

import type { Folder } from '../../store/schema.ts'
import type { MessageRow } from './access.ts'
import type { Tx } from './context.ts'
import { ANSWERED, DRAFT, FLAGGED, SEEN } from './folder-ops.ts'

export interface AddressView {
  name: string
  address: string
}

export interface FolderMembership {
  id: string
  name: string
  role: Folder['role']
  uid: number
}

export interface MessageSummary {
  id: string
  mailbox_id: string
  thread_id: string | null
  subject: string
  from: AddressView | null
  to: AddressView[]
  cc: AddressView[]
  reply_to: AddressView[]
  sent_at: number | null
  received_at: number
  size: number
  has_attachments: boolean
  preview: string
  seen: boolean
  flagged: boolean
  answered: boolean
  draft: boolean
  keywords: string[]
  folders: FolderMembership[]
  labels: { id: string; name: string }[]
}

export interface StoredAttachment {
  index: number
  filename: string | null
  content_type: string
  size: number
  content_id: string | null
  disposition: string | null
}

/** A JSON address list as stored ([{name, address}]); anything unreadable is an empty list. */
export function addressList(json: string | null | undefined): AddressView[] {
  if (!json) return []
  try {
    const v: unknown = JSON.parse(json)
    if (!Array.isArray(v)) return []
    return v
      .filter((a): a is { name?: unknown; address?: unknown } => typeof a === 'object' && a !== null)
      .map((a) => ({
        name: typeof a.name === 'string' ? a.name : '',
        address: typeof a.address === 'string' ? a.address : '',
      }))
  } catch {
    return []
  }
}

/** The attachment list stored at delivery. */
export function storedAttachments(json: string | null | undefined): StoredAttachment[] {
  try {
    const v: unknown = JSON.parse(json ?? '[]')
    if (!Array.isArray(v)) return []
    return v.map((a: Record<string, unknown>, i) => ({
      index: typeof a.index === 'number' ? a.index : i,
      filename: typeof a.filename === 'string' ? a.filename : null,
      content_type: typeof a.content_type === 'string' ? a.content_type : 'application/octet-stream',
      size: typeof a.size === 'number' ? a.size : 0,
      content_id: typeof a.content_id === 'string' ? a.content_id : null,
      disposition: typeof a.disposition === 'string' ? a.disposition : null,
    }))
  } catch {
    return []
  }
}

export interface MessageExtras {
  folders: Map<string, FolderMembership[]>
  keywords: Map<string, string[]>
}

/** Folders and keywords of the given messages (already authorised), in two queries. */
export async function loadExtras(db: Tx, orgId: string, ids: string[]): Promise<MessageExtras> {
  const folders = new Map<string, FolderMembership[]>()
  const keywords = new Map<string, string[]>()
  for (let i = 0; i < ids.length; i += CHUNK)
    await loadChunk(db, orgId, ids.slice(i, i + CHUNK), folders, keywords)
  return { folders, keywords }
}

const CHUNK = 500

async function loadChunk(
  db: Tx,
  orgId: string,
  ids: string[],
  folders: MessageExtras['folders'],
  keywords: MessageExtras['keywords'],
) {
  const memberships = await db
    .selectFrom('folder_messages as fm')
    .innerJoin('folders as f', 'f.id', 'fm.folder_id')
    .select(['fm.message_id', 'fm.uid', 'f.id', 'f.name', 'f.role'])
    .where('fm.org_id', '=', orgId)
    .where('fm.message_id', 'in', ids)
    .orderBy('f.name')
    .execute()
  for (const r of memberships) {
    const list = folders.get(r.message_id) ?? []
    list.push({ id: r.id, name: r.name, role: r.role, uid: Number(r.uid) })
    folders.set(r.message_id, list)
  }
  const kws = await db
    .selectFrom('message_keywords')
    .select(['message_id', 'keyword'])
    .where('org_id', '=', orgId)
    .where('message_id', 'in', ids)
    .orderBy('keyword')
    .execute()
  for (const r of kws) {
    const list = keywords.get(r.message_id) ?? []
    list.push(r.keyword)
    keywords.set(r.message_id, list)
  }
}

export function summaryOf(m: MessageRow, extras: MessageExtras): MessageSummary {
  const kws = extras.keywords.get(m.id) ?? []
  const folders = extras.folders.get(m.id) ?? []
  return {
    id: m.id,
    mailbox_id: m.mailbox_id,
    thread_id: m.thread_id,
    subject: m.subject,
    from: m.from_address || m.from_name ? { name: m.from_name ?? '', address: m.from_address ?? '' } : null,
    to: addressList(m.to_json),
    cc: addressList(m.cc_json),
    reply_to: addressList(m.reply_to_json),
    sent_at: m.sent_at === null ? null : Number(m.sent_at),
    received_at: Number(m.received_at),
    size: Number(m.size),
    has_attachments: Number(m.has_attachments) === 1,
    preview: m.preview,
    seen: kws.includes(SEEN),
    flagged: kws.includes(FLAGGED),
    answered: kws.includes(ANSWERED),
    draft: kws.includes(DRAFT),
    keywords: kws.filter((k) => !k.startsWith('\\')),
    folders,
    labels: folders.filter((f) => f.role === null).map((f) => ({ id: f.id, name: f.name })),
  }
}

/** Summaries of a page of rows, in the rows' order. */
export async function summaries(db: Tx, orgId: string, rows: MessageRow[]): Promise<MessageSummary[]> {
  const extras = await loadExtras(
    db,
    orgId,
    rows.map((r) => r.id),
  )
  return rows.map((r) => summaryOf(r, extras))
}
