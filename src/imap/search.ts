// Evaluates a SEARCH program (protocol/search-keys.ts) over the selected folder (RFC 9051
// 6.4.4). Per batch of messages it reads only what the keys need: flags, sizes and dates from
// the database, header fields from the raw message (substring, case-insensitive, RFC 2047
// words decoded), and BODY/TEXT through the full-text index (services/mailstore/text-search.ts).
// Sequence numbers and \Recent are this session's, so they are answered here.

import { folderMessages } from '../services/mailstore/folder-index.ts'
import { folderById, type StoredMessage, storedMessages } from '../services/mailstore/folder-view.ts'
import { fullTextMatches } from '../services/mailstore/text-search.ts'
import { ImapNo } from './command.ts'
import { type ArgReader, inRanges, sequenceRanges } from './protocol/parser.ts'
import { BadCharsetError, parseSearch } from './protocol/search-keys.ts'
import type { DayDate, SearchKey, SearchProgram } from './protocol/types.ts'
import type { SelectedFolder } from './selected.ts'
import type { ImapSession } from './session.ts'

const BATCH = 200
const NONE: readonly string[] = []

interface Needs {
  /** Flags or sizes: from the folder index. */
  flags: boolean
  stored: boolean
  header: boolean
  text: string[]
}

const BADCHARSET = 'BADCHARSET (US-ASCII UTF-8)'

/**
 * Reads a search program to the end of the command: SEARCH's optional CHARSET, or (SORT and
 * THREAD, RFC 5256) a charset that comes first and must be given; an unknown one is
 * NO [BADCHARSET].
 */
export function readProgram(r: ArgReader, charsetFirst: boolean): SearchKey {
  if (charsetFirst) {
    const charset = r.astring().toUpperCase()
    if (charset !== 'UTF-8' && charset !== 'US-ASCII') throw new ImapNo('Unsupported charset.', BADCHARSET)
    r.space()
  }
  let program: SearchProgram
  try {
    program = parseSearch(r)
  } catch (err) {
    if (err instanceof BadCharsetError) throw new ImapNo('Unsupported charset.', BADCHARSET)
    throw err
  }
  r.end()
  return program.key
}

/** True when the program has a MODSEQ key (the answer then carries the highest MODSEQ, RFC 7162 3.1.5). */
export function usesModseq(k: SearchKey): boolean {
  if (k.op === 'modseq') return true
  if (k.op === 'and') return k.keys.some(usesModseq)
  if (k.op === 'or') return usesModseq(k.a) || usesModseq(k.b)
  if (k.op === 'not') return usesModseq(k.key)
  return false
}

function needsOf(k: SearchKey, n: Needs): void {
  switch (k.op) {
    case 'and':
      for (const x of k.keys) needsOf(x, n)
      break
    case 'or':
      needsOf(k.a, n)
      needsOf(k.b, n)
      break
    case 'not':
      needsOf(k.key, n)
      break
    case 'flag':
    case 'new':
      n.flags = true
      break
    case 'date':
      n.stored = true
      // SENT* compare the Date header's own calendar day, in its own zone (RFC 3501 6.4.4).
      if (k.which === 'sent') n.header = true
      break
    case 'size':
      n.flags = true
      break
    case 'header':
      n.header = true
      break
    case 'text':
      n.header = true
      n.text.push(k.value)
      break
    case 'body':
      n.text.push(k.value)
      break
  }
}

interface Row {
  seq: number
  uid: number
  id: string
  /** Flags and keywords, lower-cased. */
  lower: readonly string[]
  size: number
  stored: StoredMessage | undefined
  header: Map<string, string[]> | null
}

const dayStart = (d: DayDate) => Date.UTC(d.year, d.month - 1, d.day)
const DAY = 86_400_000

/** Sequence numbers matching the program, ascending (and their UIDs into `uidsOut` when given). */
export async function searchSelected(
  s: ImapSession,
  sel: SelectedFolder,
  key: SearchKey,
  uidsOut?: number[],
): Promise<number[]> {
  const needs: Needs = { flags: false, stored: false, header: false, text: [] }
  needsOf(key, needs)
  const db = s.ctx.mail.store.db
  const text = new Map<string, Set<string> | null>()
  for (const t of needs.text)
    if (!text.has(t)) text.set(t, await fullTextMatches(s.ctx.mail, s.ref, sel.folder.id, t))
  const seqRanges = new Map<object, Array<[number, number]>>()
  const rangesOf = (k: Extract<SearchKey, { op: 'seq' | 'uid' }>) => {
    let r = seqRanges.get(k)
    if (!r) {
      r = sequenceRanges(k.set, k.op === 'uid' ? sel.maxUid : sel.exists)
      seqRanges.set(k, r)
    }
    return r
  }
  const test = (k: SearchKey, m: Row): boolean => {
    switch (k.op) {
      case 'all':
        return true
      case 'and':
        return k.keys.every((x) => test(x, m))
      case 'or':
        return test(k.a, m) || test(k.b, m)
      case 'not':
        return !test(k.key, m)
      case 'flag': {
        const want = k.flag.toLowerCase()
        return m.lower.includes(want) === k.set
      }
      case 'recent':
        return sel.isRecent(m.uid) === k.set
      case 'new':
        return sel.isRecent(m.uid) && !m.lower.includes('\\seen')
      case 'seq':
        return inRanges(rangesOf(k), m.seq)
      case 'uid':
        return inRanges(rangesOf(k), m.uid)
      case 'modseq':
        return sel.modseqAt(m.seq) >= k.n
      case 'size': {
        return k.cmp === 'larger' ? m.size > k.n : m.size < k.n
      }
      case 'date': {
        const at = k.which === 'internal' ? m.stored?.received_at : headerDay(m.header)
        if (at === null || at === undefined) return false
        // Dates compare by day, ignoring time and zone (RFC 9051 6.4.4); days are taken in UTC.
        const start = dayStart(k.date)
        if (k.cmp === 'before') return at < start
        if (k.cmp === 'on') return at >= start && at < start + DAY
        return at >= start
      }
      case 'header': {
        const values = m.header?.get(k.field.toLowerCase()) ?? []
        if (k.value === '') return values.length > 0
        const want = k.value.toLowerCase()
        return values.some((v) => v.toLowerCase().includes(want))
      }
      case 'body': {
        const hits = text.get(k.value)
        return hits === null || hits === undefined ? true : hits.has(m.id)
      }
      case 'text': {
        const hits = text.get(k.value)
        if (hits === null || hits === undefined || hits.has(m.id)) return true
        const want = k.value.toLowerCase()
        for (const values of m.header?.values() ?? [])
          if (values.some((v) => v.toLowerCase().includes(want))) return true
        return false
      }
    }
  }
  const out: number[] = []
  // Flags and sizes from the folder index (kept in memory, brought up to date here); dates,
  // headers and text per batch of messages, only when a key needs them.
  const now = needs.flags ? await folderById(db, s.ref, sel.folder.id) : null
  const index = now ? await folderMessages(db, s.ref, now) : null
  const slow = needs.stored || needs.header || needs.text.length > 0
  const row: Row = { seq: 0, uid: 0, id: '', lower: NONE, size: 0, stored: undefined, header: null }
  if (!slow) {
    // Flags, sizes, sequence numbers and UIDs only: one walk over the list, nothing to read.
    sel.forEachListed((seq, uid) => {
      row.seq = seq
      row.uid = uid
      const ix = index?.get(uid)
      row.lower = ix?.lower ?? NONE
      row.size = ix?.size ?? 0
      if (test(key, row)) {
        out.push(seq)
        uidsOut?.push(uid)
      }
    })
    return out
  }
  for (let start = 1; start <= sel.exists; start += BATCH) {
    const end = Math.min(start + BATCH - 1, sel.exists)
    let stored: Map<string, StoredMessage> | null = null
    if (needs.stored || needs.header) {
      const ids: string[] = []
      for (let n = start; n <= end; n++) ids.push(sel.messageIdAt(n))
      stored = await storedMessages(db, s.ref.org_id, ids)
    }
    for (let n = start; n <= end; n++) {
      row.seq = n
      row.uid = sel.uidAt(n)
      const ix = index?.get(row.uid)
      row.lower = ix?.lower ?? NONE
      row.size = ix?.size ?? 0
      row.id = sel.messageIdAt(n)
      row.stored = stored?.get(row.id)
      row.header =
        needs.header && row.stored
          ? headerMap(await s.ctx.mail.blobs.get(s.ref.org_id, row.stored.blob_sha256))
          : null
      if (test(key, row)) {
        out.push(n)
        uidsOut?.push(row.uid)
      }
    }
  }
  return out
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']

/** The calendar day written in the Date header, as UTC midnight of that day (epoch ms), or null. */
function headerDay(header: Map<string, string[]> | null): number | null {
  const date = header?.get('date')?.[0]
  const m = date ? /(\d{1,2})\s+([A-Za-z]{3})[a-z]*\s+(\d{2,4})/.exec(date) : null
  if (!m) return null
  const month = MONTHS.indexOf((m[2] as string).toLowerCase())
  if (month < 0) return null
  let year = Number(m[3])
  if (year < 100) year += year < 50 ? 2000 : 1900
  return Date.UTC(year, month, Number(m[1]))
}

/** Header fields by lowercased name: unfolded values with RFC 2047 encoded words decoded. */
export function headerMap(raw: Buffer): Map<string, string[]> {
  let end = raw.indexOf('\r\n\r\n')
  let sep = 4
  if (end < 0) {
    end = raw.indexOf('\n\n')
    sep = 2
  }
  const head = raw.subarray(0, end < 0 ? raw.length : end + sep).toString('utf8')
  const map = new Map<string, string[]>()
  for (const field of head.split(/\r?\n(?![ \t])/)) {
    const colon = field.indexOf(':')
    if (colon <= 0) continue
    const name = field.slice(0, colon).trim().toLowerCase()
    const value = decodeWords(
      field
        .slice(colon + 1)
        .replace(/\r?\n[ \t]/g, ' ')
        .trim(),
    )
    const list = map.get(name) ?? []
    list.push(value)
    map.set(name, list)
  }
  return map
}

function decodeWords(v: string): string {
  return v
    .replace(/(=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g, (whole, charset: string, enc: string, text: string) => {
      try {
        const bytes =
          enc.toUpperCase() === 'B'
            ? Buffer.from(text, 'base64')
            : Buffer.from(
                text
                  .replace(/_/g, ' ')
                  .replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) =>
                    String.fromCharCode(Number.parseInt(h, 16)),
                  ),
                'latin1',
              )
        return new TextDecoder(charset.replace(/\*.*$/, '').toLowerCase()).decode(bytes)
      } catch {
        return whole
      }
    })
}
