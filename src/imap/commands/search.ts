// SEARCH and UID SEARCH (RFC 9051 6.4.4, RFC 3501 7.2.5 `* SEARCH` response): the matching
// sequence numbers (or UIDs), ascending; an unknown CHARSET gets NO [BADCHARSET].

import { type ImapCommand, ImapNo, SELECTED } from '../command.ts'
import { BadCharsetError, parseSearch } from '../protocol/search-keys.ts'
import { searchSelected, usesModseq } from '../search.ts'

export const search: ImapCommand = {
  states: SELECTED,
  uidForm: true,
  expungeOk: (call) => call.uid,
  async run(s, call) {
    const r = call.args
    const sel = s.selected
    if (!sel) throw new ImapNo('No folder selected.')
    r.space()
    let program: ReturnType<typeof parseSearch>
    try {
      program = parseSearch(r)
    } catch (err) {
      if (err instanceof BadCharsetError)
        throw new ImapNo('Unsupported charset.', 'BADCHARSET (US-ASCII UTF-8)')
      throw err
    }
    r.end()
    const withModseq = usesModseq(program.key)
    if (withModseq) s.condstore = true
    const seqs = await searchSelected(s, sel, program.key)
    const out = call.uid ? seqs.map((n) => sel.uidAt(n)) : seqs
    let tail = ''
    if (withModseq && seqs.length)
      tail = ` (MODSEQ ${seqs.reduce((m, n) => Math.max(m, sel.modseqAt(n)), 0)})`
    s.write(Buffer.from(`* SEARCH${out.length ? ' ' : ''}${out.join(' ')}${tail}\r\n`))
    return undefined
  },
}
