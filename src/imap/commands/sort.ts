// SORT and UID SORT (RFC 5256): the messages a search matches, in the order of the sort
// criteria (ARRIVAL, CC, DATE, FROM, SIZE, SUBJECT, TO, and DISPLAYFROM/DISPLAYTO of RFC 5957,
// each optionally REVERSE); ties go by sequence number. Subjects compare by their base subject
// (Re:, Fwd:, [list] prefixes removed), addresses by the first address's mailbox (or display
// name), case-insensitively; DATE is the Date header, or the arrival time without one.

import { normaliseSubject } from '../../mail/parse.ts'
import { storedMessages } from '../../services/mailstore/folder-view.ts'
import { type ImapCommand, ImapNo, SELECTED } from '../command.ts'
import { parseAddressList } from '../fetch/envelope.ts'
import { ImapSyntaxError } from '../protocol/parser.ts'
import { headerMap, readProgram, searchSelected } from '../search.ts'

const KEYS = new Set(['ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO', 'DISPLAYFROM', 'DISPLAYTO'])

interface Criterion {
  key: string
  reverse: boolean
}

type Value = string | number

function addressKey(value: string | undefined, display: boolean): string {
  const first = value ? parseAddressList(value).find((a) => a.mailbox !== null) : undefined
  if (!first) return ''
  const text = display ? (first.name ?? `${first.mailbox}@${first.host ?? ''}`) : (first.mailbox ?? '')
  return text.toLowerCase()
}

export const sort: ImapCommand = {
  states: SELECTED,
  uidForm: true,
  expungeOk: (call) => call.uid,
  async run(s, call) {
    const r = call.args
    const sel = s.selected
    if (!sel) throw new ImapNo('No folder selected.')
    r.space()
    r.openList()
    const criteria: Criterion[] = []
    for (;;) {
      let k = r.keyword()
      const reverse = k === 'REVERSE'
      if (reverse) {
        r.space('REVERSE')
        k = r.keyword()
      }
      if (!KEYS.has(k)) throw new ImapSyntaxError(`Unknown sort criterion ${k}.`)
      criteria.push({ key: k, reverse })
      if (!r.trySpace()) break
    }
    r.closeList()
    r.space()
    const key = readProgram(r, true)
    const seqs = await searchSelected(s, sel, key)
    const needHeaders = criteria.some((c) => c.key !== 'ARRIVAL' && c.key !== 'SIZE')
    const db = s.ctx.mail.store.db
    const keyed: { seq: number; values: Value[] }[] = []
    for (let i = 0; i < seqs.length; i += 200) {
      const batch = seqs.slice(i, i + 200)
      const stored = await storedMessages(
        db,
        s.ref.org_id,
        batch.map((n) => sel.messageIdAt(n)),
      )
      for (const n of batch) {
        const m = stored.get(sel.messageIdAt(n))
        if (!m) continue
        const h = needHeaders ? headerMap(await s.ctx.mail.blobs.get(s.ref.org_id, m.blob_sha256)) : null
        const values = criteria.map((c): Value => {
          switch (c.key) {
            case 'ARRIVAL':
              return m.received_at
            case 'SIZE':
              return m.size
            case 'DATE':
              return m.sent_at ?? m.received_at
            case 'SUBJECT':
              return normaliseSubject(h?.get('subject')?.[0] ?? '')
            case 'FROM':
            case 'DISPLAYFROM':
              return addressKey(h?.get('from')?.[0], c.key === 'DISPLAYFROM')
            case 'TO':
            case 'DISPLAYTO':
              return addressKey(h?.get('to')?.[0], c.key === 'DISPLAYTO')
            default:
              return addressKey(h?.get('cc')?.[0], false)
          }
        })
        keyed.push({ seq: n, values })
      }
    }
    keyed.sort((a, b) => {
      for (let i = 0; i < criteria.length; i++) {
        const x = a.values[i] as Value
        const y = b.values[i] as Value
        const d = typeof x === 'number' ? x - (y as number) : x < y ? -1 : x > y ? 1 : 0
        if (d !== 0) return (criteria[i] as Criterion).reverse ? -d : d
      }
      return a.seq - b.seq
    })
    const out = keyed.map((k) => (call.uid ? sel.uidAt(k.seq) : k.seq))
    s.write(Buffer.from(`* SORT${out.length ? ' ' : ''}${out.join(' ')}\r\n`))
    return undefined
  },
}
