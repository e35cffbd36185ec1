// EHLO and HELO (RFC 5321 4.1.1.1): names the client, resets any transaction (4.1.4) and, for
// EHLO, lists the extensions. The argument is kept for the handler and Received fields; it is
// not checked against DNS here (that is policy, for the handler).

import type { Command } from '../protocol/commands.ts'
import { REPLIES } from '../protocol/replies.ts'
import type { StepSession } from '../step-session.ts'

export function ehlo(s: StepSession, cmd: Extract<Command, { kind: 'EHLO' | 'HELO' }>): void {
  s.tx = null // RFC 5321 4.1.4: EHLO in a transaction is an implicit RSET
  s.info.helo = cmd.domain
  s.info.esmtp = cmd.kind === 'EHLO'
  if (cmd.kind === 'HELO') s.reply(REPLIES.helo(s.hostname))
  else s.reply(REPLIES.ehlo(s.hostname, s.extensions())) // RFC 5321 4.1.1.1; AUTH in submission mode only
}
