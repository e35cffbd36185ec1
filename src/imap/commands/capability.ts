// CAPABILITY (RFC 9051 6.1.1): what this session may use now (it changes after STARTTLS and log-in).

import { ANY, type ImapCommand } from '../command.ts'
import { atom } from '../protocol/values.ts'

export const capability: ImapCommand = {
  states: ANY,
  async run(s, call) {
    call.args.end()
    s.untagged(atom('CAPABILITY'), ...s.capabilities().map(atom))
    return undefined
  },
}
