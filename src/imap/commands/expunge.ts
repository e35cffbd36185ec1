// EXPUNGE (RFC 9051 6.4.3) and UID EXPUNGE (RFC 4315 2.1): removes \Deleted messages (only
// those of the UID set for UID EXPUNGE) and reports each as EXPUNGE, highest first, so each
// number is right when sent.

import { expungeDeleted } from '../../services/mailstore/expunge.ts'
import { type ImapCommand, ImapNo, SELECTED } from '../command.ts'
import { resolveSet } from '../sequence.ts'

export const expunge: ImapCommand = {
  states: SELECTED,
  uidForm: true,
  async run(s, call) {
    const r = call.args
    const sel = s.selected
    if (!sel) throw new ImapNo('No folder selected.')
    let only: number[] | null = null
    if (call.uid) {
      r.space()
      const set = r.sequenceSet()
      only = resolveSet(sel, set, true).map((n) => sel.uidAt(n))
    }
    r.end()
    if (sel.readOnly) throw new ImapNo('The folder is read-only (EXAMINE).', 'READ-ONLY')
    const gone = await expungeDeleted(s.ctx.mail, s.ref, sel.folder.id, only)
    s.reportExpunged(sel.removeUids(gone), gone)
    return undefined
  },
}
