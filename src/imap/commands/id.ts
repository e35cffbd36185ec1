// ID (RFC 2971): logs what the client says it is (bounded), answers with our name.

import { ANY, type ImapCommand } from '../command.ts'
import { ImapSyntaxError } from '../protocol/parser.ts'
import { atom } from '../protocol/values.ts'

export const id: ImapCommand = {
  states: ANY,
  async run(s, call) {
    const r = call.args
    r.space()
    const client: Record<string, string | null> = {}
    if (r.tryByte(0x28)) {
      let n = 0
      while (!r.tryByte(0x29)) {
        if (n > 0) r.space()
        const key = r.string()
        r.space()
        const value = r.nstring()
        if (++n > 30) throw new ImapSyntaxError('Too many ID fields.')
        client[key.slice(0, 30)] = value === null ? null : value.slice(0, 1024)
      }
    } else if (r.keyword() !== 'NIL') throw new ImapSyntaxError('Expected a list or NIL.')
    r.end()
    if (n(client)) s.log.debug({ client }, 'IMAP client ID')
    s.untagged(atom('ID'), ['name', 'Postern', 'vendor', 'Postern'])
    return undefined
  },
}

const n = (o: object) => Object.keys(o).length > 0
