// SEARCH's program (RFC 3501 6.4.4 and 9 `search`, `search-key`; RFC 9051 6.4.4): the optional
// CHARSET and the keys after it, as the SearchKey tree of types.ts. Parsing only; matching is
// the selected folder's business.
// Invariants:
// - CHARSET is US-ASCII or UTF-8 (any case); anything else is a BadCharsetError, which the
//   command answers with NO [BADCHARSET (US-ASCII UTF-8)], not BAD.
// - The keys run to the end of the command (the reader is left at the end); several keys are an
//   `and`, one key is itself; a parenthesised list of one key is that key.
// - Every RFC 3501 key is understood, including RECENT/NEW/OLD (gone from RFC 9051, still sent);
//   string arguments are astrings, header names are uppercased.
// - Bounded work: NOT/OR/parentheses nest at most MAX_DEPTH deep, a program has at most
//   MAX_SEARCH_KEYS keys, sequence sets are capped by the reader.

import { type ArgReader, ImapSyntaxError, MAX_DEPTH } from './parser.ts'
import type { SearchKey, SearchProgram } from './types.ts'

/** Most keys (each NOT, OR, list and leaf counts) one SEARCH may have. */
export const MAX_SEARCH_KEYS = 1000

/** SEARCH CHARSET named something other than US-ASCII or UTF-8. */
export class BadCharsetError extends Error {
  readonly charset: string
  constructor(charset: string) {
    super(`Unsupported charset ${charset}`)
    this.name = 'BadCharsetError'
    this.charset = charset
  }
}

const CHARSETS = new Set(['US-ASCII', 'UTF-8'])
const LPAREN = 0x28
const RPAREN = 0x29
const STAR = 0x2a

const flag = (f: string, set: boolean): SearchKey => ({ op: 'flag', flag: f, set })

const FLAG_KEYS: Record<string, SearchKey> = {
  ANSWERED: flag('\\Answered', true),
  DELETED: flag('\\Deleted', true),
  DRAFT: flag('\\Draft', true),
  FLAGGED: flag('\\Flagged', true),
  SEEN: flag('\\Seen', true),
  UNANSWERED: flag('\\Answered', false),
  UNDELETED: flag('\\Deleted', false),
  UNDRAFT: flag('\\Draft', false),
  UNFLAGGED: flag('\\Flagged', false),
  UNSEEN: flag('\\Seen', false),
}

const HEADER_KEYS = new Set(['BCC', 'CC', 'FROM', 'SUBJECT', 'TO'])

const DATE_KEYS: Record<string, { which: 'internal' | 'sent'; cmp: 'before' | 'on' | 'since' }> = {
  BEFORE: { which: 'internal', cmp: 'before' },
  ON: { which: 'internal', cmp: 'on' },
  SINCE: { which: 'internal', cmp: 'since' },
  SENTBEFORE: { which: 'sent', cmp: 'before' },
  SENTON: { which: 'sent', cmp: 'on' },
  SENTSINCE: { which: 'sent', cmp: 'since' },
}

class Program {
  readonly r: ArgReader
  count = 0
  constructor(r: ArgReader) {
    this.r = r
  }

  key(depth: number): SearchKey {
    if (++this.count > MAX_SEARCH_KEYS) throw new ImapSyntaxError('Search program has too many keys')
    const r = this.r
    const c = r.peek()
    if (c === LPAREN) {
      this.deeper(depth)
      r.openList()
      if (r.peek() === RPAREN) throw new ImapSyntaxError('Empty search key list')
      const keys: SearchKey[] = []
      do {
        keys.push(this.key(depth + 1))
      } while (r.nextInList('search key list'))
      return keys.length === 1 ? (keys[0] as SearchKey) : { op: 'and', keys }
    }
    if (c === STAR || (c !== undefined && c >= 0x30 && c <= 0x39)) return { op: 'seq', set: r.sequenceSet() }
    let name: string
    try {
      name = r.keyword()
    } catch {
      throw new ImapSyntaxError(
        c === RPAREN && depth === 0 ? "Unbalanced ')' in search program" : 'Expected a search key',
      )
    }
    const asFlag = FLAG_KEYS[name]
    if (asFlag) return { ...asFlag }
    const asDate = DATE_KEYS[name]
    if (asDate) {
      r.space(name)
      return { op: 'date', ...asDate, date: r.date() }
    }
    if (HEADER_KEYS.has(name)) {
      r.space(name)
      return { op: 'header', field: name, value: r.astring() }
    }
    switch (name) {
      case 'ALL':
        return { op: 'all' }
      case 'NEW':
        return { op: 'new' }
      case 'OLD':
        return { op: 'recent', set: false }
      case 'RECENT':
        return { op: 'recent', set: true }
      case 'BODY':
        r.space(name)
        return { op: 'body', value: r.astring() }
      case 'TEXT':
        r.space(name)
        return { op: 'text', value: r.astring() }
      case 'HEADER': {
        r.space(name)
        const field = r.astring().toUpperCase()
        r.space('the header field name')
        return { op: 'header', field, value: r.astring() }
      }
      case 'KEYWORD':
      case 'UNKEYWORD':
        r.space(name)
        return { op: 'flag', flag: r.atom(), set: name === 'KEYWORD' }
      case 'LARGER':
      case 'SMALLER':
        r.space(name)
        return { op: 'size', cmp: name === 'LARGER' ? 'larger' : 'smaller', n: r.number64() }
      case 'UID':
        r.space(name)
        return { op: 'uid', set: r.sequenceSet() }
      case 'MODSEQ': {
        // MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162 3.1.5); the entry
        // names a flag's own MODSEQ, which is the message's here.
        r.space(name)
        if (r.peek() === 0x22) {
          r.string()
          r.space(name)
          const type = r.keyword()
          if (!['PRIV', 'SHARED', 'ALL'].includes(type))
            throw new ImapSyntaxError('Expected priv, shared or all')
          r.space(name)
        }
        return { op: 'modseq', n: r.number64() }
      }
      case 'NOT':
        this.deeper(depth)
        r.space(name)
        return { op: 'not', key: this.key(depth + 1) }
      case 'OR': {
        this.deeper(depth)
        r.space(name)
        const a = this.key(depth + 1)
        r.space('the first OR key')
        return { op: 'or', a, b: this.key(depth + 1) }
      }
      default:
        throw new ImapSyntaxError(`Unknown search key ${name.length > 40 ? `${name.slice(0, 40)}...` : name}`)
    }
  }

  private deeper(depth: number): void {
    if (depth >= MAX_DEPTH) throw new ImapSyntaxError('Search program nested too deeply')
  }
}

/** The SEARCH arguments after the SP that follows the command name, to the end of the command. */
export function parseSearch(r: ArgReader): SearchProgram {
  let charset: string | null = null
  if (r.tryKeyword('CHARSET')) {
    r.space('CHARSET')
    charset = r.astring().toUpperCase()
    if (!CHARSETS.has(charset)) throw new BadCharsetError(charset)
    r.space('the charset')
  }
  const p = new Program(r)
  const keys: SearchKey[] = [p.key(0)]
  while (!r.atEnd()) {
    if (r.peek() === RPAREN) throw new ImapSyntaxError("Unbalanced ')' in search program")
    r.space()
    keys.push(p.key(0))
  }
  return { charset, key: keys.length === 1 ? (keys[0] as SearchKey) : { op: 'and', keys } }
}
