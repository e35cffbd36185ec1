// LOGOUT (RFC 9051 6.1.3): BYE, the tagged OK, then the connection closes.

import { ANY, type ImapCommand } from '../command.ts'

export const logout: ImapCommand = {
  states: ANY,
  async run(s, call) {
    call.args.end()
    s.status('BYE', 'Logging out.')
    s.reply(call.tag, 'OK', 'LOGOUT completed.')
    s.logout()
    await s.flush()
    s.conn.end()
    return undefined
  },
}
