// COPY, MOVE (RFC 6851) and their UID forms, with COPYUID (RFC 4315): the target must exist
// (NO [TRYCREATE] otherwise). MOVE reports the moved messages as EXPUNGE (the untagged
// COPYUID comes first, RFC 6851 4.3).

import { copyMessages } from '../../services/mailstore/copy.ts'
import { folderByName } from '../../services/mailstore/folder-view.ts'
import { type ImapCommand, ImapNo, SELECTED } from '../command.ts'
import { resolveSet, uidSetText } from '../sequence.ts'

function makeCopy(move: boolean): ImapCommand {
  return {
    states: SELECTED,
    uidForm: true,
    async run(s, call) {
      const r = call.args
      const sel = s.selected
      if (!sel) throw new ImapNo('No folder selected.')
      r.space()
      const set = r.sequenceSet()
      r.space()
      const name = r.mailbox(s.rev2)
      r.end()
      const seqs = resolveSet(sel, set, call.uid)
      if (move && sel.readOnly) throw new ImapNo('The folder is read-only (EXAMINE).', 'READ-ONLY')
      const target = await folderByName(s.ctx.mail.store.db, s.ref, name)
      if (!target) throw new ImapNo(`No folder named ${name}.`, 'TRYCREATE')
      const uids = seqs.filter((n) => !sel.isExpungedPending(n)).map((n) => sel.uidAt(n))
      if (uids.length === 0) return { text: `${move ? 'MOVE' : 'COPY'} completed (no messages).` }
      const result = await copyMessages(s.ctx.mail, s.ref, sel.folder.id, uids, target.id, move)
      if (!result.pairs.length) return { text: 'No messages.' }
      const code = `COPYUID ${result.uidvalidity} ${uidSetText(result.pairs.map((p) => p[0]))} ${uidSetText(result.pairs.map((p) => p[1]))}`
      if (!move || target.id === sel.folder.id) return { code }
      s.status('OK', 'Moved.', code)
      const moved = result.pairs.map((p) => p[0])
      s.reportExpunged(sel.removeUids(moved), moved)
      return { text: 'MOVE completed.' }
    },
  }
}

export const copy = makeCopy(false)
export const move = makeCopy(true)
