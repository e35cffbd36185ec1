// SEARCH and UID SEARCH (RFC 9051 6.4.4, RFC 3501 7.2.5 `* SEARCH` response): the matching
// sequence numbers (or UIDs), ascending; an unknown CHARSET gets NO [BADCHARSET].

import { type ImapCommand, ImapNo, SELECTED } from '../command.ts'
import { BadCharsetError, parseSearch } from '../protocol/search-keys.ts'
import { atom } from '../protocol/values.ts'
import { searchSelected } from '../search.ts'

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
    const seqs = await searchSelected(s, sel, program.key)
    const out = call.uid ? seqs.map((n) => sel.uidAt(n)) : seqs
    // One line; long results are written in pieces so no huge string is built twice.
    s.write(Buffer.from(`* SEARCH${out.length ? ' ' : ''}${out.join(' ')}\r\n`))
    void atom
    return undefined
  },
}
