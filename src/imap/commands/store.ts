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

const SYSTEM_FLAGS = new Set(['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'])

/** Only the five system flags start with a backslash (\Recent cannot be set): RFC 9051 2.3.2. */
export function checkFlags(flags: readonly string[]): void {
  for (const f of flags)
    if (f.startsWith('\\') && !SYSTEM_FLAGS.has(f))
      throw new ImapSyntaxError(`${f} is not a flag a client may set.`)
}

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
    checkFlags(flags)
    const seqs = resolveSet(sel, set, call.uid)
    if (sel.readOnly) throw new ImapNo('The folder is read-only (EXAMINE).', 'READ-ONLY')
    const mode: StoreMode = m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'set'
    const uids = seqs.filter((n) => !sel.isExpungedPending(n)).map((n) => sel.uidAt(n))
    // Changes made elsewhere are reported first (RFC 3501 6.4.6: even under .SILENT) ...
    if (s.stale) await s.sync(false)
    const result = await storeFlags(s.ctx.mail, s.ref, sel.folder.id, uids, mode, flags, unchangedSince)
    const modified = new Set(result.modified)
    const changed = new Set(result.changed)
    // ... then our own change is taken in without being reported as someone else's. No
    // EXPUNGE here: sequence numbers must hold until the responses below are written.
    await s.sync(false, new Set(uids))
    if (!m[2] || unchangedSince !== null) {
      const live = uids.map((u) => sel.seqOf(u)).filter((n) => n > 0)
      const ids = live.map((n) => sel.messageIdAt(n))
      const now = await flagsOf(s.ctx.mail.store.db, s.ref.org_id, ids)
      s.announce(flags)
      for (const n of live) {
        const uid = sel.uidAt(n)
        if (modified.has(uid)) continue
        if (m[2] && !changed.has(uid)) continue
        const f = imapFlags(now.get(sel.messageIdAt(n)) ?? [], s.recent(sel, uid))
        const items: ImapValue[] = m[2] ? [] : [atom('FLAGS'), flagList(f)]
        if (s.condstore) items.push(atom('MODSEQ'), [sel.modseqAt(n)])
        if (call.uid) items.unshift(atom('UID'), uid)
        s.untagged(n, atom('FETCH'), items)
        if (n % 200 === 0) await s.flush()
      }
    }
    if (modified.size) {
      const failed = result.modified
        .map((u) => (call.uid ? u : sel.seqOf(u)))
        .filter((n) => n > 0)
        .sort((a, b) => a - b)
      return { code: `MODIFIED ${uidSetText(failed)}`, text: 'Conditional STORE failed for some messages.' }
    }
    return undefined
  },
}
