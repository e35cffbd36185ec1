// Reading the events table for the live feed: rows after a cursor (an event id), each with the
// mailbox it concerns, and the view a socket sends. Ids sort by creation time (store/ids.ts),
// so "after a cursor" is `id > cursor`.
// Invariants: every read is scoped by org id; the mailbox of an event comes from its payload
// (payload.mailbox_id), its subject (a mailbox id) or, for outbound mail, the message's
// sending mailbox; events about none (domains, keys, the org) carry mailbox_id null.

import type { Kysely } from 'kysely'
import type { Database } from '../../store/schema.ts'
import { toIso } from '../../time/clock.ts'

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
/** The syntax of an event id, the feed's cursor. */
export const CURSOR = /^evt_[0-9a-hjkmnp-tv-z]{26}$/

export interface FeedEvent {
  id: string
  org_id: string
  type: string
  subject_id: string | null
  actor: string | null
  created_at: number
  payload: Record<string, unknown>
  mailbox_id: string | null
}

/** What a socket sends for an event. */
export interface FeedEventView {
  id: string
  type: string
  created_at: string
  subject_id: string | null
  mailbox_id: string | null
  actor: string | null
  payload: Record<string, unknown>
}

export const eventView = (e: FeedEvent): FeedEventView => ({
  id: e.id,
  type: e.type,
  created_at: toIso(e.created_at),
  subject_id: e.subject_id,
  mailbox_id: e.mailbox_id,
  actor: e.actor,
  payload: e.payload,
})

/** The smallest event id of millisecond `ms`: every event made at or after `ms` sorts above it. */
export function idFloor(ms: number): string {
  let time = ''
  let t = Math.max(0, Math.floor(ms))
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time
    t = Math.floor(t / 32)
  }
  return `evt_${time}${'0'.repeat(16)}`
}

/** The creation time an event id carries (epoch ms). */
export function idTime(id: string): number {
  let t = 0
  for (const ch of id.slice(4, 14)) t = t * 32 + ALPHABET.indexOf(ch)
  return t
}

type Db = Kysely<Database>

/** Up to `limit` events of `orgIds` with id above `after`, in id order, with their mailbox. */
export async function eventsAfter(
  db: Db,
  orgIds: readonly string[],
  after: string,
  limit: number,
): Promise<FeedEvent[]> {
  if (orgIds.length === 0) return []
  const rows = await db
    .selectFrom('events')
    .select(['id', 'org_id', 'type', 'subject_id', 'actor', 'created_at', 'payload'])
    .where('org_id', 'in', [...orgIds])
    .where('id', '>', after)
    .orderBy('id')
    .limit(limit)
    .execute()
  const out: FeedEvent[] = rows.map((r) => {
    let payload: Record<string, unknown> = {}
    try {
      const p = typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload
      if (p && typeof p === 'object') payload = p as Record<string, unknown>
    } catch {}
    const fromPayload = typeof payload.mailbox_id === 'string' ? payload.mailbox_id : null
    const fromSubject = r.subject_id?.startsWith('mbx_') ? r.subject_id : null
    return {
      id: r.id,
      org_id: r.org_id as string,
      type: r.type,
      subject_id: r.subject_id,
      actor: r.actor,
      created_at: Number(r.created_at),
      payload,
      mailbox_id: fromPayload ?? fromSubject,
    }
  })
  // Outbound mail: the sending mailbox, one query for the whole page.
  const emails = [
    ...new Set(
      out.filter((e) => e.mailbox_id === null && e.subject_id?.startsWith('eml_')).map((e) => e.subject_id),
    ),
  ] as string[]
  if (emails.length > 0) {
    const owners = await db
      .selectFrom('outbound_messages')
      .select(['id', 'mailbox_id'])
      .where('id', 'in', emails)
      .execute()
    const byId = new Map(owners.map((o) => [o.id, o.mailbox_id]))
    for (const e of out)
      if (e.mailbox_id === null && e.subject_id && byId.has(e.subject_id))
        e.mailbox_id = byId.get(e.subject_id) ?? null
  }
  return out
}

/** The id of the newest event of an org (the lowest possible id when it has none). */
export async function latestEventId(db: Db, orgId: string): Promise<string> {
  const r = await db
    .selectFrom('events')
    .select('id')
    .where('org_id', '=', orgId)
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst()
  return r?.id ?? idFloor(0)
}
