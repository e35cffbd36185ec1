// Where messages live, as mail verbs: move, archive, trash, mark as spam, label, set flags.
// Every membership and flag change goes through folder-ops.ts, so UIDs, MODSEQ and expunge
// tombstones stay right; this file only decides which memberships to add and remove.
// Semantics (also documented on the routes):
// - A move adds the target (a new UID there) before removing the sources (tombstones), so a
//   message is never in no folder mid-way.
// - trash and spam take a message out of every other folder (labels, Sent included) and into
//   Trash / Junk; a message "only in Trash" is what permanent deletion requires.
// - archive takes a message out of the inbox into the archive folder (messages not in the
//   inbox are left where they are); un-archive, un-trash and not-spam move back to the inbox.
// - move to a folder takes a message out of the "location" folders (inbox, archive, junk,
//   trash) and into the target; Sent, Drafts and labels stay (a move to Trash or Junk is
//   trash or spam, as above).

import type { Folder } from '../../store/schema.ts'
import { ServiceError } from '../errors.ts'
import type { MailboxRef, MessageRow } from './access.ts'
import { roleFolder } from './access.ts'
import type { Tx } from './context.ts'
import { ANSWERED, addToFolder, FLAGGED, removeFromFolder, SEEN, setKeywords } from './folder-ops.ts'
import { recordSpamSignal, verdictOf } from './spam-signals.ts'

type MessageRef = Pick<MessageRow, 'id' | 'mailbox_id' | 'org_id'>

const LOCATION_ROLES = new Set<Folder['role']>(['inbox', 'archive', 'junk', 'trash'])

/** The folders holding a message. */
export async function foldersOf(tx: Tx, m: MessageRef): Promise<Folder[]> {
  return tx
    .selectFrom('folder_messages as fm')
    .innerJoin('folders as f', 'f.id', 'fm.folder_id')
    .selectAll('f')
    .where('fm.message_id', '=', m.id)
    .where('fm.org_id', '=', m.org_id)
    .execute()
}

/** Adds `add` (new UIDs) and then removes `remove` (tombstones); true when anything changed. */
export async function changeMemberships(
  tx: Tx,
  m: MessageRef,
  add: Folder[],
  remove: Folder[],
  now: number,
): Promise<boolean> {
  let changed = false
  for (const f of add) changed = (await addToFolder(tx, f, m.id, now)).added || changed
  for (const f of remove)
    if (!add.some((a) => a.id === f.id)) changed = (await removeFromFolder(tx, f, m.id, now)) || changed
  if (changed) {
    const before = [...remove, ...(await foldersOf(tx, m)).filter((f) => !add.some((a) => a.id === f.id))]
    const verdict = verdictOf(
      before.map((f) => f.role),
      add.map((f) => f.role),
    )
    if (verdict) await recordSpamSignal(tx, m, verdict, 'api', now)
  }
  return changed
}

/** Moves a message into `target`, out of every current folder that `leave` selects. */
export async function moveMessage(
  tx: Tx,
  m: MessageRef,
  target: Folder,
  leave: (f: Folder) => boolean,
  now: number,
): Promise<boolean> {
  const current = await foldersOf(tx, m)
  return changeMemberships(
    tx,
    m,
    [target],
    current.filter((f) => f.id !== target.id && leave(f)),
    now,
  )
}

const mailboxOf = (m: MessageRef) => ({ id: m.mailbox_id, org_id: m.org_id })

export const trashMessage = async (tx: Tx, m: MessageRef, now: number) =>
  moveMessage(tx, m, await roleFolder(tx, mailboxOf(m), 'trash'), () => true, now)

export const spamMessage = async (tx: Tx, m: MessageRef, now: number) =>
  moveMessage(tx, m, await roleFolder(tx, mailboxOf(m), 'junk'), () => true, now)

/** Moves a message that is in the `from` role folder back to the inbox; false when it is not there. */
export async function backToInbox(tx: Tx, m: MessageRef, from: Folder['role'], now: number) {
  const current = await foldersOf(tx, m)
  const source = current.filter((f) => f.role === from)
  if (source.length === 0) return false
  return changeMemberships(tx, m, [await roleFolder(tx, mailboxOf(m), 'inbox')], source, now)
}

export async function archiveMessage(tx: Tx, m: MessageRef, now: number) {
  const current = await foldersOf(tx, m)
  const inbox = current.filter((f) => f.role === 'inbox')
  if (inbox.length === 0) return false
  return changeMemberships(tx, m, [await roleFolder(tx, mailboxOf(m), 'archive')], inbox, now)
}

/**
 * Move to a folder: out of the location folders (inbox, archive, junk, trash), into `target`.
 * Moving to Trash or Junk is trashing or marking as spam: out of every other folder.
 */
export const moveToFolder = (tx: Tx, m: MessageRef, target: Folder, now: number) =>
  moveMessage(
    tx,
    m,
    target,
    target.role === 'trash' || target.role === 'junk' ? () => true : (f) => LOCATION_ROLES.has(f.role),
    now,
  )

/**
 * Gives a message that is in no folder (its last label or folder went) a home: the folder of
 * `role`. Labels are Gmail-like (removing the last leaves the message archived); deleting a
 * folder puts its messages that are nowhere else in Trash (recoverable until the purge).
 */
export async function rehome(
  tx: Tx,
  m: MessageRef,
  role: 'archive' | 'trash',
  now: number,
): Promise<boolean> {
  if ((await foldersOf(tx, m)).length > 0) return false
  await addToFolder(tx, await roleFolder(tx, mailboxOf(m), role), m.id, now)
  return true
}

/** Exactly these folders (at least one). */
export async function setFolders(tx: Tx, m: MessageRef, folders: Folder[], now: number) {
  if (folders.length === 0)
    throw new ServiceError(
      'invalid',
      'NO_FOLDERS',
      'A message must stay in at least one folder; to remove it, delete it.',
      {
        details: [{ field: 'body.folders', message: 'must name at least one folder' }],
      },
    )
  const current = await foldersOf(tx, m)
  const want = new Set(folders.map((f) => f.id))
  const unique = [...new Map(folders.map((f) => [f.id, f])).values()]
  return changeMemberships(
    tx,
    m,
    unique,
    current.filter((f) => !want.has(f.id)),
    now,
  )
}

/** RFC 9051 flag-keyword: an atom (printable ASCII but SP ( ) { % * " \ ]); at most 100 characters. */
const KEYWORD = /^[!#$&'+,\-./0-9:;<=>?@A-Z[^_`a-z|}~]{1,100}$/

export function checkKeywords(field: string, keywords: readonly string[]): void {
  const bad = keywords.filter((k) => !KEYWORD.test(k))
  if (bad.length > 0)
    throw new ServiceError(
      'invalid',
      'INVALID_KEYWORD',
      `Keywords must be IMAP atoms (printable ASCII without spaces or ( ) { % * " \\ ]; system flags have their own fields): ${bad.map((k) => JSON.stringify(k)).join(', ')}.`,
      { details: bad.map(() => ({ field, message: 'is not a valid IMAP keyword' })) },
    )
}

export interface FlagChange {
  seen?: boolean
  flagged?: boolean
  answered?: boolean
  keywords?: { add?: string[]; remove?: string[] }
}

/**
 * Applies flag and keyword changes in one MODSEQ step. Keywords match case-insensitively (RFC
 * 9051 2.3.2): an existing spelling is kept.
 */
export async function changeFlags(tx: Tx, m: MessageRef, change: FlagChange, now: number): Promise<boolean> {
  const add: string[] = []
  const remove: string[] = []
  const set = (flag: string, on: boolean | undefined) => {
    if (on === true) add.push(flag)
    else if (on === false) remove.push(flag)
  }
  set(SEEN, change.seen)
  set(FLAGGED, change.flagged)
  set(ANSWERED, change.answered)
  if (change.keywords?.add?.length || change.keywords?.remove?.length) {
    const current = (
      await tx
        .selectFrom('message_keywords')
        .select('keyword')
        .where('message_id', '=', m.id)
        .where('org_id', '=', m.org_id)
        .execute()
    ).map((r) => r.keyword)
    const spelling = (k: string) => current.find((c) => c.toLowerCase() === k.toLowerCase()) ?? k
    add.push(...(change.keywords.add ?? []).map(spelling))
    remove.push(...(change.keywords.remove ?? []).map(spelling))
  }
  const lower = new Map(add.map((k) => [k.toLowerCase(), k]))
  const adds = [...lower.values()].filter((k) => !remove.includes(k))
  const removes = [...new Set(remove)]
  if (adds.length === 0 && removes.length === 0) return false
  return setKeywords(tx, m, { add: adds, remove: removes }, now)
}

/** The labels (role-less folders) of a mailbox named by id or name; 404 for anything else. */
export async function labelFolders(tx: Tx, mailbox: MailboxRef, refs: readonly string[]): Promise<Folder[]> {
  if (refs.length === 0) return []
  const labels = await tx
    .selectFrom('folders')
    .selectAll()
    .where('mailbox_id', '=', mailbox.id)
    .where('org_id', '=', mailbox.org_id)
    .where('role', 'is', null)
    .execute()
  return refs.map((ref) => {
    const f =
      labels.find((l) => l.id === ref) ??
      labels.find((l) => l.name === ref) ??
      labels.find((l) => l.name.toLowerCase() === ref.toLowerCase())
    if (!f) throw new ServiceError('not_found', 'LABEL_NOT_FOUND', `No label ${ref} in ${mailbox.address}.`)
    return f
  })
}
