// Turns event rows into rollup deltas: for each counted event (counters.ts), the hour, the
// sending domain, the recipient domain, the sending mailbox and the message's tags, read from
// the outbound message the event is about. The fold job (fold.ts) adds the deltas to
// analytics_counts; a summary adds the deltas of the events not folded yet (the live tail).
// Invariants: every event adds to the tag '' row once, and once more to the row of each of
// its message's tags; each of those adds go to its recipient domain's row and to the
// ALL_DOMAINS row, so a query not about one recipient domain reads a few rows per hour
// however many domains the org mails; dimensions come from the event's own org only (a message of another
// org never lends its domain or tags); the sending domain is the message's domain name, or
// the domain of its envelope sender when the domain is gone. System mail (verification codes,
// invitations, notices: origin 'system') is Postern's own and never counts in an org's figures.

import type { Tx } from '../messages/context.ts'
import { type Counter, type Counts, counterOf, zeroCounts } from './counters.ts'

export const HOUR_MS = 3_600_000
/** The recipient_domain of the rows that count every recipient domain ('*' is no domain name). */
export const ALL_DOMAINS = '*'

export interface EventRow {
  id: string
  org_id: string | null
  type: string
  subject_id: string | null
  payload: string
  created_at: number | string
}

export interface RollupKey {
  org_id: string
  tag: string
  /** Events tally into hour buckets; the fold adds day buckets (fold.ts). */
  grain: 'hour' | 'day'
  /** Start of the bucket, epoch ms. */
  start: number
  sending_domain: string
  recipient_domain: string
  mailbox_id: string
}

export type RollupDelta = RollupKey & Counts

interface MessageDims {
  org_id: string
  mailbox_id: string
  sending_domain: string
  tags: string[]
  system: boolean
}

const CHUNK = 500

const domainOf = (address: unknown): string => {
  if (typeof address !== 'string') return ''
  const at = address.lastIndexOf('@')
  return at < 0 ? '' : address.slice(at + 1).toLowerCase()
}

const parsePayload = (text: string): Record<string, unknown> => {
  try {
    const v: unknown = JSON.parse(text)
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}

/** `name:value` for each tag of a message (the tags column is a JSON object). */
export function tagsOf(json: string): string[] {
  const v = parsePayload(json)
  return Object.entries(v)
    .filter(([, value]) => typeof value === 'string')
    .map(([name, value]) => `${name}:${value as string}`)
}

async function messageDims(db: Tx, ids: string[]): Promise<Map<string, MessageDims>> {
  const out = new Map<string, MessageDims>()
  for (let i = 0; i < ids.length; i += CHUNK) {
    const rows = await db
      .selectFrom('outbound_messages as om')
      .leftJoin('domains as d', (j) =>
        j.onRef('d.id', '=', 'om.domain_id').onRef('d.org_id', '=', 'om.org_id'),
      )
      .select([
        'om.id',
        'om.org_id',
        'om.mailbox_id',
        'om.mail_from',
        'om.tags',
        'om.origin',
        'd.name as domain_name',
      ])
      .where('om.id', 'in', ids.slice(i, i + CHUNK))
      .execute()
    for (const r of rows)
      out.set(r.id, {
        org_id: r.org_id,
        mailbox_id: r.mailbox_id ?? '',
        sending_domain: (r.domain_name ?? domainOf(r.mail_from)).toLowerCase(),
        tags: tagsOf(r.tags),
        system: r.origin === 'system',
      })
  }
  return out
}

/** Recipient domains of each message the queue sent to (suppressed recipients were not sent). */
async function sentDomains(db: Tx, ids: string[]): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>()
  for (let i = 0; i < ids.length; i += CHUNK) {
    const rows = await db
      .selectFrom('outbound_recipients')
      .select(['outbound_id', 'org_id', 'domain'])
      .where('outbound_id', 'in', ids.slice(i, i + CHUNK))
      .where('state', '!=', 'suppressed')
      .execute()
    for (const r of rows) {
      const key = `${r.org_id} ${r.outbound_id}`
      const m = out.get(key) ?? new Map<string, number>()
      m.set(r.domain.toLowerCase(), (m.get(r.domain.toLowerCase()) ?? 0) + 1)
      out.set(key, m)
    }
  }
  return out
}

export const keyOf = (k: RollupKey) =>
  `${k.org_id}\u0000${k.tag}\u0000${k.grain}\u0000${k.start}\u0000${k.sending_domain}\u0000${k.recipient_domain}\u0000${k.mailbox_id}`

/** The rollup deltas of `events` (any types, any orgs; uncounted ones are skipped); `test`
 * tallies test-mode events instead of live ones. */
export async function tallyEvents(
  db: Tx,
  events: readonly EventRow[],
  test = false,
): Promise<Map<string, RollupDelta>> {
  const counted: { e: EventRow; c: Counter; p: Record<string, unknown>; email: string | null }[] = []
  for (const e of events) {
    if (e.org_id === null) continue
    const p = parsePayload(e.payload)
    const c = counterOf(e.type, p, test)
    if (c === null) continue
    const email =
      typeof p.email_id === 'string' ? p.email_id : e.subject_id?.startsWith('eml_') ? e.subject_id : null
    counted.push({ e, c, p, email })
  }
  const ids = [...new Set(counted.flatMap((x) => (x.email ? [x.email] : [])))]
  const dims = await messageDims(db, ids)
  const sentIds = [...new Set(counted.flatMap((x) => (x.c === 'sent' && x.email ? [x.email] : [])))]
  const sent = await sentDomains(db, sentIds)

  const out = new Map<string, RollupDelta>()
  const add = (k: RollupKey, c: Counter, n: number) => {
    const key = keyOf(k)
    let row = out.get(key)
    if (!row) {
      row = { ...k, ...zeroCounts() }
      out.set(key, row)
    }
    row[c] += n
  }
  for (const { e, c, p, email } of counted) {
    const org = e.org_id as string
    const found = email ? dims.get(email) : undefined
    const d = found && found.org_id === org ? found : undefined
    if (d?.system) continue
    const base = {
      org_id: org,
      grain: 'hour' as const,
      start: Math.floor(Number(e.created_at) / HOUR_MS) * HOUR_MS,
      sending_domain: d?.sending_domain ?? '',
      mailbox_id: d?.mailbox_id ?? '',
    }
    const byDomain =
      c === 'sent'
        ? [...(sent.get(`${org} ${email}`) ?? new Map<string, number>())]
        : [[domainOf(p.recipient), 1] as [string, number]]
    for (const tag of ['', ...(d?.tags ?? [])])
      for (const [recipient_domain, n] of byDomain) {
        add({ ...base, tag, recipient_domain }, c, n)
        add({ ...base, tag, recipient_domain: ALL_DOMAINS }, c, n)
      }
  }
  return out
}
