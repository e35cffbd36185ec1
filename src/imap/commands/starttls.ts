// STARTTLS (RFC 9051 6.2.1): the tagged OK, then the TLS handshake; whatever the client sent
// after the command and before the handshake is dropped (command-injection defence), and the
// capabilities are asked for again by the client.

import { type ImapCommand, ImapNo, NOT_AUTHENTICATED } from '../command.ts'

export const starttls: ImapCommand = {
  states: NOT_AUTHENTICATED,
  async run(s, call) {
    call.args.end()
    if (s.isTls) throw new ImapNo('TLS is already active.')
    const opts = s.ctx.tls()
    if (!opts) throw new ImapNo('TLS is not available on this server.')
    s.reply(call.tag, 'OK', 'Begin TLS negotiation now.')
    s.resetInput()
    const up = await s.conn.upgradeToTls(opts, s.ctx.settings.login_timeout_ms)
    s.resetInput()
    if (!up) {
      s.conn.destroy()
      s.logout()
    } else s.log.debug({ tls: up }, 'IMAP STARTTLS done')
    return { answered: true }
  },
}
