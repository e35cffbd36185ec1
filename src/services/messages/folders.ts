// Folders of a mailbox (IMAP mailboxes: '/' is the hierarchy delimiter) and labels, which are
// the role-less folders seen Gmail-style (DESIGN.md "Data model principles").
// Rules:
// - Names: 1..200 characters, no control characters, no '*' or '%' (IMAP LIST wildcards), no
//   empty hierarchy level ('a//b', '/a', 'a/'), no level with surrounding spaces; "INBOX" (any
//   case) is the inbox's own name. Names are unique in a mailbox ignoring case.
// - A new folder gets a UIDVALIDITY above every one the mailbox has used (RFC 9051 2.3.1.1:
//   a name deleted and created again must not reuse it). Parents are not created implicitly.
// - Renaming takes the children along ('a' -> 'b' renames 'a/x' to 'b/x') and keeps UIDs and
//   UIDVALIDITY (the messages stay). The inbox cannot be renamed; other role folders can, and
//   keep their role. A folder cannot move under itself.
// - Role folders cannot be deleted; neither can a folder with children (delete those first).
//   Deleting removes every membership through folder-ops (tombstones, MODSEQ). A message left
//   in no folder goes to Trash when a FOLDER is deleted (IMAP DELETE expunges; Trash keeps it
//   recoverable until the purge) and to Archive when a LABEL is deleted (labels never hold the
//   only copy, as in Gmail).

import { sql } from 'kysely'
import { newId } from '../../store/ids.ts'
import type { Folder } from '../../store/schema.ts'
import type { Principal } from '../accounts/principal.ts'
import { ServiceError } from '../errors.ts'
import {
  findFolderById,
  findReadableMailbox,
  type MailboxRef,
  mailboxFolders,
  targetMailbox,
} from './access.ts'
import { type MessagesContext, mailChanged, type Tx } from './context.ts'
import { removeFromFolder, SEEN } from './folder-ops.ts'
import { rehome } from './moves.ts'

export interface FolderView {
  id: string
  mailbox_id: string
  name: string
  role: Folder['role']
  /** Name of the level above ('a' for 'a/b'), or null. */
  parent: string | null
  subscribed: boolean
  uidvalidity: number
  uidnext: number
  highestmodseq: number
  total: number
  unread: number
  created_at: number
  updated_at: number
}

export interface LabelView {
  id: string
  mailbox_id: string
  name: string
  total: number
  unread: number
  created_at: number
  updated_at: number
}

const MAX_NAME = 200

export function checkFolderName(name: string, field = 'body.name'): void {
  const problem = (() => {
    if (name.length === 0 || name.length > MAX_NAME) return `must be 1 to ${MAX_NAME} characters`
    if (/[\p{Cc}\p{Cf}]/u.test(name)) return 'must not contain control or format characters'
    if (/[*%]/.test(name)) return "must not contain '*' or '%'"
    const levels = name.split('/')
    if (levels.some((l) => l === '')) return "must not start or end with '/' or contain '//'"
    if (levels.some((l) => l.trim() !== l)) return 'hierarchy levels must not start or end with spaces'
    if (name.toLowerCase() === 'inbox') return 'INBOX is the name of the inbox'
    return null
  })()
  if (problem)
    throw new ServiceError('invalid', 'INVALID_FOLDER_NAME', `The folder name ${problem}.`, {
      details: [{ field, message: problem }],
    })
}

const parentOf = (name: string) => (name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : null)

async function counts(db: Tx, orgId: string, folderIds: string[]) {
  const out = new Map<string, { total: number; unread: number }>()
  if (folderIds.length === 0) return out
  const rows = await db
    .selectFrom('folder_messages as fm')
    .innerJoin('messages as m', 'm.id', 'fm.message_id')
    .select((eb) => [
      'fm.folder_id',
      eb.fn.countAll<number>().as('total'),
      sql<number>`SUM(CASE WHEN EXISTS (SELECT 1 FROM message_keywords k WHERE k.message_id = fm.message_id AND k.keyword = ${SEEN}) THEN 0 ELSE 1 END)`.as(
        'unread',
      ),
    ])
    .where('fm.org_id', '=', orgId)
    .where('fm.folder_id', 'in', folderIds)
    .where('m.deleted_at', 'is', null)
    .groupBy('fm.folder_id')
    .execute()
  for (const r of rows) out.set(r.folder_id, { total: Number(r.total), unread: Number(r.unread ?? 0) })
  return out
}

async function folderViews(db: Tx, folders: Folder[]): Promise<FolderView[]> {
  const c = await counts(
    db,
    folders[0]?.org_id ?? '',
    folders.map((f) => f.id),
  )
  return folders.map((f) => ({
    id: f.id,
    mailbox_id: f.mailbox_id,
    name: f.name,
    role: f.role,
    parent: parentOf(f.name),
    subscribed: Number(f.subscribed) === 1,
    uidvalidity: Number(f.uidvalidity),
    uidnext: Number(f.uidnext),
    highestmodseq: Number(f.highestmodseq),
    total: c.get(f.id)?.total ?? 0,
    unread: c.get(f.id)?.unread ?? 0,
    created_at: Number(f.created_at),
    updated_at: Number(f.updated_at),
  }))
}

const labelView = (f: FolderView): LabelView => ({
  id: f.id,
  mailbox_id: f.mailbox_id,
  name: f.name,
  total: f.total,
  unread: f.unread,
  created_at: f.created_at,
  updated_at: f.updated_at,
})

async function oneView(db: Tx, f: Folder): Promise<FolderView> {
  return (await folderViews(db, [f]))[0] as FolderView
}

export async function listFolders(
  ctx: MessagesContext,
  p: Principal,
  mailbox: string,
): Promise<FolderView[]> {
  const db = ctx.store.db
  return folderViews(db, await mailboxFolders(db, await findReadableMailbox(db, p, mailbox)))
}

function checkUnique(folders: Folder[], name: string, except: (f: Folder) => boolean = () => false) {
  const clash = folders.find((f) => !except(f) && f.name.toLowerCase() === name.toLowerCase())
  if (clash)
    throw new ServiceError('conflict', 'FOLDER_EXISTS', `A folder named ${clash.name} already exists.`)
}

async function create(ctx: MessagesContext, mailbox: MailboxRef, name: string, subscribed: boolean) {
  checkFolderName(name)
  const now = ctx.clock.now()
  return ctx.store.db.transaction().execute(async (tx) => {
    const folders = await mailboxFolders(tx, mailbox)
    checkUnique(folders, name)
    const used = Math.max(0, ...folders.map((f) => Number(f.uidvalidity)))
    const row: Folder = {
      id: newId('fld', now),
      org_id: mailbox.org_id,
      mailbox_id: mailbox.id,
      name,
      role: null,
      uidvalidity: Math.max(Math.floor(now / 1000), used + 1),
      uidnext: 1,
      highestmodseq: 0,
      subscribed: subscribed ? 1 : 0,
      recent_uid: 1,
      created_at: now,
      updated_at: now,
    }
    await tx.insertInto('folders').values(row).execute()
    await mailChanged(ctx, tx, mailbox.org_id, mailbox.id, 'folders')
    return oneView(tx, row)
  })
}

export async function createFolder(
  ctx: MessagesContext,
  p: Principal,
  mailbox: string,
  input: { name: string; subscribed?: boolean },
): Promise<FolderView> {
  return create(
    ctx,
    await findReadableMailbox(ctx.store.db, p, mailbox),
    input.name,
    input.subscribed ?? true,
  )
}

async function update(
  ctx: MessagesContext,
  folder: Folder,
  patch: { name?: string; subscribed?: boolean },
): Promise<FolderView> {
  if (patch.name !== undefined) checkFolderName(patch.name)
  const now = ctx.clock.now()
  return ctx.store.db.transaction().execute(async (tx) => {
    const mailbox = { id: folder.mailbox_id, org_id: folder.org_id, address: '' }
    if (patch.name !== undefined && patch.name !== folder.name) {
      const to = patch.name
      if (folder.role === 'inbox')
        throw new ServiceError('conflict', 'ROLE_FOLDER', 'The inbox cannot be renamed.')
      if (to.startsWith(`${folder.name}/`))
        throw new ServiceError('invalid', 'INVALID_FOLDER_NAME', 'A folder cannot move under itself.', {
          details: [{ field: 'body.name', message: 'is inside the folder being renamed' }],
        })
      const folders = await mailboxFolders(tx, mailbox)
      const moving = folders.filter((f) => f.id === folder.id || f.name.startsWith(`${folder.name}/`))
      const ids = new Set(moving.map((f) => f.id))
      for (const f of moving)
        checkUnique(folders, to + f.name.slice(folder.name.length), (x) => ids.has(x.id))
      for (const f of moving)
        await tx
          .updateTable('folders')
          .set({ name: to + f.name.slice(folder.name.length), updated_at: now })
          .where('id', '=', f.id)
          .where('org_id', '=', folder.org_id)
          .execute()
    }
    if (patch.subscribed !== undefined)
      await tx
        .updateTable('folders')
        .set({ subscribed: patch.subscribed ? 1 : 0, updated_at: now })
        .where('id', '=', folder.id)
        .where('org_id', '=', folder.org_id)
        .execute()
    await mailChanged(ctx, tx, folder.org_id, folder.mailbox_id, 'folders')
    const row = await tx
      .selectFrom('folders')
      .selectAll()
      .where('id', '=', folder.id)
      .executeTakeFirstOrThrow()
    return oneView(tx, row)
  })
}

async function remove(ctx: MessagesContext, folder: Folder, orphansTo: 'trash' | 'archive'): Promise<void> {
  if (folder.role !== null)
    throw new ServiceError(
      'conflict',
      'ROLE_FOLDER',
      `${folder.name} is the ${folder.role} folder and cannot be deleted.`,
    )
  await ctx.store.db.transaction().execute(async (tx) => {
    const now = ctx.clock.now()
    const children = (
      await mailboxFolders(tx, { id: folder.mailbox_id, org_id: folder.org_id, address: '' })
    ).filter((f) => f.name.startsWith(`${folder.name}/`))
    if (children.length > 0)
      throw new ServiceError(
        'conflict',
        'FOLDER_HAS_CHILDREN',
        `${folder.name} has folders inside it; delete or move those first.`,
      )
    const members = await tx
      .selectFrom('folder_messages')
      .select('message_id')
      .where('folder_id', '=', folder.id)
      .where('org_id', '=', folder.org_id)
      .execute()
    for (const { message_id } of members) {
      const m = { id: message_id, mailbox_id: folder.mailbox_id, org_id: folder.org_id }
      await removeFromFolder(tx, folder, message_id, now)
      await rehome(tx, m, orphansTo, now)
    }
    await tx.deleteFrom('folders').where('id', '=', folder.id).where('org_id', '=', folder.org_id).execute()
    await mailChanged(ctx, tx, folder.org_id, folder.mailbox_id, 'folders')
  })
}

async function folderOfMailbox(ctx: MessagesContext, p: Principal, mailbox: string, folderId: string) {
  const m = await findReadableMailbox(ctx.store.db, p, mailbox)
  const f = await findFolderById(ctx.store.db, p, folderId)
  if (f.mailbox_id !== m.id)
    throw new ServiceError('not_found', 'FOLDER_NOT_FOUND', `No folder ${folderId} in ${m.address}.`)
  return f
}

export async function updateFolder(
  ctx: MessagesContext,
  p: Principal,
  mailbox: string,
  folderId: string,
  patch: { name?: string; subscribed?: boolean },
): Promise<FolderView> {
  return update(ctx, await folderOfMailbox(ctx, p, mailbox, folderId), patch)
}

export async function deleteFolder(ctx: MessagesContext, p: Principal, mailbox: string, folderId: string) {
  await remove(ctx, await folderOfMailbox(ctx, p, mailbox, folderId), 'trash')
}

// --- Labels: the role-less folders -----------------------------------------------------------

export async function listLabels(
  ctx: MessagesContext,
  p: Principal,
  input: { mailbox?: string },
): Promise<LabelView[]> {
  const db = ctx.store.db
  const mailbox = await targetMailbox(db, p, input.mailbox)
  if (!mailbox) return []
  const labels = (await mailboxFolders(db, mailbox)).filter((f) => f.role === null)
  return (await folderViews(db, labels)).map(labelView)
}

export async function createLabel(
  ctx: MessagesContext,
  p: Principal,
  input: { mailbox?: string; name: string },
): Promise<LabelView> {
  const mailbox = await targetMailbox(ctx.store.db, p, input.mailbox)
  if (!mailbox)
    throw new ServiceError('not_found', 'MAILBOX_NOT_FOUND', 'You can read no mailbox to add a label to.')
  return labelView(await create(ctx, mailbox, input.name, true))
}

async function findLabel(ctx: MessagesContext, p: Principal, id: string): Promise<Folder> {
  const f = await findFolderById(ctx.store.db, p, id).catch((err) => {
    if (err instanceof ServiceError && err.kind === 'not_found') return null
    throw err
  })
  if (!f || f.role !== null)
    throw new ServiceError('not_found', 'LABEL_NOT_FOUND', `No label ${id} that you can read.`)
  return f
}

export async function updateLabel(
  ctx: MessagesContext,
  p: Principal,
  id: string,
  patch: { name?: string },
): Promise<LabelView> {
  return labelView(await update(ctx, await findLabel(ctx, p, id), patch))
}

export async function deleteLabel(ctx: MessagesContext, p: Principal, id: string): Promise<void> {
  await remove(ctx, await findLabel(ctx, p, id), 'archive')
}
