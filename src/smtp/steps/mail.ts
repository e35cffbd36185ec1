// MAIL FROM (RFC 5321 4.1.1.2): starts a transaction when the handler accepts the sender.
// Checked here before the handler is asked: order (HELO first, no nested MAIL), the
// per-connection transaction limit, the declared SIZE (RFC 1870 6: 552 5.3.4), and REQUIRETLS
// only in a TLS session (RFC 8689 2: 530 5.7.10; EHLO lists it only then).

import type { Command } from '../protocol/commands.ts'
import { REPLIES } from '../protocol/replies.ts'
import type { StepSession } from '../step-session.ts'

export async function mail(s: StepSession, cmd: Extract<Command, { kind: 'MAIL' }>): Promise<void> {
  if (!s.info.helo) return s.refuse(REPLIES.needHelo) // RFC 5321 4.1.4
  if (s.tx && !s.tx.failed) return s.refuse(REPLIES.nestedMail)
  if (s.transactions >= s.settings.max_transactions) {
    s.log.info({ transactions: s.transactions }, 'too many transactions, closing')
    return s.end(REPLIES.tooManyTransactions(s.hostname))
  }
  const { from } = cmd
  if (from.requireTls && !s.info.tls) return s.reply(REPLIES.requireTlsNeedsTls)
  if (from.size !== null && from.size > s.settings.max_message_bytes) {
    return s.reply(REPLIES.sizeTooBig(s.settings.max_message_bytes))
  }
  s.tx = null
  const answer = await s.ask('onMailFrom', () => s.handler.onMailFrom(s.snapshot(), from))
  const reply = s.answer(answer, REPLIES.senderOk)
  if (reply.code < 400) {
    s.tx = { from, to: [], chunks: null, failed: false }
    s.transactions++
  }
  s.reply(reply)
}
