// DATA (RFC 5321 4.1.1.4): 354, then the message text up to CRLF.CRLF, then the handler's
// answer. Also deliver(), the end of every transaction, shared with BDAT LAST.
// Invariants:
// - The text is always read to its end, even when it is refused (too big, bare LF/CR, header or
//   line too long), so the next command is read from the right place.
// - After the text, the transaction is over whatever the answer (RFC 5321 4.1.1.4).

import { MessageReader } from '../protocol/data-reader.ts'
import { messageProblemReply, REPLIES, type Reply } from '../protocol/replies.ts'
import type { StepSession, Transaction } from '../step-session.ts'

export async function data(s: StepSession): Promise<void> {
  const tx = s.tx
  if (!tx || tx.failed) return s.refuse(s.info.helo ? REPLIES.needMail : REPLIES.needHelo)
  if (tx.chunks) return s.refuse(REPLIES.dataAfterBdat) // RFC 3030 3
  if (tx.to.length === 0) return s.reply(REPLIES.noValidRecipients) // RFC 5321 3.3, RFC 2920 3.1
  s.reply(REPLIES.startData)
  const reader = new MessageReader('data', s.limits, s.large?.spool ?? null)
  s.conn.startDataClock()
  const end = await s.conn.readText(reader)
  s.conn.stopDataClock()
  if (end !== 'done') {
    await reader.abandon()
    return s.interrupted(end)
  }
  await deliver(s, reader)
}

/** Hands the finished message to the handler and answers with its reply; ends the transaction. */
export async function deliver(s: StepSession, reader: MessageReader): Promise<void> {
  const tx = s.tx!
  tx.chunks = null // the reader is this step's now: ending the transaction must not drop it
  s.tx = null
  const large = reader.spooled ? s.large : null
  // A spooled message waits for a delivery turn on disk; it is read back only in its turn.
  const answer = large
    ? await large.inTurn(() => finishAndAsk(s, tx, reader))
    : await finishAndAsk(s, tx, reader)
  s.reply(answer)
}

async function finishAndAsk(s: StepSession, tx: Transaction, reader: MessageReader): Promise<Reply> {
  let done: Awaited<ReturnType<MessageReader['complete']>>
  try {
    done = await reader.complete()
  } catch (err) {
    s.log.error({ err }, 'reading the spooled message failed')
    return REPLIES.localError
  }
  if (done.problem) {
    s.log.info({ problem: done.problem, size: reader.size }, 'message refused')
    return messageProblemReply(done.problem, s.limits)
  }
  const message = done.message
  const envelope = { from: tx.from, to: tx.to }
  const answer = await s.ask('onMessage', () => s.handler.onMessage(s.snapshot(), envelope, message))
  return s.answer(answer ?? undefined, REPLIES.localError)
}
