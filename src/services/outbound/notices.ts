// Mailing the delivery status notifications (RFC 3464) owed to mail clients' senders. The
// worker (and feedback.ts, for reports from next hops) only marks a recipient's owed notice
// (`dsn_pending`) in the transaction that records its outcome; this turns the marks of each
// message into one notice and queues it like any mail, from the null reverse path to the
// message's `dsn_to`. dsn-policy.ts decides what is owed; mail/dsn.ts writes the notice.
// Invariants:
// - A mark is cleared in the transaction that queues its notice, and only if it is still the
//   mark that was read: a notice is queued once even when two processes sweep at once, and a
//   crash between outcome and notice loses neither (the next sweep finds the mark).
// - A notice never asks for, and never causes, another notice: it has no dsn_to, its
//   recipients no NOTIFY, and its envelope sender is <> (RFC 3461 6.2, RFC 5321 4.5.5).
// - Marks of a message that cannot be read back (its blob gone) are dropped with an error
//   logged, never retried forever.

import { composeNotice, type NoticeAction, type NoticeRecipient } from '../../mail/dsn.ts'
import { newId } from '../../store/ids.ts'
import type { OutboundMessage, OutboundRecipient } from '../../store/schema.ts'
import type { Tx } from '../messages/context.ts'
import type { OutboundContext } from './context.ts'
import { returnsFull } from './dsn-policy.ts'
import { enqueue } from './enqueue.ts'
import { systemSigningDomain } from './system-mail.ts'

const ACTIONS: readonly NoticeAction[] = ['failed', 'delayed', 'delivered', 'relayed']
const isAction = (s: string | null): s is NoticeAction => ACTIONS.includes(s as NoticeAction)

/** Another sweep queued this notice first (its marks are gone): roll back ours. */
class NoticeTaken extends Error {}

/** The RFC 3463 status a recipient's notice reports. */
function noticeStatus(action: NoticeAction, r: OutboundRecipient): string {
  const e = r.last_enhanced_code
  if (action === 'failed') {
    if (e?.startsWith('5.')) return e
    return e?.startsWith('4.') ? '5.4.7' : '5.0.0' // given up on a temporary failure: delivery time expired
  }
  if (action === 'delayed') return e?.startsWith('4.') ? e : '4.0.0'
  return e?.startsWith('2.') ? e : '2.0.0'
}

function noticeRecipient(
  m: OutboundMessage,
  r: OutboundRecipient,
  action: NoticeAction,
  lifetimeMs: number,
): NoticeRecipient {
  const remote = r.remote_mta && r.remote_mta !== 'local' ? r.remote_mta : null
  // A next hop's own report already carries its reply code (feedback.ts keeps its Diagnostic-Code).
  const reply =
    r.last_code !== null && !/^\d{3}[ -]/.test(r.last_response ?? '')
      ? `${r.last_code} ${r.last_enhanced_code ? `${r.last_enhanced_code} ` : ''}${r.last_response ?? ''}`.trim()
      : (r.last_response ?? null)
  return {
    address: r.address,
    orcpt: r.dsn_orcpt,
    action,
    status: noticeStatus(action, r),
    diagnostic: reply,
    remoteMta: remote,
    lastAttemptAt: Number(r.attempts) > 0 ? Number(r.updated_at) : null,
    willRetryUntil:
      action === 'delayed'
        ? Number(m.expires_at ?? Number(m.scheduled_at ?? m.created_at) + lifetimeMs)
        : null,
  }
}

/**
 * Queues the owed notices: of one message (right after its attempt) or of any (the periodic
 * sweep). Resolves with the number of notices queued.
 */
export async function sendNotices(
  ctx: OutboundContext,
  o: { outboundId?: string; limit?: number } = {},
): Promise<number> {
  let q = ctx.store.db
    .selectFrom('outbound_recipients')
    .selectAll()
    .where('dsn_pending', 'is not', null)
    .orderBy('updated_at')
    .limit(o.limit ?? 200)
  if (o.outboundId) q = q.where('outbound_id', '=', o.outboundId)
  const marked = await q.execute()
  if (marked.length === 0) return 0
  const byMessage = new Map<string, OutboundRecipient[]>()
  for (const r of marked) byMessage.set(r.outbound_id, [...(byMessage.get(r.outbound_id) ?? []), r])
  let queued = 0
  for (const [outboundId, rows] of byMessage) {
    try {
      if (await noticeFor(ctx, outboundId, rows)) queued++
    } catch (err) {
      if (err instanceof NoticeTaken) continue
      ctx.log.error({ err, email_id: outboundId }, 'could not queue a delivery status notification')
    }
  }
  if (queued) ctx.wake?.()
  return queued
}

async function clearMarks(tx: Tx, rows: readonly OutboundRecipient[]): Promise<number> {
  let n = 0
  for (const r of rows) {
    const u = await tx
      .updateTable('outbound_recipients')
      .set({ dsn_pending: null })
      .where('id', '=', r.id)
      .where('org_id', '=', r.org_id)
      .where('dsn_pending', '=', r.dsn_pending)
      .executeTakeFirst()
    n += Number(u.numUpdatedRows)
  }
  return n
}

async function noticeFor(
  ctx: OutboundContext,
  outboundId: string,
  rows: OutboundRecipient[],
): Promise<boolean> {
  const orgId = (rows[0] as OutboundRecipient).org_id
  const m = await ctx.store.db
    .selectFrom('outbound_messages')
    .selectAll()
    .where('id', '=', outboundId)
    .where('org_id', '=', orgId)
    .executeTakeFirst()
  const drop = async (why: string) => {
    ctx.log.error({ email_id: outboundId }, `delivery status notification dropped: ${why}`)
    await ctx.committer.run((tx) => clearMarks(tx, rows))
    return false
  }
  if (!m || !m.dsn_to) return drop('the message has no notice address')
  let original: Buffer
  try {
    original = await ctx.blobs.get(m.org_id, m.blob_sha256 as string)
  } catch (err) {
    return drop(`the message cannot be read (${(err as Error).message})`)
  }
  const recipients = rows.flatMap((r) =>
    isAction(r.dsn_pending) ? [noticeRecipient(m, r, r.dsn_pending, ctx.settings.lifetimeMs)] : [],
  )
  if (recipients.length === 0) return drop('unknown notice kind')
  const now = ctx.clock.now()
  const sender = await systemSigningDomain(ctx)
  const fromDomain = ctx.settings.systemFrom.split('@')[1] as string
  const messageId = `<${newId('msg', now).slice(4)}@${fromDomain}>`
  // RFC 8689 5: a notice about a REQUIRETLS message returns the header only (as RET=HDRS) and
  // asks for REQUIRETLS itself (tls-policy.ts does not discard it when a next hop lacks it).
  const requireTls = Number(m.require_tls) === 1
  const full = recipients.some((r) =>
    returnsFull(r.action, requireTls ? 'HDRS' : m.dsn_ret, original.length, ctx.settings.dsnReturnMaxBytes),
  )
  const raw = composeNotice({
    reportingMta: ctx.settings.hostname,
    from: `Mail Delivery System <${ctx.settings.systemFrom}>`,
    to: m.dsn_to,
    messageId,
    date: now,
    envid: m.dsn_envid,
    arrivalDate: Number(m.created_at),
    recipients,
    original,
    returnFull: full,
    global: Number(m.smtputf8) === 1,
  })
  const subject = /^Subject: (.*)$/m.exec(raw.subarray(0, 2000).toString('latin1'))?.[1] ?? 'Delivery report'
  await enqueue(ctx, {
    org_id: m.org_id,
    domain: sender,
    mailbox_id: null,
    api_key_id: null,
    user_id: null,
    origin: 'system',
    from_header: `Mail Delivery System <${ctx.settings.systemFrom}>`,
    subject,
    raw,
    message_id_header: messageId,
    recipients: [{ address: m.dsn_to, type: 'to' }],
    tags: { kind: 'dsn', email_id: m.id },
    scheduled_at: null,
    headers_json: { to: [m.dsn_to], cc: [], bcc: [], reply_to: [] },
    sent_copy_mailbox: null,
    mail_from: '',
    actor: 'system',
    ignoreSuppressions: true,
    require_tls: requireTls,
    alsoInTransaction: async (tx) => {
      if ((await clearMarks(tx, rows)) !== rows.length) throw new NoticeTaken()
    },
  })
  ctx.log.info(
    { email_id: m.id, actions: recipients.map((r) => r.action) },
    'delivery status notification queued',
  )
  return true
}
