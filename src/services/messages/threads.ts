// Conversations: list (per mailbox, by latest message), one thread with its messages, actions
// on every message of a thread (read, star, archive, trash, spam, move, labels), the same
// action on up to 100 threads with a result per id, and permanent deletion from Trash.
// Invariants:
// - A thread is listed when at least one of its messages matches the folder filter (without
//   one: a message outside Trash and Junk), as mail clients show conversations.
// - Actions go through moves.ts (folder-ops underneath) in one transaction per thread; at most
//   one of archive, trash, spam and move per action.
// - DELETE needs every message of the thread to be only in Trash (else 409), then deletes them
//   as DELETE /v1/messages/{id} does from Trash.

import { type RawBuilder, sql } from 'kysely'
import type { Folder } from '../../store/schema.ts'
import type { Principal } from '../accounts/principal.ts'
import { ServiceError } from '../errors.ts'
import {
  findFolder,
  findReadableMailbox,
  findThread,
  type MailboxRef,
  MESSAGE_COLUMNS,
  type MessageRow,
  type ThreadRow,
  targetMailbox,
} from './access.ts'
import { type MessagesContext, mailChanged, type Tx } from './context.ts'
import { decodeCursor, encodeCursor, type Page, pageSize } from './cursor.ts'
import { getMessage, hiddenFolderIds, type MessageDetail } from './messages.ts'
import {
  archiveMessage,
  backToInbox,
  changeFlags,
  changeMemberships,
  foldersOf,
  labelFolders,
  moveToFolder,
  rehome,
  spamMessage,
  trashMessage,
} from './moves.ts'
import { deletePermanently } from './purge.ts'
import { inFolder, notInFolders, unreadCondition } from './query.ts'
import { type AddressView, loadExtras, type MessageSummary, summaryOf } from './views.ts'

export interface ThreadSummary {
  id: string
  mailbox_id: string
  subject: string
  /** Preview of the latest message. */
  snippet: string
  message_count: number
  unread_count: number
  /** Senders and recipients, senders first, each address once (at most 10). */
  participants: AddressView[]
  first_message_at: number
  last_message_at: number
  starred: boolean
  has_attachments: boolean
  labels: { id: string; name: string }[]
  folders: { id: string; name: string; role: Folder['role'] }[]
}

export interface ThreadAction {
  read?: boolean
  star?: boolean
  archive?: boolean
  trash?: boolean
  spam?: boolean
  /** Folder id, name or role. */
  move?: string
  labels?: { add?: string[]; remove?: string[] }
}

const MAX_PARTICIPANTS = 10

function summarise(t: ThreadRow, messages: MessageSummary[]): ThreadSummary {
  const latest = messages[messages.length - 1]
  const people = new Map<string, AddressView>()
  const meet = (a: AddressView | null) => {
    if (!a?.address) return
    const key = a.address.toLowerCase()
    const known = people.get(key)
    if (!known || (!known.name && a.name)) people.set(key, { name: a.name, address: a.address })
  }
  for (const m of messages) meet(m.from)
  for (const m of messages) for (const a of [...m.to, ...m.cc]) meet(a)
  const folders = new Map<string, { id: string; name: string; role: Folder['role'] }>()
  for (const m of messages)
    for (const f of m.folders) folders.set(f.id, { id: f.id, name: f.name, role: f.role })
  return {
    id: t.id,
    mailbox_id: t.mailbox_id,
    subject: messages[0]?.subject ?? t.subject_norm,
    snippet: latest?.preview ?? '',
    message_count: messages.length,
    unread_count: messages.filter((m) => !m.seen).length,
    participants: [...people.values()].slice(0, MAX_PARTICIPANTS),
    first_message_at: messages[0]?.received_at ?? Number(t.first_message_at),
    last_message_at: latest?.received_at ?? Number(t.last_message_at),
    starred: messages.some((m) => m.flagged),
    has_attachments: messages.some((m) => m.has_attachments),
    labels: [...folders.values()].filter((f) => f.role === null).map((f) => ({ id: f.id, name: f.name })),
    folders: [...folders.values()],
  }
}

/** The messages of some threads (already authorised), oldest first, grouped by thread. */
async function threadMessages(
  db: Tx,
  orgId: string,
  threadIds: string[],
): Promise<Map<string, MessageSummary[]>> {
  const byThread = new Map<string, MessageSummary[]>()
  if (threadIds.length === 0) return byThread
  const rows = await db
    .selectFrom('messages as m')
    .select(MESSAGE_COLUMNS)
    .where('m.org_id', '=', orgId)
    .where('m.thread_id', 'in', threadIds)
    .where('m.deleted_at', 'is', null)
    .orderBy('m.received_at')
    .orderBy('m.id')
    .execute()
  const extras = await loadExtras(
    db,
    orgId,
    rows.map((r) => r.id),
  )
  for (const r of rows) {
    const list = byThread.get(r.thread_id as string) ?? []
    list.push(summaryOf(r, extras))
    byThread.set(r.thread_id as string, list)
  }
  return byThread
}

async function summariesOf(db: Tx, orgId: string, threads: ThreadRow[]): Promise<ThreadSummary[]> {
  const messages = await threadMessages(
    db,
    orgId,
    threads.map((t) => t.id),
  )
  return threads.map((t) => summarise(t, messages.get(t.id) ?? []))
}

export interface ListThreadsInput {
  mailbox?: string
  folder?: string
  unread?: boolean
  limit?: number
  cursor?: string
}

const anyMessage = (orgId: string, conditions: RawBuilder<boolean>[]) =>
  sql<boolean>`EXISTS (SELECT 1 FROM messages m WHERE m.thread_id = t.id AND m.org_id = ${orgId} AND m.deleted_at IS NULL AND ${sql.join(conditions, sql` AND `)})`

export async function listThreads(
  ctx: MessagesContext,
  p: Principal,
  input: ListThreadsInput,
): Promise<Page<ThreadSummary>> {
  const db = ctx.store.db
  const mailbox = await targetMailbox(db, p, input.mailbox, { folder: input.folder })
  if (!mailbox) return { data: [], next_cursor: null }
  const scope = input.folder
    ? inFolder((await findFolder(db, mailbox, input.folder)).id)
    : notInFolders(await hiddenFolderIds(db, mailbox))
  let q = db
    .selectFrom('threads as t')
    .selectAll('t')
    .where('t.org_id', '=', mailbox.org_id)
    .where('t.mailbox_id', '=', mailbox.id)
    .where(anyMessage(mailbox.org_id, [scope]))
  if (input.unread === true) q = q.where(anyMessage(mailbox.org_id, [scope, unreadCondition(true)]))
  if (input.unread === false)
    q = q.where(sql<boolean>`NOT ${anyMessage(mailbox.org_id, [scope, unreadCondition(true)])}`)
  const after = decodeCursor(input.cursor)
  if (after)
    q = q.where(
      sql<boolean>`(t.last_message_at < ${after.t} OR (t.last_message_at = ${after.t} AND t.id < ${after.id}))`,
    )
  const limit = pageSize(input.limit)
  const rows = await q
    .orderBy('t.last_message_at', 'desc')
    .orderBy('t.id', 'desc')
    .limit(limit + 1)
    .execute()
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return {
    data: await summariesOf(db, mailbox.org_id, page),
    next_cursor:
      rows.length > limit && last ? encodeCursor({ t: Number(last.last_message_at), id: last.id }) : null,
  }
}

/** With bodies, only the latest this many messages are parsed (the others come as summaries). */
export const MAX_PARSED_IN_THREAD = 50

export interface ThreadDetail extends ThreadSummary {
  /** Oldest first; with bodies when asked (text, html, attachments, headers). */
  messages: (MessageSummary | MessageDetail)[]
}

export async function getThread(
  ctx: MessagesContext,
  p: Principal,
  id: string,
  opts: { bodies?: boolean } = {},
): Promise<ThreadDetail> {
  const db = ctx.store.db
  const t = await findThread(db, p, id)
  const messages = (await threadMessages(db, t.org_id, [t.id])).get(t.id) ?? []
  const detailed: (MessageSummary | MessageDetail)[] = []
  if (opts.bodies)
    for (const [i, m] of messages.entries())
      detailed.push(i < messages.length - MAX_PARSED_IN_THREAD ? m : await getMessage(ctx, p, m.id))
  return { ...summarise(t, messages), messages: opts.bodies ? detailed : messages }
}

/** Refuses actions that contradict each other, before anything is touched. */
export function checkAction(a: ThreadAction): void {
  const moves = (['archive', 'trash', 'spam', 'move'] as const).filter((k) => a[k] !== undefined)
  if (moves.length > 1)
    throw new ServiceError(
      'invalid',
      'CONFLICTING_ACTIONS',
      `Use one of archive, trash, spam and move at a time, not ${moves.join(' and ')}.`,
      { details: moves.map((k) => ({ field: `body.${k}`, message: 'conflicts with another move' })) },
    )
}

async function applyAction(
  tx: Tx,
  mailbox: MailboxRef,
  t: ThreadRow,
  a: ThreadAction,
  now: number,
): Promise<boolean> {
  const rows: MessageRow[] = await tx
    .selectFrom('messages as m')
    .select(MESSAGE_COLUMNS)
    .where('m.org_id', '=', t.org_id)
    .where('m.thread_id', '=', t.id)
    .where('m.deleted_at', 'is', null)
    .execute()
  const addLabels = await labelFolders(tx, mailbox, a.labels?.add ?? [])
  const removeLabels = await labelFolders(tx, mailbox, a.labels?.remove ?? [])
  const target = a.move === undefined ? null : await findFolder(tx, mailbox, a.move)
  let changed = false
  for (const m of rows) {
    if (addLabels.length || removeLabels.length) {
      changed = (await changeMemberships(tx, m, addLabels, removeLabels, now)) || changed
      changed = (await rehome(tx, m, 'archive', now)) || changed
    }
    if (target) changed = (await moveToFolder(tx, m, target, now)) || changed
    if (a.archive === true) changed = (await archiveMessage(tx, m, now)) || changed
    if (a.archive === false) changed = (await backToInbox(tx, m, 'archive', now)) || changed
    if (a.trash === true) changed = (await trashMessage(tx, m, now)) || changed
    if (a.trash === false) changed = (await backToInbox(tx, m, 'trash', now)) || changed
    if (a.spam === true) {
      changed = (await spamMessage(tx, m, now)) || changed
      changed =
        (await changeFlags(tx, m, { keywords: { add: ['$Junk'], remove: ['$NotJunk'] } }, now)) || changed
    }
    if (a.spam === false) {
      changed = (await backToInbox(tx, m, 'junk', now)) || changed
      changed =
        (await changeFlags(tx, m, { keywords: { add: ['$NotJunk'], remove: ['$Junk'] } }, now)) || changed
    }
    changed = (await changeFlags(tx, m, { seen: a.read, flagged: a.star }, now)) || changed
  }
  return changed
}

/** Applies an action to every message of one thread, in one transaction. */
async function actOnThread(ctx: MessagesContext, p: Principal, id: string, action: ThreadAction) {
  await ctx.store.db.transaction().execute(async (tx) => {
    const t = await findThread(tx, p, id)
    const mailbox = await findReadableMailbox(tx, p, t.mailbox_id)
    if (await applyAction(tx, mailbox, t, action, ctx.clock.now()))
      await mailChanged(ctx, tx, t.org_id, t.mailbox_id, 'updated')
  })
}

export async function updateThread(
  ctx: MessagesContext,
  p: Principal,
  id: string,
  action: ThreadAction,
): Promise<ThreadSummary> {
  checkAction(action)
  await actOnThread(ctx, p, id, action)
  const db = ctx.store.db
  const t = await findThread(db, p, id)
  return (await summariesOf(db, t.org_id, [t]))[0] as ThreadSummary
}

export type BulkResult = { id: string; ok: true } | { id: string; ok: false; error: ServiceError }

export const MAX_BULK = 100

/** The same action on many threads; each thread succeeds or fails on its own. */
export async function bulkUpdateThreads(
  ctx: MessagesContext,
  p: Principal,
  ids: string[],
  action: ThreadAction,
): Promise<BulkResult[]> {
  checkAction(action)
  const unique = [...new Set(ids)]
  if (unique.length > MAX_BULK)
    throw new ServiceError('invalid', 'TOO_MANY_IDS', `At most ${MAX_BULK} threads per request.`, {
      details: [{ field: 'body.ids', message: `must have at most ${MAX_BULK} items` }],
    })
  const results: BulkResult[] = []
  for (const id of unique) {
    try {
      await actOnThread(ctx, p, id, action)
      results.push({ id, ok: true })
    } catch (err) {
      if (!(err instanceof ServiceError) || err.kind === 'internal') throw err
      results.push({ id, ok: false, error: err })
    }
  }
  return results
}

export async function deleteThread(ctx: MessagesContext, p: Principal, id: string): Promise<void> {
  await ctx.store.db.transaction().execute(async (tx) => {
    const now = ctx.clock.now()
    const t = await findThread(tx, p, id)
    const rows = await tx
      .selectFrom('messages as m')
      .select(MESSAGE_COLUMNS)
      .where('m.org_id', '=', t.org_id)
      .where('m.thread_id', '=', t.id)
      .where('m.deleted_at', 'is', null)
      .execute()
    for (const m of rows) {
      const folders = await foldersOf(tx, m)
      if (folders.length !== 1 || folders[0]?.role !== 'trash')
        throw new ServiceError(
          'conflict',
          'THREAD_NOT_IN_TRASH',
          'Only a thread whose messages are all in Trash (and nowhere else) can be deleted; trash it first.',
        )
    }
    for (const m of rows)
      await deletePermanently(tx, { blobs: ctx.blobs, dialect: ctx.store.dialect }, m, now)
    await tx.deleteFrom('threads').where('id', '=', t.id).where('org_id', '=', t.org_id).execute()
    await mailChanged(ctx, tx, t.org_id, t.mailbox_id, 'deleted')
  })
}
