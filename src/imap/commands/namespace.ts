// NAMESPACE (RFC 2342): one personal namespace, no prefix, "/" as the hierarchy delimiter.

import { AUTHENTICATED, type ImapCommand } from '../command.ts'
import { atom } from '../protocol/values.ts'

export const namespace: ImapCommand = {
  states: AUTHENTICATED,
  async run(s, call) {
    call.args.end()
    s.untagged(atom('NAMESPACE'), [['', '/']], null, null)
    return undefined
  },
}
