// Reading events: GET /v1/events. Newest first, cursor-paginated, filtered by type (exact
// names, comma lists and `<noun>.*` prefixes), the outbound email, the stored message, the
// mailbox, the recipient and a time range; and the retention prune the events-prune job runs.
// Invariants:
// - Every query is scoped by the caller's org. Org-wide readers (admin, read and write keys,
//   owner and admin sessions) see every event of the org; a mailbox-scoped key, or a member's
//   session, sees only events about the mailboxes it reaches: events carrying that mailbox
//   (inbound mail, mailbox changes) and the lifecycle events of mail sent from it.
// - An unknown type or a malformed time is refused (422), never silently matched to nothing.

import type { ExpressionBuilder } from 'kysely'
import type { Store } from '../../store/db.ts'
import type { Database } from '../../store/schema.ts'
import type { Principal } from '../accounts/principal.ts'
import { ServiceError } from '../errors.ts'
import { reachableMailboxIds } from '../messages/access.ts'
import { decodeCursor, olderThan, type Page, pageOf, pageSize } from '../messages/cursor.ts'
import { EVENT_TYPES, type EventType } from './types.ts'

export interface EventView {
  id: string
  type: string
  created_at: string
  actor: string | null
  ip: string | null
  subject_id: string | null
  mailbox_id: string | null
  recipient: string | null
  data: Record<string, unknown>
}

export interface ListEventsInput {
  type?: string
  email_id?: string
  message_id?: string
  mailbox_id?: string
  recipient?: string
  since?: string
  until?: string
  limit?: number
  cursor?: string
}

const invalid = (field: string, message: string, code = 'INVALID_FILTER') =>
  new ServiceError('invalid', code, `${field} ${message}`, {
    details: [{ field: `querystring.${field}`, message }],
  })

/** The event types a filter names: exact types and `<noun>.*` prefixes; refuses unknown ones. */
export function typesOf(filter: string, field = 'type'): EventType[] {
  const all = Object.keys(EVENT_TYPES) as EventType[]
  const out = new Set<EventType>()
  for (const raw of filter.split(',')) {
    const item = raw.trim()
    if (item === '') continue
    const matched = item.endsWith('.*')
      ? all.filter((t) => t.startsWith(item.slice(0, -1)))
      : all.filter((t) => t === item)
    if (matched.length === 0) throw invalid(field, `names no event type: '${item}'`, 'INVALID_EVENT_TYPE')
    for (const t of matched) out.add(t)
  }
  if (out.size === 0) throw invalid(field, 'is empty', 'INVALID_EVENT_TYPE')
  return [...out]
}

function timeOf(field: string, value: string | undefined): number | null {
  if (value === undefined) return null
  const t = Date.parse(value)
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(t)) throw invalid(field, 'is not an ISO 8601 time')
  return t
}

/** Events about mailbox ids in `mailboxes` (a subquery or one id): carried, or sent from it. */
function aboutMailboxes(
  eb: ExpressionBuilder<Database, 'events'>,
  orgId: string,
  mailboxes: ReturnType<typeof reachableMailboxIds> | string,
) {
  const sentFrom = eb.selectFrom('outbound_messages as om').select('om.id').where('om.org_id', '=', orgId)
  return eb.or([
    typeof mailboxes === 'string'
      ? eb('events.mailbox_id', '=', mailboxes)
      : eb('events.mailbox_id', 'in', mailboxes),
    eb(
      'events.subject_id',
      'in',
      typeof mailboxes === 'string'
        ? sentFrom.where('om.mailbox_id', '=', mailboxes)
        : sentFrom.where('om.mailbox_id', 'in', mailboxes),
    ),
  ])
}

/** True when `p` sees every event of its org (not only its mailboxes'). */
export function seesWholeOrg(p: Principal): boolean {
  if (p.kind === 'key') return p.key_scope === 'admin' || p.key_scope === 'read' || p.key_scope === 'write'
  return p.role === 'owner' || p.role === 'admin'
}

export async function listEvents(
  ctx: { store: Store },
  p: Principal,
  q: ListEventsInput,
): Promise<Page<EventView>> {
  const db = ctx.store.db
  const types = q.type !== undefined ? typesOf(q.type) : null
  const since = timeOf('since', q.since)
  const until = timeOf('until', q.until)
  if (since !== null && until !== null && since > until) throw invalid('until', 'is before since')
  const after = decodeCursor(q.cursor)
  const limit = pageSize(q.limit)
  let query = db
    .selectFrom('events')
    .select(['id', 'type', 'created_at', 'actor', 'ip', 'subject_id', 'mailbox_id', 'recipient', 'payload'])
    .where('org_id', '=', p.org_id)
  if (!seesWholeOrg(p)) query = query.where((eb) => aboutMailboxes(eb, p.org_id, reachableMailboxIds(db, p)))
  if (types) query = query.where('type', 'in', types)
  if (q.email_id !== undefined) query = query.where('subject_id', '=', q.email_id)
  if (q.message_id !== undefined) query = query.where('subject_id', '=', q.message_id)
  if (q.mailbox_id !== undefined) {
    const id = q.mailbox_id
    query = query.where((eb) => aboutMailboxes(eb, p.org_id, id))
  }
  if (q.recipient !== undefined) query = query.where('recipient', '=', q.recipient.trim().toLowerCase())
  if (since !== null) query = query.where('created_at', '>=', since)
  if (until !== null) query = query.where('created_at', '<', until)
  if (after) query = query.where(olderThan(after, 'created_at', 'id'))
  const rows = await query
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute()
  const { page, next_cursor } = pageOf(rows, limit)
  return {
    data: page.map((r) => ({
      id: r.id,
      type: r.type,
      created_at: new Date(Number(r.created_at)).toISOString(),
      actor: r.actor,
      ip: r.ip,
      subject_id: r.subject_id,
      mailbox_id: r.mailbox_id,
      recipient: r.recipient,
      data: parsePayload(r.payload),
    })),
    next_cursor,
  }
}

export function parsePayload(json: string | Record<string, unknown>): Record<string, unknown> {
  if (typeof json === 'object' && json !== null) return json
  try {
    const v: unknown = JSON.parse(json)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}

/** Deletes events older than `before` (the retention prune), in batches; returns how many. */
export async function pruneEvents(store: Store, before: number, batch = 5_000): Promise<number> {
  let total = 0
  for (;;) {
    const r = await store.db
      .deleteFrom('events')
      .where('id', 'in', (eb) =>
        eb.selectFrom('events').select('id').where('created_at', '<', before).limit(batch),
      )
      .executeTakeFirst()
    const n = Number(r.numDeletedRows ?? 0)
    total += n
    if (n < batch) return total
  }
}
