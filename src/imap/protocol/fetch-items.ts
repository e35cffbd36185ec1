// FETCH's data items (RFC 9051 6.4.5 and 9 `fetch`, `fetch-att`, `section`, `partial`): the
// parser for the argument after the sequence set, the response name of a BODY[...] item, and
// which items need the message bytes or set \Seen.
// Invariants:
// - The macros ALL, FAST and FULL are accepted only alone (never inside a list) and come out
//   expanded; a list has at least one item. Items keep the client's order.
// - A section is exactly the RFC 9051 section-spec: HEADER, HEADER.FIELDS[.NOT] (list), TEXT
//   with or without a part path, MIME only after a part path; part numbers are nz-numbers.
//   Header field names are uppercased and must be RFC 5322 field names (printable ASCII, no
//   ':'), so a label built from them never needs more than simple quoting (a name that is not
//   an atom, e.g. one with ']', is quoted in the label).
// - A partial's length is non-zero (nz-number); the label shows only its origin
//   (`BODY[]<0>`, RFC 9051 7.5.2), and never `.PEEK`.
// - Anything else (BINARY[], MODSEQ, typos) is an ImapSyntaxError naming the item.

import { type ArgReader, ImapSyntaxError, isAtom } from './parser.ts'
import type { FetchItem, Section } from './types.ts'

type SectionItem = Extract<FetchItem, { kind: 'SECTION' }>

const LBRACKET = 0x5b
const RBRACKET = 0x5d
const LT = 0x3c
const GT = 0x3e
const DOT = 0x2e
const LPAREN = 0x28
const RPAREN = 0x29
const DIGIT_0 = 0x30

const SIMPLE = new Set<string>([
  'FLAGS',
  'UID',
  'INTERNALDATE',
  'RFC822.SIZE',
  'ENVELOPE',
  'BODYSTRUCTURE',
  'RFC822',
  'RFC822.HEADER',
  'RFC822.TEXT',
  'MODSEQ',
])

const FAST = ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'] as const
const MACROS: Record<string, readonly string[]> = {
  FAST,
  ALL: [...FAST, 'ENVELOPE'],
  FULL: [...FAST, 'ENVELOPE', 'BODY'],
}

const SECTION_TEXTS = new Set(['HEADER', 'HEADER.FIELDS', 'HEADER.FIELDS.NOT', 'TEXT', 'MIME'])

const itemOf = (kind: string): FetchItem => ({ kind }) as FetchItem

/** The FETCH argument after the sequence set: a macro, one fetch-att, or a list of them. */
export function parseFetchItems(r: ArgReader): FetchItem[] {
  if (r.peek() === LPAREN) {
    r.openList()
    if (r.peek() === RPAREN) throw new ImapSyntaxError('The FETCH item list is empty')
    const items: FetchItem[] = []
    do {
      items.push(fetchAtt(r))
    } while (r.nextInList('FETCH item list'))
    return items
  }
  for (const [name, kinds] of Object.entries(MACROS)) {
    if (r.tryKeyword(name)) return kinds.map(itemOf)
  }
  return [fetchAtt(r)]
}

const shown = (name: string): string => (name.length > 40 ? `${name.slice(0, 40)}...` : name)

function fetchAtt(r: ArgReader): FetchItem {
  let name: string
  try {
    name = r.atomExcept('[<').toUpperCase()
  } catch {
    throw new ImapSyntaxError('Expected a FETCH item')
  }
  const next = r.peek()
  if (name === 'BODY' || name === 'BODY.PEEK') {
    if (next === LBRACKET) {
      const section = parseSection(r)
      const partial = parsePartial(r)
      const item: SectionItem = { kind: 'SECTION', peek: name === 'BODY.PEEK', section }
      if (partial) item.partial = partial
      return item
    }
    if (name === 'BODY.PEEK') throw new ImapSyntaxError('BODY.PEEK needs a section, as in BODY.PEEK[]')
    if (next === LT) throw new ImapSyntaxError('A partial <...> needs a section, as in BODY[]<0.100>')
    return { kind: 'BODY' }
  }
  if ((name === 'BINARY' || name === 'BINARY.PEEK' || name === 'BINARY.SIZE') && next === LBRACKET) {
    r.tryByte(LBRACKET)
    const part: number[] = []
    while (!r.tryByte(RBRACKET)) {
      if (part.length > 0 && !r.tryByte(DOT))
        throw new ImapSyntaxError('BINARY takes part numbers only, as in BINARY[1.2]')
      part.push(r.nzNumber())
      if (part.length > 100) throw new ImapSyntaxError('Part number too deep')
    }
    const item: Extract<FetchItem, { kind: 'BINARY' }> = {
      kind: 'BINARY',
      peek: name !== 'BINARY',
      size: name === 'BINARY.SIZE',
      part,
    }
    if (name !== 'BINARY.SIZE') {
      const partial = parsePartial(r)
      if (partial) item.partial = partial
    }
    return item
  }
  if (!SIMPLE.has(name) || next === LBRACKET || next === LT) {
    throw new ImapSyntaxError(`Unknown FETCH item ${shown(name)}${next === LBRACKET ? '[' : ''}`)
  }
  return itemOf(name)
}

function parseSection(r: ArgReader): Section {
  r.tryByte(LBRACKET)
  if (r.tryByte(RBRACKET)) return { part: [] }
  let spec: string
  try {
    spec = r.atom().toUpperCase()
  } catch {
    throw new ImapSyntaxError('Invalid section')
  }
  const tokens = spec.split('.')
  const part: number[] = []
  let i = 0
  while (i < tokens.length && /^\d+$/.test(tokens[i] as string)) {
    const t = tokens[i] as string
    if (t.charCodeAt(0) === DIGIT_0) throw new ImapSyntaxError('Section part numbers start at 1')
    const n = Number(t)
    if (n > 4294967295) throw new ImapSyntaxError('Section part number out of range')
    part.push(n)
    i++
  }
  const section: Section = { part }
  if (i < tokens.length) {
    const text = tokens.slice(i).join('.')
    if (!SECTION_TEXTS.has(text)) throw new ImapSyntaxError(`Invalid section ${shown(spec)}`)
    if (text === 'MIME' && part.length === 0)
      throw new ImapSyntaxError('MIME needs a part number, as in 1.MIME')
    section.text = text as NonNullable<Section['text']>
    if (text === 'HEADER.FIELDS' || text === 'HEADER.FIELDS.NOT') {
      r.space(text)
      section.fields = headerList(r)
    }
  }
  if (!r.tryByte(RBRACKET)) throw new ImapSyntaxError("Expected ']' after the section")
  return section
}

function validFieldName(f: string): boolean {
  if (f.length === 0) return false
  for (let i = 0; i < f.length; i++) {
    const c = f.charCodeAt(i)
    if (c < 33 || c > 126 || c === 0x3a) return false
  }
  return true
}

function headerList(r: ArgReader): string[] {
  if (r.peek() !== LPAREN) throw new ImapSyntaxError('Expected a list of header field names')
  r.openList()
  const fields: string[] = []
  do {
    const f = r.astring().toUpperCase()
    if (!validFieldName(f)) throw new ImapSyntaxError('Invalid header field name')
    fields.push(f)
  } while (r.nextInList('header field list'))
  return fields
}

function parsePartial(r: ArgReader): { start: number; length: number } | null {
  if (!r.tryByte(LT)) return null
  const start = r.number64()
  if (!r.tryByte(DOT)) throw new ImapSyntaxError("Expected '.' in partial <start.length>")
  if (r.peek() === DIGIT_0) throw new ImapSyntaxError('A partial length must be a non-zero number')
  const length = r.nzNumber64()
  if (!r.tryByte(GT)) throw new ImapSyntaxError("Expected '>' after partial")
  return { start, length }
}

const quoteField = (f: string): string => (isAtom(f) ? f : `"${f.replace(/[\\"]/g, '\\$&')}"`)

/** The item's name in the FETCH response: `BODY[1.2.TEXT]`, `BODY[HEADER.FIELDS (FROM TO)]`, `BODY[]<0>`. */
export function sectionLabel(item: Extract<FetchItem, { kind: 'SECTION' }>): string {
  const s = item.section
  let spec = s.part.join('.')
  if (s.text) spec += spec ? `.${s.text}` : s.text
  if (s.fields && (s.text === 'HEADER.FIELDS' || s.text === 'HEADER.FIELDS.NOT')) {
    spec += ` (${s.fields.map(quoteField).join(' ')})`
  }
  return `BODY[${spec}]${item.partial ? `<${item.partial.start}>` : ''}`
}

/** Whether any item needs the message bytes (RFC822.SIZE, FLAGS, UID, INTERNALDATE do not). */
export function itemsNeedBody(items: FetchItem[]): boolean {
  return items.some(
    (i) =>
      i.kind === 'ENVELOPE' ||
      i.kind === 'BODYSTRUCTURE' ||
      i.kind === 'BODY' ||
      i.kind === 'RFC822' ||
      i.kind === 'RFC822.HEADER' ||
      i.kind === 'RFC822.TEXT' ||
      i.kind === 'SECTION' ||
      i.kind === 'BINARY',
  )
}

/** Whether fetching the items sets \Seen: BODY[...] (not .PEEK), RFC822, RFC822.TEXT. */
export function itemsSetSeen(items: FetchItem[]): boolean {
  return items.some(
    (i) =>
      ((i.kind === 'SECTION' || i.kind === 'BINARY') && !i.peek) ||
      i.kind === 'RFC822' ||
      i.kind === 'RFC822.TEXT',
  )
}
