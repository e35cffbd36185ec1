// STARTTLS (RFC 3207): 220, then the TLS handshake over the same socket. Afterwards the session
// starts over (RFC 3207 4.2: the client must EHLO again), and anything the client pipelined
// after STARTTLS was discarded by the connection (CVE-2011-0411).

import { REPLIES } from '../protocol/replies.ts'
import type { StepSession } from '../step-session.ts'

export async function starttls(s: StepSession): Promise<void> {
  if (s.info.tls) return s.refuse(REPLIES.tlsActive)
  const options = s.tlsAvailable()
  if (!options) return s.refuse(REPLIES.tlsUnavailable)
  if (s.tx) return s.refuse(REPLIES.transactionOpen)
  s.reply(REPLIES.tlsReady)
  const tls = await s.conn.upgradeToTls(options)
  if (!tls) {
    s.ended = true
    return
  }
  s.forgetAll()
  s.info.tls = tls
  s.log.debug(tls, 'TLS started')
}
