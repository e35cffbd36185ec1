// IDLE (RFC 2177): `+ idling`, then untagged updates as the store reports changes (a delivery,
// an API change, another session) until the client sends DONE. The session's inactivity timer
// (imap.idle_timeout_ms, 30 minutes by default) ends an IDLE that is never renewed.

import { AUTHENTICATED, type ImapCommand } from '../command.ts'
import { ImapSyntaxError } from '../protocol/parser.ts'

export const idle: ImapCommand = {
  states: AUTHENTICATED,
  async run(s, call) {
    call.args.end()
    s.continue('idling')
    await s.flush()
    const done = await s.idle()
    if (s.conn.isClosed) return { answered: true }
    if (!done) throw new ImapSyntaxError('Expected DONE to end IDLE.')
    return { text: 'IDLE terminated.' }
  },
}
