// CREATE, RENAME, DELETE, SUBSCRIBE and UNSUBSCRIBE for mail clients: the same folder rules as
// the HTTP API (services/messages/folders.ts decides names, uniqueness, UIDVALIDITY and what
// happens to the messages), called as the logged-in mailbox.
// IMAP specifics: "INBOX" names the inbox in any case; creating "a/b/c" creates the missing
// levels too (RFC 9051 6.3.4 lets a server do so, and clients expect it); a name that ends in
// the delimiter creates the name without it.

import type { Principal } from '../accounts/principal.ts'
import { ServiceError } from '../errors.ts'
import type { MessagesContext } from '../messages/context.ts'
import { createFolder, deleteFolder, updateFolder } from '../messages/folders.ts'
import { folderByName, listFolders, type MailAccountRef } from './folder-view.ts'

/** The principal a mail-client session acts as: a key reaching only its own mailbox. */
export function mailboxPrincipal(a: MailAccountRef): Principal {
  return {
    kind: 'key',
    org_id: a.org_id,
    user_id: null,
    role: null,
    session_id: null,
    key_id: `mailbox:${a.mailbox_id}`,
    key_scope: 'mailbox',
    mailbox_id: a.mailbox_id,
  }
}

export async function createImapFolder(ctx: MessagesContext, a: MailAccountRef, name: string): Promise<void> {
  const clean = name.endsWith('/') ? name.slice(0, -1) : name
  if (clean.toUpperCase() === 'INBOX')
    throw new ServiceError('conflict', 'FOLDER_EXISTS', 'INBOX already exists.')
  const existing = new Set((await listFolders(ctx.store.db, a)).map((f) => f.name.toLowerCase()))
  if (existing.has(clean.toLowerCase()))
    throw new ServiceError('conflict', 'FOLDER_EXISTS', `A folder named ${clean} already exists.`)
  const levels = clean.split('/')
  for (let i = 1; i <= levels.length; i++) {
    const path = levels.slice(0, i).join('/')
    if (i < levels.length && existing.has(path.toLowerCase())) continue
    await createFolder(ctx, mailboxPrincipal(a), a.mailbox_id, { name: path })
    existing.add(path.toLowerCase())
  }
}

async function mustFind(ctx: MessagesContext, a: MailAccountRef, name: string) {
  const f = await folderByName(ctx.store.db, a, name)
  if (!f) throw new ServiceError('not_found', 'FOLDER_NOT_FOUND', `No folder named ${name}.`)
  return f
}

export async function renameImapFolder(ctx: MessagesContext, a: MailAccountRef, from: string, to: string) {
  const f = await mustFind(ctx, a, from)
  if (to.toUpperCase() === 'INBOX')
    throw new ServiceError('conflict', 'FOLDER_EXISTS', 'INBOX already exists.')
  await updateFolder(ctx, mailboxPrincipal(a), a.mailbox_id, f.id, { name: to })
}

export async function deleteImapFolder(ctx: MessagesContext, a: MailAccountRef, name: string) {
  const f = await mustFind(ctx, a, name)
  await deleteFolder(ctx, mailboxPrincipal(a), a.mailbox_id, f.id)
}

export async function subscribeImapFolder(
  ctx: MessagesContext,
  a: MailAccountRef,
  name: string,
  on: boolean,
) {
  const f = await mustFind(ctx, a, name)
  if (f.subscribed !== on)
    await updateFolder(ctx, mailboxPrincipal(a), a.mailbox_id, f.id, { subscribed: on })
}
