// The latest outcomes of the org's outbound mail, newest first, with the remote server's
// answer: what GET /v1/analytics/deliverability/recent lists (recent bounces and complaints
// above all), read straight from the events table.
// Invariants: org-scoped, narrowed to the mailboxes the scope allows (through the message the
// event is about); test-mode events (payload `"test":true`) are left out, as analytics leaves
// them out everywhere, except from the test view (scope.ts), which lists only them; pages are cursor pages, newest first, stable under new inserts.

import { sql } from 'kysely'
import { decodeCursor, olderThan, type Page, pageOf } from '../messages/cursor.ts'
import type { AnalyticsContext } from './query.ts'
import type { AnalyticsScope } from './scope.ts'

export const OUTCOME_TYPES = [
  'delivered',
  'deferred',
  'bounced',
  'failed',
  'complained',
  'suppressed',
] as const
export type OutcomeType = (typeof OUTCOME_TYPES)[number]

export interface Outcome {
  id: string
  object: 'deliverability_outcome'
  type: OutcomeType
  email_id: string | null
  recipient: string | null
  recipient_domain: string | null
  /** SMTP reply code and enhanced status (RFC 3463), when the outcome had one. */
  code: number | null
  enhanced_code: string | null
  response: string | null
  /** Bounces: permanent (true) or not; null for other outcomes. */
  hard: boolean | null
  /** 'smtp' (the remote's reply), 'dsn' (a later report), 'arf' (a complaint) ... */
  source: string | null
  created_at: string
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null)

function outcomeOf(r: { id: string; type: string; payload: string; created_at: number | string }): Outcome {
  let p: Record<string, unknown> = {}
  try {
    p = JSON.parse(r.payload) as Record<string, unknown>
  } catch {}
  const type = r.type.slice('email.'.length) as OutcomeType
  const recipient = str(p.recipient)
  const response =
    str(p.response) ??
    str(p.last_response) ??
    (type === 'complained'
      ? [str(p.feedback_type), str(p.reporting_mta)].filter(Boolean).join(' from ') || null
      : null)
  return {
    id: r.id,
    object: 'deliverability_outcome',
    type,
    email_id: str(p.email_id),
    recipient,
    recipient_domain: recipient?.includes('@') ? (recipient.split('@').pop() as string).toLowerCase() : null,
    code: typeof p.code === 'number' ? p.code : null,
    enhanced_code: str(p.enhanced),
    response,
    hard: type === 'bounced' ? p.hard !== false : null,
    source:
      str(p.source) ?? (type === 'complained' ? 'arf' : type === 'suppressed' ? 'suppression_list' : null),
    created_at: new Date(Number(r.created_at)).toISOString(),
  }
}

export async function recentOutcomes(
  ctx: AnalyticsContext,
  s: AnalyticsScope,
  o: { types?: OutcomeType[]; limit?: number; cursor?: string },
): Promise<Page<Outcome>> {
  const limit = o.limit ?? 50
  const after = decodeCursor(o.cursor)
  const types = (o.types?.length ? o.types : OUTCOME_TYPES).map((t) => `email.${t}`)
  if (s.mailbox_ids !== null && s.mailbox_ids.length === 0) return { data: [], next_cursor: null }
  let q = ctx.store.db
    .selectFrom('events as e')
    .select(['e.id', 'e.type', 'e.payload', 'e.created_at'])
    .where('e.org_id', '=', s.org_id)
    .where('e.type', 'in', types)
    .where('e.created_at', '>=', s.from)
    .where('e.created_at', '<', s.to)
    .where('e.payload', s.test ? 'like' : 'not like', '%"test":true%')
  // The failed event about the whole message repeats its recipients' outcomes.
  q = q.where((eb) => eb.or([eb('e.type', '!=', 'email.failed'), eb('e.payload', 'like', '%"recipient":%')]))
  if (s.mailbox_ids !== null || s.sending_domain !== null || s.tag !== null) {
    const ids = s.mailbox_ids
    const sending = s.sending_domain
    q = q.where('e.subject_id', 'in', (eb) => {
      let m = eb.selectFrom('outbound_messages as om').select('om.id').where('om.org_id', '=', s.org_id)
      if (ids !== null) m = m.where('om.mailbox_id', 'in', ids)
      if (sending !== null)
        m = m.where('om.domain_id', 'in', (d) =>
          d.selectFrom('domains').select('id').where('org_id', '=', s.org_id).where('name', '=', sending),
        )
      if (s.tag !== null) {
        const [name, ...rest] = s.tag.split(':')
        m = m.where(
          'om.tags',
          'like',
          `%${JSON.stringify({ [name as string]: rest.join(':') }).slice(1, -1)}%`,
        )
      }
      return m
    })
  }
  if (s.recipient_domain !== null)
    q = q.where(sql<string>`lower(e.payload)`, 'like', `%"recipient":"%@${s.recipient_domain}"%`)
  if (after) q = q.where(olderThan(after, 'e.created_at', 'e.id'))
  const rows = await q
    .orderBy('e.created_at', 'desc')
    .orderBy('e.id', 'desc')
    .limit(limit + 1)
    .execute()
  const { page, next_cursor } = pageOf(rows, limit)
  return { data: page.map(outcomeOf), next_cursor }
}
