// SEARCH and UID SEARCH (RFC 9051 6.4.4, RFC 3501 7.2.5 `* SEARCH` response): the matching
// sequence numbers (or UIDs), ascending; an unknown CHARSET gets NO [BADCHARSET].

import { type ImapCommand, ImapNo, SELECTED } from '../command.ts'
import { ImapSyntaxError } from '../protocol/parser.ts'
import { readProgram, searchSelected, usesModseq } from '../search.ts'
import { uidSetText } from '../sequence.ts'

export const search: ImapCommand = {
  states: SELECTED,
  uidForm: true,
  expungeOk: (call) => call.uid,
  async run(s, call) {
    const r = call.args
    const sel = s.selected
    if (!sel) throw new ImapNo('No folder selected.')
    r.space()
    // ESEARCH (RFC 4731): SEARCH RETURN (MIN MAX COUNT ALL) answers with one ESEARCH line.
    // Under IMAP4rev2 every SEARCH answers with ESEARCH (RETURN (ALL) by default).
    let returns: Set<string> | null = s.rev2 ? new Set(['ALL']) : null
    if (r.tryKeyword('RETURN')) {
      returns = new Set<string>()
      r.space()
      r.openList()
      if (!r.tryByte(0x29)) {
        do {
          const opt = r.keyword()
          if (!['MIN', 'MAX', 'COUNT', 'ALL'].includes(opt))
            throw new ImapSyntaxError(`Unknown RETURN option ${opt}.`)
          returns.add(opt)
        } while (r.trySpace())
        r.closeList()
      }
      if (returns.size === 0) returns.add('ALL')
      r.space()
    }
    const key = readProgram(r, false)
    const withModseq = usesModseq(key)
    if (withModseq) s.condstore = true
    const uids: number[] = []
    const seqs = await searchSelected(s, sel, key, call.uid ? uids : undefined)
    const out = call.uid ? uids : seqs
    const highest = withModseq ? seqs.reduce((m, n) => Math.max(m, sel.modseqAt(n)), 0) : 0
    if (returns) {
      let line = `* ESEARCH (TAG "${call.tag}")${call.uid ? ' UID' : ''}`
      if (out.length && returns.has('MIN')) line += ` MIN ${out[0]}`
      if (out.length && returns.has('MAX')) line += ` MAX ${out[out.length - 1]}`
      if (returns.has('COUNT')) line += ` COUNT ${out.length}`
      if (out.length && returns.has('ALL')) line += ` ALL ${uidSetText(out)}`
      if (withModseq && out.length) line += ` MODSEQ ${highest}`
      s.write(Buffer.from(`${line}\r\n`))
      return undefined
    }
    const tail = withModseq && seqs.length ? ` (MODSEQ ${highest})` : ''
    s.write(Buffer.from(`* SEARCH${out.length ? ' ' : ''}${out.join(' ')}${tail}\r\n`))
    return undefined
  },
}
