// ENABLE (RFC 5161): CONDSTORE and QRESYNC (RFC 7162; QRESYNC implies CONDSTORE) are the
// extensions that need enabling here; other names are ignored, as the RFC says. The answer
// lists what this command newly enabled.

import { AUTHENTICATED, type ImapCommand } from '../command.ts'
import { atom } from '../protocol/values.ts'

export const enable: ImapCommand = {
  states: AUTHENTICATED,
  async run(s, call) {
    const r = call.args
    r.space()
    const asked: string[] = []
    do asked.push(r.atom().toUpperCase())
    while (r.trySpace())
    r.end()
    const enabled: string[] = []
    if (asked.includes('IMAP4REV2') && !s.rev2) {
      s.rev2 = true
      enabled.push('IMAP4rev2')
    }
    if (asked.includes('QRESYNC') && !s.qresync) {
      s.qresync = true
      enabled.push('QRESYNC')
    }
    if ((asked.includes('CONDSTORE') || asked.includes('QRESYNC')) && !s.condstore) {
      s.condstore = true
      if (asked.includes('CONDSTORE')) enabled.unshift('CONDSTORE')
    }
    s.untagged(atom('ENABLED'), ...enabled.map(atom))
    return undefined
  },
}
