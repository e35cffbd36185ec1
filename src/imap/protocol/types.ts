// The parsed shapes of IMAP command arguments (RFC 3501 / RFC 9051 grammar): what
// protocol/parser.ts, fetch-items.ts and search-keys.ts produce and what the commands and the
// FETCH builders consume. Pure data: no I/O, no store types.

/** One end of a sequence range: a number, or `*` (the largest number in use). */
export type SeqNumber = number | '*'

/** A sequence-set as written (RFC 9051 9 `sequence-set`), before `*` is known. */
export interface SequenceSet {
  ranges: Array<{ from: SeqNumber; to: SeqNumber }>
}

/**
 * A BODY[...] section spec (RFC 9051 6.4.5). `part` is the dotted part path (empty for the
 * whole message); `text` is the section-text after it, if any.
 */
export interface Section {
  part: number[]
  text?: 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME'
  /** Header field names for HEADER.FIELDS / HEADER.FIELDS.NOT, uppercased, in the client's order. */
  fields?: string[]
}

/** One FETCH data item. The macros ALL, FAST and FULL are expanded by the parser. */
export type FetchItem =
  | { kind: 'FLAGS' }
  | { kind: 'UID' }
  | { kind: 'INTERNALDATE' }
  | { kind: 'RFC822.SIZE' }
  | { kind: 'ENVELOPE' }
  | { kind: 'BODYSTRUCTURE' }
  /** `BODY` with no section: the non-extensible body structure. */
  | { kind: 'BODY' }
  | { kind: 'RFC822' }
  | { kind: 'RFC822.HEADER' }
  | { kind: 'RFC822.TEXT' }
  /** The message's MODSEQ (RFC 7162 3.1.4). */
  | { kind: 'MODSEQ' }
  /**
   * BINARY[part]<partial>, BINARY.PEEK[...] and BINARY.SIZE[part] (RFC 3516): a part's content
   * with its Content-Transfer-Encoding undone.
   */
  | {
      kind: 'BINARY'
      peek: boolean
      size: boolean
      part: number[]
      partial?: { start: number; length: number }
    }
  | { kind: 'SECTION'; peek: boolean; section: Section; partial?: { start: number; length: number } }

/** A date with no time (SEARCH BEFORE/ON/SINCE and their SENT* forms). */
export interface DayDate {
  year: number
  month: number // 1-12
  day: number // 1-31
}

/** One search key (RFC 9051 6.4.4), as a tree. A list of keys is an `and`. */
export type SearchKey =
  | { op: 'all' }
  | { op: 'and'; keys: SearchKey[] }
  | { op: 'or'; a: SearchKey; b: SearchKey }
  | { op: 'not'; key: SearchKey }
  /** A system flag or keyword is set (`set: true`) or not set. ANSWERED, UNSEEN, KEYWORD x, ... */
  | { op: 'flag'; flag: string; set: boolean }
  | { op: 'recent'; set: boolean }
  /** NEW = RECENT and UNSEEN. */
  | { op: 'new' }
  | { op: 'seq'; set: SequenceSet }
  | { op: 'uid'; set: SequenceSet }
  /** HEADER field value; FROM/TO/CC/BCC/SUBJECT become this with the field name (uppercased). */
  | { op: 'header'; field: string; value: string }
  | { op: 'body'; value: string }
  | { op: 'text'; value: string }
  | { op: 'date'; which: 'internal' | 'sent'; cmp: 'before' | 'on' | 'since'; date: DayDate }
  | { op: 'size'; cmp: 'larger' | 'smaller'; n: number }
  /** MODSEQ n (RFC 7162 3.1.5): the message's MODSEQ is at least n. */
  | { op: 'modseq'; n: number }

export interface SearchProgram {
  /** The CHARSET the client named, uppercased, or null. */
  charset: string | null
  key: SearchKey
}
