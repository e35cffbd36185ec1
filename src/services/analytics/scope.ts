// What an analytics request covers: the caller's org, the mailboxes the caller may see, the
// filters it gave (mailbox, sending domain, recipient domain, tag) and the time range, checked
// and resolved once for every analytics route.
// Invariants: every query is scoped by the caller's org; a mailbox-scoped key or a member
// session sees only the mailboxes it reaches (sends made with org-wide keys have no mailbox
// and are shown only to org-wide callers); a filter naming another org's mailbox or domain is
// a 404, never an empty answer that would confirm nothing; ranges are whole UTC hours (or days
// for a daily series): `from` rounds down, `to` rounds up. A test key sees test-mode traffic
// only (as it sees only test mail); other callers see it when they ask (`test=true`).

import type { Principal } from '../accounts/principal.ts'
import { findDomain } from '../domains/domains.ts'
import { ServiceError } from '../errors.ts'
import { findReadableMailbox, reachableMailboxIds } from '../messages/access.ts'
import type { Tx } from '../messages/context.ts'
import { seesTestMail } from '../outbound/views.ts'
import { HOUR_MS } from './tally.ts'

export const DAY_MS = 24 * HOUR_MS
const DEFAULT_RANGE_MS = 7 * DAY_MS

export interface AnalyticsQuery {
  from?: string
  to?: string
  mailbox?: string
  domain?: string
  recipient_domain?: string
  tag?: string
  /** Ask for test-mode traffic instead of live (a test key always gets it). */
  test?: boolean
}

export interface AnalyticsScope {
  org_id: string
  /** Null: every mailbox and the sends without one. */
  mailbox_ids: string[] | null
  sending_domain: string | null
  recipient_domain: string | null
  /** `name:value`, or null for all mail. */
  tag: string | null
  /** Test-mode traffic instead of live: counted from the events, never from rollups. */
  test: boolean
  /** Epoch ms, aligned to `step`; to is exclusive. */
  from: number
  to: number
}

const invalid = (field: string, code: string, message: string) =>
  new ServiceError('invalid', code, message, { details: [{ field: `querystring.${field}`, message }] })

function parseTime(field: string, v: string | undefined): number | null {
  if (v === undefined) return null
  const t = Date.parse(v)
  if (!Number.isFinite(t)) throw invalid(field, 'INVALID_TIME', `${field} is not an ISO 8601 time`)
  return t
}

export async function resolveScope(
  db: Tx,
  p: Principal,
  q: AnalyticsQuery,
  now: number,
  step: number = HOUR_MS,
): Promise<AnalyticsScope> {
  const to0 = parseTime('to', q.to) ?? now
  const from0 = parseTime('from', q.from) ?? to0 - DEFAULT_RANGE_MS
  if (to0 <= from0) throw invalid('to', 'INVALID_RANGE', 'to must be later than from')
  const from = Math.floor(from0 / step) * step
  const to = Math.ceil(to0 / step) * step

  let mailbox_ids: string[] | null = null
  if (q.mailbox !== undefined) mailbox_ids = [(await findReadableMailbox(db, p, q.mailbox)).id]
  else if (p.kind === 'key' ? p.key_scope === 'mailbox' : p.role === 'member')
    mailbox_ids = (await reachableMailboxIds(db, p).execute()).map((r) => r.id)

  const sending_domain = q.domain === undefined ? null : (await findDomain(db, p.org_id, q.domain)).name
  const recipient_domain = q.recipient_domain === undefined ? null : q.recipient_domain.trim().toLowerCase()
  if (recipient_domain !== null && !/^[^\s@*]+$/.test(recipient_domain))
    throw invalid('recipient_domain', 'INVALID_DOMAIN', 'recipient_domain is a domain name')
  if (q.tag !== undefined && !/^[^:]+:.*$/.test(q.tag))
    throw invalid('tag', 'INVALID_TAG', 'tag is name:value, as given in the send request’s tags')
  return {
    org_id: p.org_id,
    mailbox_ids,
    sending_domain,
    recipient_domain,
    tag: q.tag ?? null,
    test: seesTestMail(p, q.test === true),
    from,
    to,
  }
}
