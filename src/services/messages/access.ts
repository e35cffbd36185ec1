// Who may read and change which mail: the one rule every function of this folder applies
// (DESIGN.md "Identity and access"), and the lookups that apply it.
// - A session reaches the mailboxes its user owns or was granted, whatever the user's role:
//   owners and admins manage every mailbox's settings but read mail only where granted.
// - An org-wide admin, read or write key reaches every mailbox of its org; a mailbox key only
//   its mailbox; a send key none. (Whether the key may write at all is the route's scope.)
// Invariants: every lookup is scoped by the caller's org and by this rule; something the caller
// cannot reach is 404 (never 403, which would confirm it exists); a message with deleted_at set
// is invisible.

import type { Selectable } from 'kysely'
import { parseAddress } from '../../mail/address.ts'
import type { Folder, MessageTable, ThreadTable } from '../../store/schema.ts'
import type { Principal } from '../accounts/principal.ts'
import { ServiceError } from '../errors.ts'
import type { Tx } from './context.ts'

export type MessageRow = Selectable<MessageTable>
export type ThreadRow = Selectable<ThreadTable>

export interface MailboxRef {
  id: string
  org_id: string
  address: string
}

/** The ids of the mailboxes `p` reaches, as a subquery to filter by. */
export function reachableMailboxIds(db: Tx, p: Principal) {
  const q = db.selectFrom('mailboxes as rmb').select('rmb.id').where('rmb.org_id', '=', p.org_id)
  if (p.kind === 'key') {
    if (p.key_scope === 'mailbox') return q.where('rmb.id', '=', p.mailbox_id ?? '')
    if (p.key_scope === 'admin' || p.key_scope === 'read' || p.key_scope === 'write') return q
    return q.where('rmb.id', '=', '') // send keys read no mail
  }
  const userId = p.user_id ?? ''
  return q.where((eb) =>
    eb.or([
      eb('rmb.owner_user_id', '=', userId),
      eb.exists(
        eb
          .selectFrom('mailbox_grants as g')
          .select('g.user_id')
          .whereRef('g.mailbox_id', '=', 'rmb.id')
          .where('g.user_id', '=', userId)
          .where('g.org_id', '=', p.org_id),
      ),
    ]),
  )
}

const notFound = (what: string) =>
  new ServiceError('not_found', 'MAILBOX_NOT_FOUND', `No mailbox ${what} whose mail you can read.`)

/** A mailbox by id or address, if `p` reaches it. */
export async function findReadableMailbox(db: Tx, p: Principal, idOrAddress: string): Promise<MailboxRef> {
  let q = db
    .selectFrom('mailboxes')
    .select(['id', 'org_id', 'address'])
    .where('org_id', '=', p.org_id)
    .where('id', 'in', reachableMailboxIds(db, p))
  if (idOrAddress.includes('@')) {
    let canonical: string
    try {
      canonical = parseAddress(idOrAddress).canonical
    } catch {
      throw notFound(idOrAddress)
    }
    q = q.where('address', '=', canonical)
  } else q = q.where('id', '=', idOrAddress)
  const row = await q.executeTakeFirst()
  if (!row) throw notFound(idOrAddress)
  return row
}

/**
 * The mailbox a request is about: the one named; else the one a folder or thread id belongs to;
 * else the only one `p` reaches. Null when `p` reaches none (callers answer an empty list);
 * MAILBOX_REQUIRED when it reaches several and none is named.
 */
export async function targetMailbox(
  db: Tx,
  p: Principal,
  given: string | undefined,
  hints: { folder?: string; thread?: string } = {},
): Promise<MailboxRef | null> {
  if (given) return findReadableMailbox(db, p, given)
  if (hints.folder?.startsWith('fld_')) {
    const f = await db
      .selectFrom('folders')
      .select('mailbox_id')
      .where('id', '=', hints.folder)
      .where('org_id', '=', p.org_id)
      .where('mailbox_id', 'in', reachableMailboxIds(db, p))
      .executeTakeFirst()
    if (!f) throw new ServiceError('not_found', 'FOLDER_NOT_FOUND', `No folder ${hints.folder}.`)
    return findReadableMailbox(db, p, f.mailbox_id)
  }
  if (hints.thread) {
    const t = await findThread(db, p, hints.thread)
    return findReadableMailbox(db, p, t.mailbox_id)
  }
  const rows = await db
    .selectFrom('mailboxes')
    .select(['id', 'org_id', 'address'])
    .where('org_id', '=', p.org_id)
    .where('id', 'in', reachableMailboxIds(db, p))
    .orderBy('address')
    .limit(2)
    .execute()
  if (rows.length === 0) return null
  if (rows.length > 1)
    throw new ServiceError(
      'invalid',
      'MAILBOX_REQUIRED',
      'You can read several mailboxes: name one with ?mailbox= (its id or address).',
      {
        details: [{ field: 'querystring.mailbox', message: 'is required when you reach several mailboxes' }],
      },
    )
  return rows[0] as MailboxRef
}

/** The columns of `messages` the services read (never the PostgreSQL search vector). */
export const MESSAGE_COLUMNS = [
  'm.id',
  'm.org_id',
  'm.mailbox_id',
  'm.thread_id',
  'm.blob_sha256',
  'm.size',
  'm.message_id_header',
  'm.in_reply_to',
  'm.references_header',
  'm.subject',
  'm.from_address',
  'm.from_name',
  'm.to_json',
  'm.cc_json',
  'm.reply_to_json',
  'm.sent_at',
  'm.received_at',
  'm.has_attachments',
  'm.preview',
  'm.auth_results',
  'm.spam_score',
  'm.attachments',
  'm.envelope',
  'm.created_at',
  'm.deleted_at',
] as const

/** A message `p` may read, else 404. */
export async function findMessage(db: Tx, p: Principal, id: string): Promise<MessageRow> {
  const row = await db
    .selectFrom('messages as m')
    .select(MESSAGE_COLUMNS)
    .where('m.id', '=', id)
    .where('m.org_id', '=', p.org_id)
    .where('m.deleted_at', 'is', null)
    .where('m.mailbox_id', 'in', reachableMailboxIds(db, p))
    .executeTakeFirst()
  if (!row) throw new ServiceError('not_found', 'MESSAGE_NOT_FOUND', `No message ${id} that you can read.`)
  return row
}

/** A thread `p` may read, else 404. */
export async function findThread(db: Tx, p: Principal, id: string): Promise<ThreadRow> {
  const row = await db
    .selectFrom('threads')
    .selectAll()
    .where('id', '=', id)
    .where('org_id', '=', p.org_id)
    .where('mailbox_id', 'in', reachableMailboxIds(db, p))
    .executeTakeFirst()
  if (!row) throw new ServiceError('not_found', 'THREAD_NOT_FOUND', `No thread ${id} that you can read.`)
  return row
}

/** A folder by id when `p` reaches its mailbox, else 404. */
export async function findFolderById(db: Tx, p: Principal, id: string): Promise<Folder> {
  const row = await db
    .selectFrom('folders')
    .selectAll()
    .where('id', '=', id)
    .where('org_id', '=', p.org_id)
    .where('mailbox_id', 'in', reachableMailboxIds(db, p))
    .executeTakeFirst()
  if (!row) throw new ServiceError('not_found', 'FOLDER_NOT_FOUND', `No folder ${id} that you can read.`)
  return row
}

const ROLES = new Set(['inbox', 'sent', 'drafts', 'junk', 'trash', 'archive'])

/**
 * A folder of an already reached mailbox by id, exact name, role, or name ignoring case (in
 * that order), else 404.
 */
export async function findFolder(db: Tx, mailbox: MailboxRef, ref: string): Promise<Folder> {
  const folders = await mailboxFolders(db, mailbox)
  const found =
    folders.find((f) => f.id === ref) ??
    folders.find((f) => f.name === ref) ??
    (ROLES.has(ref.toLowerCase()) ? folders.find((f) => f.role === ref.toLowerCase()) : undefined) ??
    folders.find((f) => f.name.toLowerCase() === ref.toLowerCase())
  if (!found)
    throw new ServiceError('not_found', 'FOLDER_NOT_FOUND', `No folder ${ref} in ${mailbox.address}.`)
  return found
}

/** Every folder of a reached mailbox, by name. */
export async function mailboxFolders(db: Tx, mailbox: MailboxRef): Promise<Folder[]> {
  return db
    .selectFrom('folders')
    .selectAll()
    .where('mailbox_id', '=', mailbox.id)
    .where('org_id', '=', mailbox.org_id)
    .orderBy('name')
    .execute()
}

/** The folder of a role; every mailbox is created with one of each. */
export async function roleFolder(db: Tx, mailbox: { id: string; org_id: string }, role: Folder['role']) {
  const f = await db
    .selectFrom('folders')
    .selectAll()
    .where('mailbox_id', '=', mailbox.id)
    .where('org_id', '=', mailbox.org_id)
    .where('role', '=', role)
    .orderBy('created_at')
    .executeTakeFirst()
  if (!f) throw new ServiceError('conflict', 'ROLE_FOLDER_MISSING', `This mailbox has no ${role} folder.`)
  return f
}
