// STATUS (RFC 9051 6.3.11): counts of a folder that need not be selected. The selected folder
// may be asked too (RFC 9051 says clients should not; it works).

import { folderByName } from '../../services/mailstore/folder-view.ts'
import { folderStatus } from '../../services/mailstore/status.ts'
import { AUTHENTICATED, type ImapCommand, ImapNo } from '../command.ts'
import { quoteMailbox } from '../protocol/encoder.ts'
import { ImapSyntaxError } from '../protocol/parser.ts'
import { atom, type ImapValue } from '../protocol/values.ts'

const ITEMS = [
  'MESSAGES',
  'RECENT',
  'UIDNEXT',
  'UIDVALIDITY',
  'UNSEEN',
  'DELETED',
  'SIZE',
  'HIGHESTMODSEQ',
] as const

export const status: ImapCommand = {
  states: AUTHENTICATED,
  async run(s, call) {
    const r = call.args
    r.space()
    const name = r.mailbox(s.rev2)
    r.space()
    r.openList()
    const items: string[] = []
    do {
      const item = r.keyword()
      if (!(ITEMS as readonly string[]).includes(item) || (s.rev2 && item === 'RECENT'))
        throw new ImapSyntaxError(`Unknown STATUS item ${item}.`)
      items.push(item)
    } while (r.trySpace())
    r.closeList()
    r.end()
    const db = s.ctx.mail.store.db
    const f = await folderByName(db, s.ref, name)
    if (!f) throw new ImapNo(`No folder named ${name}.`, 'NONEXISTENT')
    const st = await folderStatus(db, s.ref, f)
    const values: Record<string, number> = {
      MESSAGES: st.messages,
      RECENT: st.recent,
      UIDNEXT: st.uidnext,
      UIDVALIDITY: st.uidvalidity,
      UNSEEN: st.unseen,
      DELETED: st.deleted,
      SIZE: st.size,
      HIGHESTMODSEQ: st.highestmodseq,
    }
    if (items.includes('HIGHESTMODSEQ')) s.condstore = true
    const out: ImapValue[] = []
    for (const i of items) out.push(atom(i), values[i] as number)
    s.untagged(atom('STATUS'), quoteMailbox(f.name, s.rev2), out)
    return undefined
  },
}
