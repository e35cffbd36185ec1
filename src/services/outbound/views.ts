// What the API shows of outbound mail: the email view (per-recipient state and events), the
// list with filters, and the trace. Owns who sees which sends: org-wide keys and admins see
// the org's; a mailbox key sees its mailbox's; a member sees the sends they made or made
// from mailboxes they reach.
// Test mode (test-mode.ts) splits what each caller sees, as Stripe's and Resend's test keys
// do: a test key sees only test mail; everyone else sees live mail, or test mail instead when
// they ask for it (`test: true`, the API's `?test=true`).
// Invariant: every query is scoped by org, then narrowed by the principal and the mode.

import type { OutboundMessage, OutboundRecipient } from '../../store/schema.ts'
import type { Principal } from '../accounts/principal.ts'
import { ServiceError } from '../errors.ts'
import { reachableMailboxIds } from '../messages/access.ts'
import type { Tx } from '../messages/context.ts'
import { decodeCursor, encodeCursor } from '../messages/cursor.ts'
import type { OutboundContext } from './context.ts'

const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString()

export interface RecipientView {
  address: string
  type: 'to' | 'cc' | 'bcc'
  state: OutboundRecipient['state']
  attempts: number
  last_code: number | null
  last_enhanced_code: string | null
  last_response: string | null
  remote_mta: string | null
  delivered_at: string | null
  next_attempt_at: string | null
}

export interface EmailSummary {
  id: string
  object: 'email'
  from: string
  to: string[]
  cc: string[]
  bcc: string[]
  reply_to: string[]
  subject: string
  status: OutboundMessage['status']
  origin: string
  tags: Record<string, string>
  message_id: string | null
  size: number
  attempts: number
  held_reason: string | null
  created_at: string
  scheduled_at: string | null
  first_attempt_at: string | null
  next_attempt_at: string | null
  finished_at: string | null
  /** Sent with a test key: simulated, never sent. */
  test: boolean
}

export interface EmailView extends EmailSummary {
  recipients: RecipientView[]
  events: { type: string; recipient: string | null; created_at: string; data: Record<string, unknown> }[]
}

const parse = <T>(text: string, fallback: T): T => {
  try {
    return JSON.parse(text) as T
  } catch {
    return fallback
  }
}

export function emailSummary(m: OutboundMessage): EmailSummary {
  const h = parse<{ to?: string[]; cc?: string[]; bcc?: string[]; reply_to?: string[] }>(m.headers_json, {})
  return {
    id: m.id,
    object: 'email',
    from: m.from_header,
    to: h.to ?? [],
    cc: h.cc ?? [],
    bcc: h.bcc ?? [],
    reply_to: h.reply_to ?? [],
    subject: m.subject,
    status: m.status,
    origin: m.origin,
    tags: parse(m.tags, {}),
    message_id: m.message_id_header,
    size: Number(m.size),
    attempts: Number(m.attempts),
    held_reason: m.held_reason,
    created_at: iso(m.created_at) as string,
    scheduled_at: iso(m.scheduled_at),
    first_attempt_at: iso(m.first_attempt_at),
    next_attempt_at:
      m.status === 'sent' || m.status === 'failed' || m.status === 'cancelled'
        ? null
        : iso(m.next_attempt_at),
    finished_at: iso(m.finished_at),
    test: Number(m.test) === 1,
  }
}

export const recipientView = (r: OutboundRecipient): RecipientView => ({
  address: r.address,
  type: r.type,
  state: r.state,
  attempts: Number(r.attempts),
  last_code: r.last_code === null ? null : Number(r.last_code),
  last_enhanced_code: r.last_enhanced_code,
  last_response: r.last_response,
  remote_mta: r.remote_mta,
  delivered_at: iso(r.delivered_at),
  next_attempt_at: r.state === 'queued' || r.state === 'deferred' ? iso(r.next_attempt_at) : null,
})

/** Which mail `p` sees: a test key only test mail; others live mail, or test mail when they ask. */
export const seesTestMail = (p: Principal, askedForTest = false): boolean => p.test === true || askedForTest

/** Narrows an outbound_messages query to what `p` may see (in the mode asked for). */
function visible(db: Tx, p: Principal, askedForTest = false) {
  let q = db
    .selectFrom('outbound_messages')
    .selectAll()
    .where('org_id', '=', p.org_id)
    .where('test', '=', seesTestMail(p, askedForTest) ? 1 : 0)
  const restricted = p.kind === 'key' ? p.key_scope === 'mailbox' : p.role === 'member'
  if (restricted)
    q = q.where((eb) =>
      eb.or([
        eb('mailbox_id', 'in', reachableMailboxIds(db, p)),
        ...(p.kind === 'session' ? [eb('user_id', '=', p.user_id ?? '')] : []),
      ]),
    )
  return q
}

export async function findEmail(
  db: Tx,
  p: Principal,
  id: string,
  askedForTest = false,
): Promise<OutboundMessage> {
  const m = await visible(db, p, askedForTest).where('id', '=', id).executeTakeFirst()
  if (!m)
    throw new ServiceError(
      'not_found',
      'EMAIL_NOT_FOUND',
      seesTestMail(p, askedForTest)
        ? `No test email ${id} in this organisation${p.test ? ' (a test key sees only test mail)' : ''}.`
        : `No email ${id} in this organisation (test mail is listed with ?test=true).`,
    )
  return m
}

/** The recipients of a message the caller has already found (in its org). */
const recipientsOf = (db: Tx, m: OutboundMessage) =>
  db
    .selectFrom('outbound_recipients')
    .selectAll()
    .where('outbound_id', '=', m.id)
    .where('org_id', '=', m.org_id)
    .orderBy('id')
    .execute()

export async function getEmail(
  ctx: Pick<OutboundContext, 'store'>,
  p: Principal,
  id: string,
  askedForTest = false,
): Promise<EmailView> {
  const db = ctx.store.db
  const m = await findEmail(db, p, id, askedForTest)
  const recipients = await recipientsOf(db, m)
  const events = await db
    .selectFrom('events')
    .select(['type', 'payload', 'created_at', 'id'])
    .where('org_id', '=', p.org_id)
    .where('subject_id', '=', m.id)
    .where('type', 'like', 'email.%')
    .orderBy('created_at')
    .orderBy('id')
    .limit(1000)
    .execute()
  return {
    ...emailSummary(m),
    recipients: recipients.map(recipientView),
    events: events.map((e) => {
      const data = parse<Record<string, unknown>>(e.payload, {})
      const { email_id: _e, recipient, ...rest } = data
      return {
        type: e.type,
        recipient: typeof recipient === 'string' ? recipient : null,
        created_at: iso(e.created_at) as string,
        data: rest,
      }
    }),
  }
}

export interface EmailFilters {
  status?: OutboundMessage['status'][]
  recipient?: string
  tag?: string
  after?: string
  before?: string
  limit?: number
  cursor?: string
  /** List test mail instead of live mail (a test key always lists test mail). */
  test?: boolean
}

export async function listEmails(
  ctx: Pick<OutboundContext, 'store'>,
  p: Principal,
  f: EmailFilters,
): Promise<{ data: EmailSummary[]; next_cursor: string | null }> {
  const db = ctx.store.db
  const limit = Math.min(Math.max(f.limit ?? 50, 1), 200)
  let q = visible(db, p, f.test === true)
  if (f.status?.length) q = q.where('status', 'in', f.status)
  if (f.recipient)
    q = q.where('id', 'in', (eb) =>
      eb
        .selectFrom('outbound_recipients')
        .select('outbound_id')
        .where('org_id', '=', p.org_id)
        .where('address', '=', (f.recipient as string).toLowerCase()),
    )
  for (const [field, v] of [
    ['after', f.after],
    ['before', f.before],
  ] as const) {
    if (v === undefined) continue
    const t = Date.parse(v)
    if (!Number.isFinite(t))
      throw new ServiceError('invalid', 'INVALID_DATE', `${field} must be an ISO 8601 date`, {
        details: [{ field: `querystring.${field}`, message: 'not an ISO 8601 date' }],
      })
    q = field === 'after' ? q.where('created_at', '>=', t) : q.where('created_at', '<', t)
  }
  const c = decodeCursor(f.cursor)
  if (c)
    q = q.where((eb) =>
      eb.or([eb('created_at', '<', c.t), eb.and([eb('created_at', '=', c.t), eb('id', '<', c.id)])]),
    )
  let rows = await q
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(f.tag ? 1000 : limit + 1)
    .execute()
  if (f.tag) {
    const [k, v] = f.tag.split(':', 2)
    rows = rows.filter((r) => {
      const tags = parse<Record<string, string>>(r.tags, {})
      return k !== undefined && k in tags && (v === undefined || tags[k] === v)
    })
  }
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return {
    data: page.map(emailSummary),
    next_cursor:
      rows.length > limit && last ? encodeCursor({ t: Number(last.created_at), id: last.id }) : null,
  }
}

export interface TraceView {
  email_id: string
  steps: { at: string; attempt: number; kind: string; detail: Record<string, unknown> }[]
  final: { status: OutboundMessage['status']; recipients: RecipientView[] }
}

export async function emailTrace(
  ctx: Pick<OutboundContext, 'store'>,
  p: Principal,
  id: string,
  askedForTest = false,
): Promise<TraceView> {
  const db = ctx.store.db
  const m = await findEmail(db, p, id, askedForTest)
  const rows = await db
    .selectFrom('outbound_trace')
    .selectAll()
    .where('outbound_id', '=', m.id)
    .where('org_id', '=', p.org_id)
    .orderBy('id')
    .limit(5000)
    .execute()
  const recipients = await recipientsOf(db, m)
  const queued = {
    at: iso(m.created_at) as string,
    attempt: 0,
    kind: 'queued',
    detail: {
      mail_from: m.mail_from,
      size: Number(m.size),
      recipients: recipients.length,
      scheduled_at: iso(m.scheduled_at),
    },
  }
  return {
    email_id: m.id,
    steps: [
      queued,
      ...rows.map((r) => ({
        at: iso(r.at) as string,
        attempt: Number(r.attempt),
        kind: r.kind,
        detail: parse<Record<string, unknown>>(r.detail, {}),
      })),
    ],
    final: { status: m.status, recipients: recipients.map(recipientView) },
  }
}
