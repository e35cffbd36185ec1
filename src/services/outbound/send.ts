// The send API's service: one message, a batch, or a dry run. Turns the caller's fields into
// a checked, composed message and enqueues it. Owns who may send as whom, the send limits
// (people: per user and per client address; programs: per key; orgs: hourly and daily caps)
// and what a dry run reports.
// Invariants:
// - The From address is on a verified, active domain of the caller's org; a mailbox-scoped
//   key (and a member's session) sends only as its mailbox or an alias reaching it.
// - Nothing with CR or LF reaches a header (compose.ts), and attachments are bytes only.
// - A test key's mail (p.test) takes the same path and is flagged; an Idempotency-Key used by a
//   test key and a live key never replays the other's send (the mode is part of the request).
// - A request is all or nothing: any invalid message refuses the whole batch before anything
//   is queued.

import addressparser from 'nodemailer/lib/addressparser'
import { AddressError, parseAddress } from '../../mail/address.ts'
import { ComposeError, composeMessage } from '../../mail/compose.ts'
import { newId } from '../../store/ids.ts'
import type { Principal } from '../accounts/principal.ts'
import { attachmentsForCompose } from '../attachments/attachments.ts'
import { ServiceError } from '../errors.ts'
import { hostedDomain, resolveRecipient } from '../mailboxes/resolve.ts'
import { reachableMailboxIds } from '../messages/access.ts'
import { rateLimitedError } from '../ratelimit/limiter.ts'
import { planTracking, recordTracking, type TrackingPlan } from '../tracking/plan.ts'
import { messageKey } from '../tracking/tokens.ts'
import type { OutboundContext } from './context.ts'
import { resolveDestination } from './destination.ts'
import { type EnqueueRecipient, type EnqueueRequest, enqueue } from './enqueue.ts'
import { withIdempotency } from './idempotency.ts'
import { peekCapacity } from './limits.ts'
import { suppressedAmong } from './suppressions.ts'
import { SIMULATOR_MTA, TEST_DOMAIN } from './test-mode.ts'

/** An attachment given inline (base64) or by the id of an upload (POST /v1/attachments). */
export type SendAttachment =
  | {
      filename: string
      /** Base64. */
      content: string
      content_type?: string
      content_id?: string
    }
  | { id: string; content_id?: string }

export interface SendInput {
  from: string
  to: string | string[]
  cc?: string | string[]
  bcc?: string | string[]
  reply_to?: string | string[]
  subject: string
  text?: string
  html?: string
  attachments?: SendAttachment[]
  headers?: Record<string, string>
  tags?: Record<string, string> | { name: string; value: string }[]
  /** ISO 8601. */
  scheduled_at?: string
  /** Add an open pixel to the HTML (email.opened events). */
  track_opens?: boolean
  /** Send the HTML's http(s) links through click redirects (email.clicked events). */
  track_clicks?: boolean
  /** Add List-Unsubscribe with one-click POST (RFC 8058); needs exactly one recipient. */
  list_unsubscribe?: boolean
  /**
   * REQUIRETLS (RFC 8689): deliver only over verified TLS to next hops that offer REQUIRETLS,
   * which keep the requirement on; bounced (5.7.30) when no MX qualifies. A `TLS-Required: No`
   * header of the message is then ignored (RFC 8689 4.1).
   */
  require_tls?: boolean
}

export interface SendMeta {
  ip: string | null
  idempotencyKey?: string
}

interface Addr {
  name: string
  address: string
}

interface Prepared {
  input: SendInput
  from: Addr
  domain: { id: string; name: string }
  mailboxId: string | null
  sentCopy: string | null
  to: Addr[]
  cc: Addr[]
  bcc: Addr[]
  replyTo: Addr[]
  attachments: { filename: string; content: Buffer; contentType: string | null; cid: string | null }[]
  tags: Record<string, string>
  scheduledAt: number | null
  inReplyTo: string | null
  references: string[]
  alsoInTransaction: EnqueueRequest['alsoInTransaction']
}

/** What a send from a stored composition (a draft) adds to the API's fields. */
export interface ComposedExtras {
  /** Attachment bytes already at hand (a draft's uploads). */
  attachments: { filename: string; content: Buffer; contentType: string | null; cid: string | null }[]
  inReplyTo: string | null
  references: string[]
  alsoInTransaction?: EnqueueRequest['alsoInTransaction']
}

const invalid = (field: string, message: string, code = 'INVALID_EMAIL') =>
  new ServiceError('invalid', code, `${field}: ${message}`, { details: [{ field, message }] })

const asList = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v]

/** Parses `a@b`, `Name <a@b>` or a list of them into checked addresses. */
export function parseAddresses(field: string, values: string[], max: number): Addr[] {
  const out: Addr[] = []
  for (const [i, v] of values.entries()) {
    if (/[\r\n\0]/.test(v)) throw invalid(`${field}[${i}]`, 'must not contain line breaks')
    const parsed = addressparser(v, { flatten: true }) as { name: string; address: string }[]
    if (parsed.length !== 1 || !parsed[0]?.address)
      throw invalid(`${field}[${i}]`, `'${v.slice(0, 100)}' is not one email address`)
    const a = parsed[0]
    try {
      const p = parseAddress(a.address)
      out.push({ name: a.name ?? '', address: p.quoted ? a.address : `${p.local}@${p.domain}` })
    } catch (err) {
      if (err instanceof AddressError) throw invalid(`${field}[${i}]`, err.message)
      throw err
    }
  }
  if (out.length > max) throw invalid(field, `at most ${max} addresses`)
  return out
}

function parseTags(tags: SendInput['tags']): Record<string, string> {
  if (!tags) return {}
  const entries = Array.isArray(tags) ? tags.map((t) => [t.name, t.value] as const) : Object.entries(tags)
  if (entries.length > 20) throw invalid('tags', 'at most 20 tags')
  for (const [k, v] of entries) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(k))
      throw invalid('tags', `tag name '${k}' must be 1-64 of A-Z a-z 0-9 _ -`)
    if (typeof v !== 'string' || v.length > 256)
      throw invalid('tags', `tag '${k}' must have a string value of at most 256 characters`)
  }
  return Object.fromEntries(entries)
}

/** Checks one message and the caller's right to send it; nothing is written. */
async function prepare(
  ctx: OutboundContext,
  p: Principal,
  input: SendInput,
  path: string,
  extras: ComposedExtras | null = null,
): Promise<Prepared> {
  const f = (name: string) => (path ? `${path}.${name}` : name)
  const max = ctx.settings.maxRecipients
  const [from] = parseAddresses(f('from'), [input.from], 1)
  if (!from) throw invalid(f('from'), 'is required')
  const to = parseAddresses(f('to'), asList(input.to), max)
  const cc = parseAddresses(f('cc'), asList(input.cc), max)
  const bcc = parseAddresses(f('bcc'), asList(input.bcc), max)
  const replyTo = parseAddresses(f('reply_to'), asList(input.reply_to), 10)
  if (to.length + cc.length + bcc.length === 0) throw invalid(f('to'), 'give at least one recipient')
  if (to.length + cc.length + bcc.length > max)
    throw invalid(f('to'), `at most ${max} recipients in to, cc and bcc together`)
  if (typeof input.subject !== 'string') throw invalid(f('subject'), 'is required')
  if (/[\r\n\0]/.test(input.subject)) throw invalid(f('subject'), 'must not contain line breaks (CR or LF)')
  if (input.text == null && input.html == null && !input.attachments?.length && !extras?.attachments.length)
    throw invalid(f('text'), 'give text, html or an attachment')
  const given = input.attachments ?? []
  const byId = given.flatMap((a, i) => ('id' in a ? [{ id: a.id, i }] : []))
  const uploads = new Map(
    (
      await attachmentsForCompose(
        ctx,
        p,
        byId.map((x) => x.id),
        (k) => `${f('attachments')}[${byId[k]?.i}].id`,
      )
    ).map((u) => [u.id, u]),
  )
  const attachments: Prepared['attachments'] = given.map((a, i) => {
    if (a.content_id && /[\r\n\0<>]/.test(a.content_id))
      throw invalid(`${f('attachments')}[${i}].content_id`, 'may not contain line breaks or angle brackets')
    if ('id' in a) {
      const u = uploads.get(a.id) as { filename: string; contentType: string; content: Buffer }
      return {
        filename: u.filename,
        content: u.content,
        contentType: u.contentType,
        cid: a.content_id ?? null,
      }
    }
    if (!a.filename || /[\r\n\0/\\]/.test(a.filename))
      throw invalid(
        `${f('attachments')}[${i}].filename`,
        'is required and may not contain line breaks or slashes',
      )
    if (!/^[A-Za-z0-9+/=\s_-]*$/.test(a.content))
      throw invalid(`${f('attachments')}[${i}].content`, 'must be base64')
    if (a.content_type && !/^[\w.+-]+\/[\w.+-]+$/.test(a.content_type))
      throw invalid(`${f('attachments')}[${i}].content_type`, 'must be a MIME type such as application/pdf')
    return {
      filename: a.filename,
      content: Buffer.from(
        a.content,
        a.content.includes('-') || a.content.includes('_') ? 'base64url' : 'base64',
      ),
      contentType: a.content_type ?? null,
      cid: a.content_id ?? null,
    }
  })
  if (extras) attachments.push(...extras.attachments)
  for (const [name, value] of Object.entries(input.headers ?? {}))
    if (typeof value !== 'string') throw invalid(`${f('headers')}.${name}`, 'must be a string')
  const tags = parseTags(input.tags)
  if (input.list_unsubscribe) {
    if (new Set([...to, ...cc, ...bcc].map((a) => a.address.toLowerCase())).size !== 1)
      throw invalid(
        f('list_unsubscribe'),
        'needs exactly one recipient (the one the link unsubscribes); send one message per recipient, e.g. with POST /v1/emails/batch',
      )
    if (Object.keys(input.headers ?? {}).some((h) => /^list-unsubscribe(-post)?$/i.test(h)))
      throw invalid(
        f('headers'),
        'give either list_unsubscribe or your own List-Unsubscribe headers, not both',
      )
  }
  let scheduledAt: number | null = null
  if (input.scheduled_at !== undefined) {
    const t = Date.parse(input.scheduled_at)
    if (!Number.isFinite(t) || !/\d{4}-\d{2}-\d{2}T/.test(input.scheduled_at))
      throw invalid(f('scheduled_at'), 'must be an ISO 8601 date and time, e.g. 2026-12-01T09:00:00Z')
    if (t > ctx.clock.now() + 30 * 86_400_000)
      throw invalid(f('scheduled_at'), 'may be at most 30 days ahead')
    scheduledAt = t
  }

  // Who may send as this From address.
  const fromDomain = from.address.split('@').pop() as string
  const domain = await ctx.store.db
    .selectFrom('domains')
    .select(['id', 'name', 'status', 'active'])
    .where('org_id', '=', p.org_id)
    .where('name', '=', fromDomain.toLowerCase())
    .executeTakeFirst()
  if (!domain || domain.status !== 'verified' || !domain.active)
    throw new ServiceError(
      'forbidden',
      'SENDER_DOMAIN_NOT_VERIFIED',
      `${f('from')}: ${fromDomain} is not a verified domain of this organisation; add it and verify its DNS first`,
      { details: [{ field: f('from'), message: 'domain not verified' }] },
    )
  const owner = await senderMailbox(ctx, from.address)
  let mailboxId: string | null = owner
  const restricted = p.kind === 'key' ? p.key_scope === 'mailbox' : p.role === 'member'
  if (restricted) {
    const reach = await reachableMailboxIds(ctx.store.db, p).execute()
    const ids = new Set(reach.map((r) => r.id))
    if (!owner || !ids.has(owner))
      throw new ServiceError(
        'forbidden',
        'SENDER_NOT_ALLOWED',
        `${f('from')}: you may send only as your own mailbox or its aliases`,
        { details: [{ field: f('from'), message: 'not your mailbox or alias' }] },
      )
  }
  if (p.kind === 'key' && p.key_scope !== 'mailbox') mailboxId = owner
  const sentCopy =
    (p.kind === 'key' && p.key_scope === 'mailbox') || (p.kind === 'session' && owner) ? owner : null
  return {
    input,
    from,
    domain: { id: domain.id, name: domain.name },
    mailboxId,
    sentCopy,
    to,
    cc,
    bcc,
    replyTo,
    attachments,
    tags,
    scheduledAt,
    inReplyTo: extras?.inReplyTo ?? null,
    references: extras?.references ?? [],
    alsoInTransaction: extras?.alsoInTransaction,
  }
}

/** The mailbox an address belongs to (directly or through an alias reaching exactly one mailbox), or null. */
/** The mailbox an address sends as (itself, or the first local mailbox an alias of it delivers to). */
export async function senderMailbox(
  ctx: Pick<OutboundContext, 'store'>,
  address: string,
): Promise<string | null> {
  const r = await resolveRecipient(ctx.store, address)
  if (r.kind === 'mailbox') return r.mailbox_id
  if (r.kind === 'alias') {
    for (const t of r.targets) {
      const x = await resolveRecipient(ctx.store, t)
      if (x.kind === 'mailbox' && x.org_id === r.org_id) return x.mailbox_id
    }
  }
  return null
}

/** What tracking a checked request asked for changes in its message (null: nothing). */
function trackingOf(ctx: OutboundContext, m: Prepared, messageId: string): TrackingPlan | null {
  const options = {
    opens: m.input.track_opens === true,
    clicks: m.input.track_clicks === true,
    unsubscribe: m.input.list_unsubscribe === true,
  }
  if (!options.opens && !options.clicks && !options.unsubscribe) return null
  if (!ctx.tracking)
    throw new ServiceError('temporary', 'TRACKING_UNAVAILABLE', 'tracking is not set up in this process')
  const all = new Set([...m.to, ...m.cc, ...m.bcc].map((a) => a.address))
  const recipient = all.size === 1 ? ([...all][0] as string) : null
  return planTracking(ctx.tracking, messageKey(messageId), m.input.html ?? null, options, recipient)
}

/** The message a checked request makes (sending and the dry run compose the same way). */
const compose = (m: Prepared, messageId: string, date: Date, plan: TrackingPlan | null = null) =>
  composeMessage({
    from: m.from,
    to: m.to,
    cc: m.cc,
    bcc: m.bcc,
    replyTo: m.replyTo,
    subject: m.input.subject,
    text: m.input.text ?? null,
    html: plan ? plan.html : (m.input.html ?? null),
    attachments: m.attachments,
    headers: { ...(m.input.headers ?? {}), ...(plan?.headers ?? {}) },
    messageId,
    date,
    inReplyTo: m.inReplyTo,
    references: m.references,
  })

async function composeAndEnqueue(ctx: OutboundContext, p: Principal, m: Prepared, origin: 'api' | 'batch') {
  const now = ctx.clock.now()
  const messageId = `${newId('msg', now).slice(4)}@${m.domain.name}`
  const plan = trackingOf(ctx, m, messageId)
  let raw: Buffer
  try {
    raw = await compose(
      m,
      messageId,
      new Date(m.scheduledAt && m.scheduledAt > now ? m.scheduledAt : now),
      plan,
    )
  } catch (err) {
    if (err instanceof ComposeError) throw invalid(err.field, err.message)
    throw err
  }
  if (raw.length > ctx.settings.maxMessageBytes)
    throw new ServiceError(
      'invalid',
      'MESSAGE_TOO_LARGE',
      `the composed message is ${raw.length} bytes; the limit is ${ctx.settings.maxMessageBytes} (smtp.max_message_bytes)`,
    )
  // The sender's Sent copy carries no pixel or redirects: reading it must not count as an open.
  const sentCopyRaw =
    plan && m.sentCopy && (plan.options.opens || plan.options.clicks)
      ? await compose(m, messageId, new Date(m.scheduledAt && m.scheduledAt > now ? m.scheduledAt : now))
      : null
  const recipients: EnqueueRecipient[] = [
    ...m.to.map((a) => ({ address: a.address, type: 'to' as const })),
    ...m.cc.map((a) => ({ address: a.address, type: 'cc' as const })),
    ...m.bcc.map((a) => ({ address: a.address, type: 'bcc' as const })),
  ]
  // One row per address: the same address in to and cc gets the message once.
  const seen = new Set<string>()
  const unique = recipients.filter((r) => {
    const k = r.address.toLowerCase()
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
  const fmt = (a: Addr) => (a.name ? `${a.name} <${a.address}>` : a.address)
  return enqueue(ctx, {
    org_id: p.org_id,
    domain: m.domain,
    mailbox_id: m.mailboxId,
    api_key_id: p.key_id,
    user_id: p.user_id,
    origin,
    from_header: fmt(m.from),
    subject: m.input.subject,
    raw,
    message_id_header: `<${messageId}>`,
    recipients: unique,
    tags: m.tags,
    scheduled_at: m.scheduledAt,
    headers_json: {
      to: m.to.map(fmt),
      cc: m.cc.map(fmt),
      bcc: m.bcc.map(fmt),
      reply_to: m.replyTo.map(fmt),
    },
    sent_copy_mailbox: m.sentCopy,
    ...(sentCopyRaw ? { sent_copy_raw: sentCopyRaw } : {}),
    ...(m.alsoInTransaction || plan
      ? {
          alsoInTransaction: async (tx, at, filed, emailId) => {
            if (plan) await recordTracking(tx, plan, p.org_id, emailId, at)
            await m.alsoInTransaction?.(tx, at, filed, emailId)
          },
        }
      : {}),
    actor: p.key_id ?? p.user_id ?? 'unknown',
    ...(p.test ? { test: true } : {}),
    ...(m.input.require_tls === true ? { require_tls: true } : {}),
  })
}

/** Send limits for `n` messages with `recipients` recipients in all: per person, per key, per org. */
async function checkLimits(
  ctx: OutboundContext,
  p: Principal,
  meta: SendMeta,
  n: number,
  recipients: number,
) {
  const r = ctx.rules
  const d =
    p.kind === 'session'
      ? await ctx.limiter.hitAll([
          { rule: r.send_user, subject: p.user_id ?? '' },
          ...(meta.ip ? [{ rule: r.send_ip, subject: meta.ip }] : []),
        ])
      : await ctx.limiter.hit(r.send_key, p.key_id ?? '', n)
  if (!d.allowed) throw rateLimitedError(d, 'messages sent')
  // Test mail never counts against the org's caps (test-mode.ts); the key's own rate still holds.
  if (p.test) return
  const cap = await peekCapacity(ctx, p.org_id, recipients)
  if (!cap.ok) {
    const wait = Math.max(1, Math.ceil((cap.resetAt - ctx.clock.now()) / 1000))
    throw new ServiceError(
      'rate_limited',
      'ORG_SEND_CAP',
      `This organisation may send to ${cap.cap} recipients per ${cap.window}; ${cap.remaining} remain in this window. Try again later or ask the operator to raise the cap.`,
      { retryAfter: wait },
    )
  }
}

const countRecipients = (m: Prepared) => m.to.length + m.cc.length + m.bcc.length

export interface SendResult {
  id: string
  status: 'queued' | 'scheduled' | 'failed'
  suppressed: string[]
}

export async function sendEmail(
  ctx: OutboundContext,
  p: Principal,
  input: SendInput,
  meta: SendMeta,
): Promise<{ status: number; body: SendResult; replayed: boolean }> {
  const request = p.test ? { kind: 'send', test: true, input } : { kind: 'send', input }
  return withIdempotency(ctx, p.org_id, meta.idempotencyKey, request, async () => {
    const m = await prepare(ctx, p, input, '')
    await checkLimits(ctx, p, meta, 1, countRecipients(m))
    const r = await composeAndEnqueue(ctx, p, m, 'api')
    ctx.wake?.()
    return { status: 202, body: r }
  })
}

export async function sendBatch(
  ctx: OutboundContext,
  p: Principal,
  inputs: SendInput[],
  meta: SendMeta,
): Promise<{ status: number; body: { data: SendResult[] }; replayed: boolean }> {
  if (inputs.length === 0) throw invalid('body', 'give at least one message')
  if (inputs.length > ctx.settings.maxBatch)
    throw invalid('body', `at most ${ctx.settings.maxBatch} messages per batch`)
  const request = p.test ? { kind: 'batch', test: true, inputs } : { kind: 'batch', inputs }
  return withIdempotency(ctx, p.org_id, meta.idempotencyKey, request, async () => {
    const prepared: Prepared[] = []
    for (const [i, input] of inputs.entries()) prepared.push(await prepare(ctx, p, input, `[${i}]`))
    await checkLimits(
      ctx,
      p,
      meta,
      prepared.length,
      prepared.reduce((n, m) => n + countRecipients(m), 0),
    )
    const data = await Promise.all(prepared.map((m) => composeAndEnqueue(ctx, p, m, 'batch')))
    ctx.wake?.()
    return { status: 202, body: { data } }
  })
}

/**
 * Sends a composition stored for a mailbox (a draft) through the same checks, limits and queue
 * as POST /v1/emails. The From must be the mailbox or one of its aliases, whoever calls; the
 * Sent copy goes to that mailbox (when its save_sent_copy is on).
 */
export async function sendAsMailbox(
  ctx: OutboundContext,
  p: Principal,
  mailboxId: string,
  input: SendInput,
  extras: ComposedExtras,
  meta: SendMeta,
): Promise<SendResult> {
  const m = await prepare(ctx, p, input, '', extras)
  if (m.mailboxId !== mailboxId)
    throw new ServiceError(
      'forbidden',
      'SENDER_NOT_ALLOWED',
      'from: a draft is sent as its mailbox or one of the mailbox’s aliases',
      { details: [{ field: 'from', message: 'not this mailbox or one of its aliases' }] },
    )
  m.sentCopy = mailboxId
  await checkLimits(ctx, p, meta, 1, countRecipients(m))
  const r = await composeAndEnqueue(ctx, p, m, 'api')
  ctx.wake?.()
  return r
}

export interface ValidationReport {
  valid: boolean
  errors: { field: string; message: string }[]
  size: number | null
  recipients: {
    address: string
    status: 'ok' | 'suppressed' | 'local' | 'no_mail_server' | 'dns_error'
    detail: string | null
    mx: string[]
  }[]
}

/** A dry run: every check a send makes, plus each recipient domain's mail servers; nothing is queued. */
export async function validateEmail(
  ctx: OutboundContext,
  p: Principal,
  input: SendInput,
): Promise<ValidationReport> {
  let m: Prepared
  try {
    m = await prepare(ctx, p, input, '')
  } catch (err) {
    if (err instanceof ServiceError && (err.kind === 'invalid' || err.kind === 'forbidden'))
      return {
        valid: false,
        errors: err.details ?? [{ field: 'body', message: err.message }],
        size: null,
        recipients: [],
      }
    throw err
  }
  const errors: { field: string; message: string }[] = []
  let size: number | null = null
  try {
    const key = newId('msg', ctx.clock.now()).slice(4)
    const raw = await compose(
      m,
      `${key}@${m.domain.name}`,
      new Date(ctx.clock.now()),
      trackingOf(ctx, m, `${key}@x`),
    )
    size = raw.length
    if (raw.length > ctx.settings.maxMessageBytes)
      errors.push({
        field: 'body',
        message: `the message is ${raw.length} bytes; the limit is ${ctx.settings.maxMessageBytes}`,
      })
  } catch (err) {
    if (err instanceof ComposeError) errors.push({ field: err.field, message: err.message })
    else throw err
  }
  const all = [...m.to, ...m.cc, ...m.bcc].map((a) => a.address)
  const suppressed = await suppressedAmong(ctx.store.db, p.org_id, all)
  const byDomain = new Map<string, Awaited<ReturnType<typeof resolveDestination>> | 'local' | 'simulated'>()
  for (const address of all) {
    const d = (address.split('@').pop() as string).toLowerCase()
    if (byDomain.has(d)) continue
    // A test key's magic recipients are simulated (test-mode.ts): the domain needs no mail server.
    if (p.test && d === TEST_DOMAIN) {
      byDomain.set(d, 'simulated')
      continue
    }
    const hosted = await hostedDomain(ctx.store, d)
    byDomain.set(
      d,
      hosted && hosted.backup_mx !== 1
        ? 'local'
        : await resolveDestination(d, {
            resolver: ctx.resolver,
            allows: (ip) => ctx.allows(ip),
            localHosts: ctx.settings.localHosts,
            port: ctx.settings.mxPort,
          }),
    )
  }
  const recipients = all.map((address) => {
    const dest = byDomain.get((address.split('@').pop() as string).toLowerCase())
    if (suppressed.has(address.toLowerCase()))
      return { address, status: 'suppressed' as const, detail: 'on the suppression list', mx: [] }
    if (dest === 'simulated')
      return {
        address,
        status: 'ok' as const,
        detail: 'test mode: the outcome is simulated, nothing is sent',
        mx: [SIMULATOR_MTA],
      }
    if (dest === 'local' || dest === undefined)
      return { address, status: 'local' as const, detail: null, mx: [] }
    if (dest.kind === 'ok')
      return {
        address,
        status: 'ok' as const,
        detail: null,
        mx: [...new Set(dest.targets.map((t) => t.host))],
      }
    return {
      address,
      status: dest.kind === 'permanent' ? ('no_mail_server' as const) : ('dns_error' as const),
      detail: dest.reason,
      mx: [],
    }
  })
  const bad = recipients.filter((r) => r.status === 'suppressed' || r.status === 'no_mail_server')
  return { valid: errors.length === 0 && bad.length === 0, errors, size, recipients }
}
