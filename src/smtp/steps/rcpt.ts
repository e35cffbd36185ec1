// RCPT TO (RFC 5321 4.1.1.3): adds a recipient when the handler accepts it. Checked here: a
// transaction is open and has not started BDAT, and the recipient limit (452 4.5.3, RFC 5321
// 4.5.3.1.10). Handler refusals with 5xx count toward max_unknown_recipients, which ends the
// session (against address harvesting).

import type { Command } from '../protocol/commands.ts'
import { REPLIES } from '../protocol/replies.ts'
import type { StepSession } from '../step-session.ts'

export async function rcpt(s: StepSession, cmd: Extract<Command, { kind: 'RCPT' }>): Promise<void> {
  const tx = s.tx
  if (!tx || tx.failed) return s.refuse(s.info.helo ? REPLIES.needMail : REPLIES.needHelo)
  if (tx.chunks) return s.refuse(REPLIES.rcptAfterBdat)
  if (tx.to.length >= s.settings.max_recipients) return s.reply(REPLIES.tooManyRecipients)
  // RFC 5321 4.5.1: <Postmaster> without a domain is the postmaster of this host.
  const to = cmd.to.address === 'postmaster' ? { ...cmd.to, address: `postmaster@${s.hostname}` } : cmd.to
  const answer = await s.ask('onRcptTo', () => s.handler.onRcptTo(s.snapshot(), tx.from, to, [...tx.to]))
  const reply = s.answer(answer, REPLIES.recipientOk)
  if (reply.code < 400) tx.to.push(to)
  s.reply(reply)
  if (reply.code >= 500 && ++s.unknownRecipients >= s.settings.max_unknown_recipients) {
    s.log.info({ refused: s.unknownRecipients }, 'too many unknown recipients, closing')
    s.end(REPLIES.tooManyUnknownRecipients(s.hostname))
  }
}
