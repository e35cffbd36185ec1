// NOOP and CHECK (RFC 9051 6.1.2; CHECK is RFC 3501 6.4.1): nothing to do but report what
// changed in the selected folder (the session syncs after every NOOP and CHECK).

import { ANY, AUTHENTICATED, type ImapCommand } from '../command.ts'

export const noop: ImapCommand = {
  states: ANY,
  async run(_s, call) {
    call.args.end()
    return undefined
  },
}

export const check: ImapCommand = {
  states: AUTHENTICATED.filter((st) => st === 'selected'),
  async run(_s, call) {
    call.args.end()
    return undefined
  },
}
