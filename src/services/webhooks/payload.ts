// Webhook bodies (Standard Webhooks: `{type, timestamp, data}`), built by the sender at a
// delivery's first attempt from the event row and, where the event names one, the stored
// object it is about:
// - email.received: the parsed inbound message, as Postmark's inbound hook gives it: envelope,
//   headers, from/to/cc/reply-to, subject, text, html, attachment metadata with download URLs
//   (GET /v1/messages/{id}/attachments/{n}, which needs a key that reads the mailbox),
//   authentication results, the spam verdict and the plus-address tag.
// - outbound lifecycle events (email.*): the event's payload (email id, recipient, SMTP
//   response...), the status the event reports, and the message's from, subject, tags and
//   Message-ID.
// - everything else: the event's payload with its subject id.
// Invariants: a body never carries a secret (events hold none; credentials of the envelope are
// not stored); everything is read scoped by the event's org.

import { parsePayload } from '../events/list.ts'
import { EVENT_TYPES, isEventType } from '../events/types.ts'
import { parseForReading } from '../messages/mime.ts'
import { addressList, storedAttachments } from '../messages/views.ts'
import type { WebhooksContext } from './context.ts'

export interface EventRow {
  id: string
  org_id: string | null
  type: string
  subject_id: string | null
  mailbox_id: string | null
  payload: string
  created_at: number
}

export async function buildBody(ctx: WebhooksContext, e: EventRow): Promise<string> {
  const payload = parsePayload(e.payload)
  let data: Record<string, unknown> = { event_id: e.id, ...payload }
  const subject = isEventType(e.type) ? EVENT_TYPES[e.type].subject : null
  if (e.type === 'email.received' && e.subject_id && e.org_id)
    data = { event_id: e.id, ...(await inboundMessage(ctx, e.org_id, e.subject_id, payload)) }
  else if (subject === 'email' && e.subject_id && e.org_id)
    data = {
      ...data,
      status: e.type.slice('email.'.length),
      ...(await outboundSummary(ctx, e.org_id, e.subject_id)),
    }
  else if (subject && e.subject_id) data[`${subject}_id`] ??= e.subject_id
  return JSON.stringify({ type: e.type, timestamp: new Date(Number(e.created_at)).toISOString(), data })
}

const json = (text: string | null): unknown => {
  try {
    return text ? JSON.parse(text) : null
  } catch {
    return null
  }
}

/** The `+tag` of the envelope recipient that reached this mailbox, if any. */
function plusTag(mailbox: string, recipients: unknown): string | null {
  const [local, domain] = mailbox.toLowerCase().split('@')
  if (!Array.isArray(recipients)) return null
  for (const r of recipients) {
    const address = typeof r === 'string' ? r : (r as { address?: unknown })?.address
    if (typeof address !== 'string') continue
    const [l = '', d] = address.toLowerCase().split('@')
    const plus = l.indexOf('+')
    if (plus > 0 && d === domain && l.slice(0, plus) === local) return l.slice(plus + 1)
  }
  return null
}

async function inboundMessage(
  ctx: WebhooksContext,
  orgId: string,
  messageId: string,
  payload: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const m = await ctx.store.db
    .selectFrom('messages as m')
    .innerJoin('mailboxes as mb', 'mb.id', 'm.mailbox_id')
    .select([
      'm.id',
      'm.mailbox_id',
      'm.blob_sha256',
      'm.size',
      'm.subject',
      'm.from_address',
      'm.from_name',
      'm.to_json',
      'm.cc_json',
      'm.reply_to_json',
      'm.message_id_header',
      'm.in_reply_to',
      'm.sent_at',
      'm.received_at',
      'm.auth_results',
      'm.spam_score',
      'm.attachments',
      'm.envelope',
      'mb.address as mailbox_address',
    ])
    .where('m.org_id', '=', orgId)
    .where('m.id', '=', messageId)
    .executeTakeFirst()
  if (!m) return { message_id: messageId, ...payload, deleted: true }
  let raw: Buffer | null = null
  try {
    raw = await ctx.blobs.get(orgId, m.blob_sha256)
  } catch {
    raw = null
  }
  const read = raw ? await parseForReading(raw) : null
  const envelope = json(m.envelope) as Record<string, unknown> | null
  const base = ctx.publicUrl().replace(/\/$/, '')
  const folder = typeof payload.folder === 'string' ? payload.folder : 'inbox'
  return {
    message_id: m.id,
    mailbox_id: m.mailbox_id,
    mailbox: m.mailbox_address,
    folder,
    envelope: envelope
      ? {
          mail_from: envelope.mail_from ?? null,
          recipients: envelope.recipients ?? [],
          helo: envelope.helo ?? null,
          client_ip: envelope.client_ip ?? null,
          tls: envelope.tls ?? null,
        }
      : null,
    message_id_header: m.message_id_header,
    in_reply_to: m.in_reply_to,
    date: m.sent_at === null ? null : new Date(Number(m.sent_at)).toISOString(),
    received_at: new Date(Number(m.received_at)).toISOString(),
    from: m.from_address ? { name: m.from_name ?? '', address: m.from_address } : null,
    to: addressList(m.to_json),
    cc: addressList(m.cc_json),
    reply_to: addressList(m.reply_to_json),
    subject: m.subject,
    headers: read?.headers ?? [],
    text: read?.text ?? null,
    html: read?.html ?? null,
    size: Number(m.size),
    attachments: storedAttachments(m.attachments).map((a) => ({
      ...a,
      url: `${base}/v1/messages/${m.id}/attachments/${a.index}`,
    })),
    authentication: { summary: payload.auth ?? null, results: m.auth_results },
    spam: { score: m.spam_score === null ? null : Number(m.spam_score), is_spam: folder === 'junk' },
    plus_tag: plusTag(m.mailbox_address, envelope?.recipients),
  }
}

async function outboundSummary(
  ctx: WebhooksContext,
  orgId: string,
  emailId: string,
): Promise<Record<string, unknown>> {
  const m = await ctx.store.db
    .selectFrom('outbound_messages')
    .select(['id', 'from_header', 'subject', 'tags', 'message_id_header', 'status'])
    .where('org_id', '=', orgId)
    .where('id', '=', emailId)
    .executeTakeFirst()
  if (!m) return { email_id: emailId }
  const out: Record<string, unknown> = {
    email_id: m.id,
    from: m.from_header,
    subject: m.subject,
    tags: json(m.tags) ?? {},
    message_id_header: m.message_id_header,
    email_status: m.status,
  }
  return out
}
