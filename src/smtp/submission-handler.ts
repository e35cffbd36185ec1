// Submission's policy (RFC 6409; ports 587 with STARTTLS and 465 with implicit TLS): the
// SmtpHandler the SMTP server calls in submission mode. AUTH is required before MAIL, offered
// only over TLS or to trusted client addresses (auth.plaintext_allowed_from), and checked by
// the same mail-client log-in as IMAP (shared lock-out counters). The envelope sender must be
// the mailbox or one of its aliases; the message goes to the outbound queue through
// services/outbound/submit.ts (which also checks the From header and files the Sent copy).
// Invariants: nothing is relayed without a log-in; a 250 means queued durably.

import type { Logger } from '../log/logger.ts'
import { ServiceError } from '../services/errors.ts'
import { loginMailbox, type MailAccount, type MailLoginContext } from '../services/mail-login/login.ts'
import type { OutboundContext } from '../services/outbound/context.ts'
import { mayUseSender, submitMessage } from '../services/outbound/submit.ts'
import type { SessionInfo, SmtpHandler, SmtpReply } from './handler.ts'

export interface SubmissionDeps {
  outbound: OutboundContext
  login: MailLoginContext
  plaintextAllowed: (ip: string) => boolean
  log: Logger
  sleep: (ms: number) => Promise<void>
  /** Most recipients of one message. */
  maxRecipients: number
}

const REQUIRED: SmtpReply = { code: 530, enhanced: '5.7.0', message: 'Authentication required' }

export function createSubmissionHandler(deps: SubmissionDeps): SmtpHandler {
  /** The logged-in account of each session (by session id), while it lasts. */
  const accounts = new Map<string, MailAccount>()
  const account = (s: SessionInfo) => (s.auth ? accounts.get(s.id) : undefined)
  return {
    auth: {
      offered: (s) => s.tls !== null || deps.plaintextAllowed(s.remoteAddress),
      async login(s, name, secret) {
        const r = await loginMailbox(
          deps.login,
          { name, secret, ip: s.remoteAddress, via: 'smtp' },
          deps.sleep,
        )
        if (r.ok) {
          accounts.set(s.id, r.account)
          deps.log.info({ mailbox: r.account.mailbox_id }, 'SMTP submission log-in')
          return { ok: true, identity: r.account.address }
        }
        deps.log.info({ failure: r.failure }, 'SMTP submission log-in failed')
        if (r.failure === 'LOCKED')
          return { ok: false, reply: { code: 454, enhanced: '4.7.0', message: r.message } }
        if (r.failure === 'PASSWORD_CHANGE_REQUIRED')
          return {
            ok: false,
            reply: {
              code: 535,
              enhanced: '5.7.8',
              message:
                'This mailbox must change its password before mail clients may log in; set a new one in the web app',
            },
          }
        return {
          ok: false,
          reply: { code: 535, enhanced: '5.7.8', message: 'Authentication credentials invalid' },
        }
      },
    },
    onClose(s) {
      accounts.delete(s.id)
    },
    async onConnect() {
      return null
    },
    async onMailFrom(s, from) {
      const a = account(s)
      if (!a) return REQUIRED
      if (!(await mayUseSender(deps.outbound, a, from.address)))
        return { code: 553, enhanced: '5.7.1', message: `Sender address not owned by ${a.address}` }
      return null
    },
    async onRcptTo(s, _from, _to, accepted) {
      if (!account(s)) return REQUIRED
      if (accepted.length >= deps.maxRecipients)
        return { code: 452, enhanced: '4.5.3', message: 'Too many recipients' }
      return null
    },
    async onMessage(s, envelope, message) {
      const a = account(s)
      if (!a) return REQUIRED
      try {
        const r = await submitMessage(deps.outbound, {
          account: a,
          mailFrom: envelope.from.address,
          recipients: envelope.to.map((t) => ({ address: t.address, notify: t.notify, orcpt: t.orcpt })),
          ret: envelope.from.ret,
          envid: envelope.from.envid,
          smtputf8: envelope.from.smtputf8,
          requireTls: envelope.from.requireTls,
          raw: message,
          ip: s.remoteAddress,
        })
        return { code: 250, enhanced: '2.0.0', message: `Queued as ${r.id}` }
      } catch (err) {
        if (err instanceof ServiceError) {
          if (err.kind === 'forbidden') return { code: 553, enhanced: '5.7.1', message: err.message }
          if (err.kind === 'invalid') return { code: 554, enhanced: '5.6.0', message: err.message }
          if (err.kind === 'rate_limited') return { code: 451, enhanced: '4.7.1', message: err.message }
        }
        throw err
      }
    },
  }
}
