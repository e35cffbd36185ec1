// ENABLE (RFC 5161): none of the extensions that need enabling (CONDSTORE, QRESYNC,
// UTF8=ACCEPT) is offered yet, so the answer lists none; unknown names are ignored, as the RFC says.

import { AUTHENTICATED, type ImapCommand } from '../command.ts'
import { atom } from '../protocol/values.ts'

export const enable: ImapCommand = {
  states: AUTHENTICATED,
  async run(s, call) {
    const r = call.args
    r.space()
    do r.atom()
    while (r.trySpace())
    r.end()
    s.untagged(atom('ENABLED'))
    return undefined
  },
}
