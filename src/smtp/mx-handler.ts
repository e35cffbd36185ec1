// The MX's policy: the SmtpHandler the SMTP server calls in MX mode, implemented with the
// delivery service. It owns the mapping from delivery reasons to SMTP replies (RFC 5321
// codes with RFC 3463 enhanced codes), and never relays: a recipient must be hosted here
// (an alias that forwards, an SRS address of mail we forwarded, or a domain we are the backup
// MX of are hosted here too; the delivery service decides what each one means).

import type { Logger } from '../log/logger.ts'
import {
  checkRecipient,
  type DeliveryContext,
  deliverInbound,
  type LocalTarget,
  type RecipientCheck,
  type RefusalReason,
} from '../services/delivery/inbound.ts'
import type { OutboundContext } from '../services/outbound/context.ts'
import { checkReturnPath, handleReport, type ReturnPathTarget } from '../services/outbound/feedback.ts'
import type { ForwardTarget, RelayTarget } from '../services/outbound/forward.ts'
import type { MailFrom, RcptTo, SessionInfo, SmtpHandler, SmtpReply } from './handler.ts'

const RCPT_REPLIES: Record<RefusalReason, (detail: string) => SmtpReply> = {
  invalid: () => ({ code: 501, enhanced: '5.1.3', message: 'Bad recipient address syntax' }),
  not_hosted: () => ({
    code: 550,
    enhanced: '5.7.1',
    message: 'Relaying denied: that domain is not hosted here',
  }),
  unknown_recipient: () => ({ code: 550, enhanced: '5.1.1', message: 'No such user here' }),
  mailbox_disabled: () => ({
    code: 550,
    enhanced: '5.2.1',
    message: 'Mailbox disabled, not accepting messages',
  }),
  quota_full: () => ({ code: 452, enhanced: '4.2.2', message: 'Mailbox full, try again later' }),
  tls_required: () => ({ code: 530, enhanced: '5.7.0', message: 'Must issue a STARTTLS command first' }),
  external_target: () => ({
    code: 451,
    enhanced: '4.3.0',
    message: 'This address forwards outside this server, which is not available yet; try again later',
  }),
  forward_limit: () => ({
    code: 451,
    enhanced: '4.7.1',
    message: 'This address has forwarded as much mail as it may for now; try again later',
  }),
  forward_suppressed: () => ({
    code: 550,
    enhanced: '5.1.1',
    message: 'This address forwards to a mailbox that does not accept mail',
  }),
}

type Accepted = Omit<Extract<RecipientCheck, { ok: true }>, 'ok'>

/** What the MX needs to take reports (bounces, complaints) at the return paths of sent mail. */
export type FeedbackContext = Pick<
  OutboundContext,
  'store' | 'clock' | 'bus' | 'committer' | 'log' | 'returnPathKey'
>

export function createMxHandler(ctx: DeliveryContext, log: Logger, feedback?: FeedbackContext): SmtpHandler {
  // Return paths accepted at RCPT in the current transaction of each session.
  const reports = new Map<string, ReturnPathTarget[]>()
  // Recipients accepted at RCPT, with the mailboxes they reach, until the message arrives.
  // Sessions that end without DATA leave entries behind; they are swept once the map grows.
  const targets = new Map<string, { at: number; rcpts: Map<string, Accepted> }>()
  const forSession = (s: SessionInfo) => {
    let m = targets.get(s.id)
    if (!m) {
      if (targets.size > 10_000) {
        const cutoff = Date.now() - 3_600_000
        for (const [id, v] of targets) if (v.at < cutoff) targets.delete(id)
      }
      m = { at: Date.now(), rcpts: new Map() }
      targets.set(s.id, m)
    }
    return m.rcpts
  }
  return {
    async onConnect() {
      return null
    },
    async onMailFrom(s) {
      targets.delete(s.id) // a new transaction
      reports.delete(s.id)
      return null
    },
    async onRcptTo(s, from: MailFrom, to: RcptTo) {
      if (feedback) {
        const rp = await checkReturnPath(feedback, to.address)
        if (rp === false) {
          log.info({ cid: s.id, rcpt: to.address }, 'return path refused: bad signature or unknown message')
          return { code: 550, enhanced: '5.1.1', message: 'No such return path here' }
        }
        if (rp) {
          const list = reports.get(s.id) ?? []
          list.push(rp)
          reports.set(s.id, list)
          return null
        }
      }
      const srs = ctx.forwarding ? await ctx.forwarding.reverseSrs(to.address) : null
      if (srs === 'invalid')
        return { code: 550, enhanced: '5.1.1', message: 'Invalid or expired SRS address' }
      if (srs) {
        forSession(s).set(to.address.toLowerCase(), { targets: [], forwards: [srs], relays: [] })
        return null
      }
      const r = await checkRecipient(ctx, to.address, { tls: s.tls !== null }, from.size)
      if (!r.ok) {
        log.info({ cid: s.id, rcpt: to.address, reason: r.reason }, 'recipient refused')
        return RCPT_REPLIES[r.reason](r.detail)
      }
      forSession(s).set(to.address.toLowerCase(), {
        targets: r.targets,
        forwards: r.forwards,
        relays: r.relays,
      })
      return null
    },
    async onMessage(s, envelope, message) {
      const accepted = forSession(s)
      targets.delete(s.id)
      const rps = reports.get(s.id) ?? []
      reports.delete(s.id)
      if (rps.length && feedback) {
        try {
          const r = await handleReport(feedback, rps, message)
          log.info({ cid: s.id, kind: r.kind, matched: r.matched }, 'report at a return path')
        } catch (err) {
          log.error({ err, cid: s.id }, 'report handling failed')
          return {
            code: 451,
            enhanced: '4.3.0',
            message: 'Temporary failure handling the report; try again later',
          }
        }
        // Only return paths in this transaction: nothing else to store.
        if (envelope.to.every((t) => !accepted.has(t.address.toLowerCase())))
          return { code: 250, enhanced: '2.0.0', message: 'Ok: report received' }
      }
      const all: LocalTarget[] = []
      const forwards = new Map<string, ForwardTarget>()
      const relays: RelayTarget[] = []
      for (const rcpt of envelope.to) {
        const a = accepted.get(rcpt.address.toLowerCase())
        if (!a) continue
        for (const t of a.targets) if (!all.some((x) => x.mailbox_id === t.mailbox_id)) all.push(t)
        // One forward per alias (or SRS address), however many recipients reached it.
        for (const f of a.forwards) {
          const seen = forwards.get(f.via)
          if (seen) for (const t of f.to) if (!seen.to.includes(t)) seen.to.push(t)
          if (!seen) forwards.set(f.via, { ...f, to: [...f.to] })
        }
        for (const r of a.relays)
          if (!relays.some((x) => x.address === r.address))
            relays.push({ ...r, notify: rcpt.notify, orcpt: rcpt.orcpt })
      }
      try {
        const r = await deliverInbound(ctx, {
          raw: message,
          mailFrom: envelope.from.address,
          dsn: { ret: envelope.from.ret, envid: envelope.from.envid },
          requireTls: envelope.from.requireTls,
          recipients: envelope.to.map((t) => ({ address: t.address, notify: t.notify, orcpt: t.orcpt })),
          targets: all,
          forwards: [...forwards.values()],
          relays,
          session: { id: s.id, ip: s.remoteAddress, helo: s.helo, tls: s.tls },
        })
        if (r.ok) {
          log.info(
            {
              cid: s.id,
              queue_id: r.queue_id,
              size: message.length,
              mailboxes: r.stored.length,
              queued: r.queued,
            },
            'message stored',
          )
          return { code: 250, enhanced: '2.0.0', message: `Ok: queued as ${r.queue_id}` }
        }
        log.info({ cid: s.id, reason: r.reason }, 'message refused')
        if (r.reason === 'loop')
          return {
            code: 554,
            enhanced: '5.4.6',
            message: 'Routing loop detected: too many Received header fields',
          }
        if (r.reason === 'forward_loop')
          return { code: 554, enhanced: '5.4.6', message: `Routing loop detected: ${r.detail}` }
        if (r.reason === 'forward_limit')
          return {
            code: 451,
            enhanced: '4.7.1',
            message:
              'An address of this message has forwarded as much mail as it may for now; try again later',
          }
        if (r.reason === 'not_forwarded')
          return {
            code: 550,
            enhanced: '5.7.1',
            message: 'Message not forwarded: it fails DMARC and the sender domain asks for quarantine',
          }
        return {
          code: 550,
          enhanced: '5.7.1',
          message: 'Message rejected: it fails DMARC and the sender domain asks to reject it',
        }
      } catch (err) {
        log.error({ err, cid: s.id }, 'delivery failed')
        return {
          code: 451,
          enhanced: '4.3.0',
          message: 'Temporary failure storing the message; try again later',
        }
      }
    },
  }
}
