// CLOSE (RFC 9051 6.4.1): expunges \Deleted messages silently (read-write only) and leaves the
// folder; UNSELECT (RFC 3691) leaves it without expunging.

import { expungeDeleted } from '../../services/mailstore/expunge.ts'
import { type ImapCommand, SELECTED } from '../command.ts'

export const close: ImapCommand = {
  states: SELECTED,
  async run(s, call) {
    call.args.end()
    const sel = s.selected
    if (sel && !sel.readOnly) await expungeDeleted(s.ctx.mail, s.ref, sel.folder.id, null)
    s.setSelected(null)
    return undefined
  },
}

export const unselect: ImapCommand = {
  states: SELECTED,
  async run(s, call) {
    call.args.end()
    s.setSelected(null)
    return undefined
  },
}
