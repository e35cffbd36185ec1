// STORE and UID STORE (RFC 9051 6.4.6): FLAGS, +FLAGS, -FLAGS and their .SILENT forms. The
// FETCH responses give each changed message's flags as they now are (with UID under UID
// STORE); flag changes made elsewhere meanwhile are reported with them.

import { type StoreMode, storeFlags } from '../../services/mailstore/flags.ts'
import { flagsOf } from '../../services/mailstore/folder-view.ts'
import { type ImapCommand, ImapNo, SELECTED } from '../command.ts'
import { imapFlags } from '../flags.ts'
import { flagList } from '../protocol/encoder.ts'
import { ImapSyntaxError } from '../protocol/parser.ts'
import { atom, type ImapValue } from '../protocol/values.ts'
import { resolveSet, uidSetText } from '../sequence.ts'

export const store: ImapCommand = {
  states: SELECTED,
  uidForm: true,
  expungeOk: (call) => call.uid,
  async run(s, call) {
    const r = call.args
    const sel = s.selected
    if (!sel) throw new ImapNo('No folder selected.')
    r.space()
    const set = r.sequenceSet()
    r.space()
    let unchangedSince: number | null = null
    if (r.peek() === 0x28) {
      // (UNCHANGEDSINCE n) (RFC 7162 3.1.3): only messages not changed since n are stored.
      r.openList()
      if (r.keyword() !== 'UNCHANGEDSINCE') throw new ImapSyntaxError('Expected UNCHANGEDSINCE.')
      r.space()
      unchangedSince = r.number64()
      r.closeList()
      r.space()
      s.condstore = true
    }
    const item = r.keyword()
    const m = /^([+-]?)FLAGS(\.SILENT)?$/.exec(item)
    if (!m) throw new ImapSyntaxError(`Unknown STORE item ${item}; expected FLAGS, +FLAGS or -FLAGS.`)
    r.space()
    const flags = r.flagListOrSingle()
    r.end()
    const seqs = resolveSet(sel, set, call.uid)
    if (sel.readOnly) throw new ImapNo('The folder is read-only (EXAMINE).', 'READ-ONLY')
    const mode: StoreMode = m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'set'
    const live = seqs.filter((n) => !sel.isExpungedPending(n))
    const uids = live.map((n) => sel.uidAt(n))
    const result = await storeFlags(s.ctx.mail, s.ref, sel.folder.id, uids, mode, flags, unchangedSince)
    const modified = new Set(result.modified)
    // Take in our own change (and any other) so it is not reported again as someone else's.
    const mine = new Set(uids)
    await s.sync(call.uid, mine)
    if (!m[2] || unchangedSince !== null) {
      const ids = live.map((n) => sel.messageIdAt(n))
      const now = await flagsOf(s.ctx.mail.store.db, s.ref.org_id, ids)
      for (const n of live) {
        const uid = sel.uidAt(n)
        if (modified.has(uid)) continue
        if (m[2] && !result.changed.includes(uid)) continue
        const f = imapFlags(now.get(sel.messageIdAt(n)) ?? [], sel.isRecent(uid))
        const items: ImapValue[] = m[2] ? [] : [atom('FLAGS'), flagList(f)]
        if (s.condstore) items.push(atom('MODSEQ'), [sel.modseqAt(n)])
        if (call.uid) items.unshift(atom('UID'), uid)
        s.untagged(n, atom('FETCH'), items)
        if (n % 200 === 0) await s.flush()
      }
    }
    if (modified.size) {
      const failed = live.filter((n) => modified.has(sel.uidAt(n))).map((n) => (call.uid ? sel.uidAt(n) : n))
      return { code: `MODIFIED ${uidSetText(failed)}`, text: 'Conditional STORE failed for some messages.' }
    }
    return undefined
  },
}
