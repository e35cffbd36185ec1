// Mail a mail client submits (SMTP submission on 587/465): the message is the client's, already
// composed; Postern checks who may send it, completes the header where RFC 6409 8 lets a
// submission server (Message-ID, Date), and puts it through the same queue as the API
// (enqueue.ts: DKIM signature, return path, durable rows, a copy in the mailbox's Sent folder).
// Invariants:
// - The envelope sender and the From header are the logged-in mailbox or one of its aliases;
//   the From domain is a verified, active domain of the mailbox's organisation.
// - Per-mailbox and per-organisation sending limits apply as for the API.
// - A message is accepted (250) only after enqueue resolved: durable, then delivered by the worker.
// - Its DSN request (RET, ENVID, each recipient's NOTIFY and ORCPT) and SMTPUTF8 are kept with
//   it: relayed to next hops that offer DSN, honoured here otherwise (notices.ts), and
//   notices go to the envelope sender.

import { parseAddress } from '../../mail/address.ts'
import { headerFields } from '../../mail/headers.ts'
import { newId } from '../../store/ids.ts'
import { ServiceError } from '../errors.ts'
import type { MailAccount } from '../mail-login/login.ts'
import { rateLimitedError } from '../ratelimit/limiter.ts'
import type { OutboundContext } from './context.ts'
import { enqueue } from './enqueue.ts'
import { peekCapacity } from './limits.ts'
import { senderMailbox } from './send.ts'

export interface SubmitInput {
  account: MailAccount
  mailFrom: string
  recipients: readonly { address: string; notify: string[] | null; orcpt: string | null }[]
  /** The MAIL parameters kept for delivery and notices (RFC 3461 4.3, 4.4; RFC 6531). */
  ret?: 'FULL' | 'HDRS' | null
  envid?: string | null
  smtputf8?: boolean
  /** MAIL FROM carried REQUIRETLS (RFC 8689): the message keeps it to every next hop. */
  requireTls?: boolean
  raw: Buffer
  ip: string
}

/** True when the address sends as this mailbox (the mailbox itself or an alias delivering to it). */
export async function mayUseSender(
  ctx: Pick<OutboundContext, 'store'>,
  account: MailAccount,
  address: string,
): Promise<boolean> {
  if (!address) return false
  let canonical: string
  try {
    canonical = parseAddress(address).canonical
  } catch {
    return false
  }
  if (canonical === account.address) return true
  return (await senderMailbox(ctx, canonical)) === account.mailbox_id
}

/** The single address of a From field's text (`Name <a@b>` or `a@b`), or null. */
function fromAddress(field: string): string | null {
  const value = field.slice(field.indexOf(':') + 1).replace(/\r?\n[ \t]/g, ' ')
  const angle = /<([^<>\s]+@[^<>\s]+)>/.exec(value)
  if (angle) return angle[1] as string
  const bare = /([^\s<>",;:]+@[^\s<>",;:]+)/.exec(value)
  return bare ? (bare[1] as string) : null
}

export async function submitMessage(ctx: OutboundContext, input: SubmitInput): Promise<{ id: string }> {
  const { account } = input
  const fields = headerFields(input.raw)
  const froms = fields.filter((f) => f.name === 'from')
  if (froms.length !== 1)
    throw new ServiceError('invalid', 'FROM_MISSING', 'The message needs exactly one From header field.')
  const from = fromAddress((froms[0] as { text: string }).text)
  if (!from || !(await mayUseSender(ctx, account, from)))
    throw new ServiceError(
      'forbidden',
      'SENDER_NOT_ALLOWED',
      `This mailbox may not send as ${from ?? 'that From address'}: use the mailbox address or one of its aliases.`,
    )
  const fromDomain = (from.split('@').pop() as string).toLowerCase()
  const domain = await ctx.store.db
    .selectFrom('domains')
    .select(['id', 'name', 'status', 'active'])
    .where('org_id', '=', account.org_id)
    .where('name', '=', fromDomain)
    .executeTakeFirst()
  if (!domain || domain.status !== 'verified' || Number(domain.active) !== 1)
    throw new ServiceError(
      'forbidden',
      'SENDER_DOMAIN_NOT_VERIFIED',
      `${fromDomain} is not a verified domain here.`,
    )

  const d = await ctx.limiter.hit(ctx.rules.send_key, `mailbox:${account.mailbox_id}`, 1)
  if (!d.allowed) throw rateLimitedError(d, 'messages sent')
  const cap = await peekCapacity(ctx, account.org_id, input.recipients.length)
  if (!cap.ok)
    throw new ServiceError(
      'rate_limited',
      'ORG_SEND_CAP',
      `This organisation may send to ${cap.cap} recipients per ${cap.window}; try again later.`,
    )

  // RFC 6409 8.2, 8.3: a submission server may add Message-ID and Date when missing.
  const now = ctx.clock.now()
  const added: string[] = []
  let messageId =
    fields
      .find((f) => f.name === 'message-id')
      ?.text.replace(/^[^:]*:\s*/, '')
      .trim() ?? ''
  if (!messageId) {
    messageId = `<${newId('msg', now).slice(4)}@${domain.name}>`
    added.push(`Message-ID: ${messageId}\r\n`)
  }
  if (!fields.some((f) => f.name === 'date'))
    added.push(`Date: ${new Date(now).toUTCString().replace('GMT', '+0000')}\r\n`)
  const raw = added.length ? Buffer.concat([Buffer.from(added.join(''), 'latin1'), input.raw]) : input.raw
  const subjectField = fields.find((f) => f.name === 'subject')
  const subject = subjectField
    ? subjectField.text
        .replace(/^[^:]*:\s*/, '')
        .replace(/\r?\n[ \t]/g, ' ')
        .trim()
    : ''
  const r = await enqueue(ctx, {
    org_id: account.org_id,
    domain: { id: domain.id, name: domain.name },
    mailbox_id: account.mailbox_id,
    api_key_id: null,
    user_id: null,
    origin: 'submission',
    from_header: from,
    subject: subject.slice(0, 998),
    raw,
    message_id_header: messageId.slice(0, 998),
    recipients: input.recipients.map((x) => ({
      address: x.address,
      type: 'to',
      notify: x.notify,
      orcpt: x.orcpt,
    })),
    tags: {},
    scheduled_at: null,
    headers_json: { to: input.recipients.map((x) => x.address), via: 'smtp-submission' },
    sent_copy_mailbox: account.mailbox_id,
    actor: account.mailbox_id,
    // Notices go to the envelope sender: the mailbox or one of its aliases (checked above).
    dsn: {
      ret: input.ret ?? null,
      envid: input.envid ?? null,
      smtputf8: input.smtputf8 ?? false,
      to: input.mailFrom,
    },
    require_tls: input.requireTls === true,
  })
  ctx.wake?.()
  return { id: r.id }
}
