// BDAT (RFC 3030 2): a message sent as counted chunks, the last marked LAST. Every chunk is
// read in full whatever the answer, so the session stays in step; a refused chunk fails the
// transaction, and chunks already pipelined behind it are read and refused too (RFC 3030 2,
// "discard additional BDAT chunks") until RSET or a new MAIL.

import type { Command } from '../protocol/commands.ts'
import { MessageReader } from '../protocol/data-reader.ts'
import { messageProblemReply, REPLIES, type Reply } from '../protocol/replies.ts'
import type { StepSession } from '../step-session.ts'
import { deliver } from './data.ts'

export async function bdat(s: StepSession, cmd: Extract<Command, { kind: 'BDAT' }>): Promise<void> {
  const tx = s.tx
  let refusal: Reply | null = null
  if (!tx) refusal = s.info.helo ? REPLIES.needMail : REPLIES.needHelo
  else if (tx.failed) refusal = REPLIES.bdatFailed
  else if (tx.to.length === 0) refusal = REPLIES.noValidRecipients
  if (tx && !refusal && !tx.chunks) tx.chunks = new MessageReader('bdat', s.limits, s.large?.spool ?? null)
  const reader = refusal ? null : tx!.chunks
  s.conn.startDataClock()
  const end = await s.conn.readChunk(cmd.size, reader)
  s.conn.stopDataClock()
  if (end !== 'done') return s.interrupted(end)
  if (refusal) {
    if (refusal === REPLIES.needMail || refusal === REPLIES.needHelo) return s.refuse(refusal)
    if (tx) tx.failed = true
    return s.reply(refusal)
  }
  const problem = reader!.problem
  if (problem) {
    tx!.failed = true
    s.log.info({ problem, size: reader!.size }, 'message refused')
    return s.reply(messageProblemReply(problem, s.limits))
  }
  if (!cmd.last) return s.reply(REPLIES.chunkOk(cmd.size))
  await deliver(s, reader!)
}
