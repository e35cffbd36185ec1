// The search language of GET /v1/search and GET /v1/messages?q=: free words plus operators,
// parsed into a structure, then turned into SQL conditions on `messages` aliased `m`.
//   from:<text>  to:<text> (To or Cc)  subject:<text>    substring, case-insensitive
//   has:attachment   is:unread | is:read | is:starred | is:unstarred
//   before:YYYY-MM-DD (received before that day, UTC)   after:YYYY-MM-DD (that day or later)
//   in:<folder>  (folder id, name or role; without it Trash and Junk are left out)
// Values may be quoted: subject:"quarterly report". Free words (quoted or not) must all match
// the full-text index (store/fulltext.ts; the last word also as a prefix); phrases are not
// matched as phrases. A word with an unknown operator (`re:`) is free text.
// Invariants: every value reaches SQL as a bound parameter (LIKE patterns escaped), never
// spliced; bad operator values are INVALID_QUERY, not silently ignored.

import { type RawBuilder, sql } from 'kysely'
import type { DialectName } from '../../store/db.ts'
import { matchCondition, queryWords } from '../../store/fulltext.ts'
import { ServiceError } from '../errors.ts'
import { FLAGGED, SEEN } from './folder-ops.ts'

export interface MailQuery {
  /** Free-text words (normalised by queryWords). */
  words: string[]
  from: string[]
  to: string[]
  subject: string[]
  has_attachment: boolean | null
  /** Epoch ms, exclusive upper bound on received_at. */
  before: number | null
  /** Epoch ms, inclusive lower bound on received_at. */
  after: number | null
  /** Folder references (id, name or role), each must hold the message. */
  in: string[]
  unread: boolean | null
  starred: boolean | null
}

const MAX_TOKENS = 32
const MAX_VALUE = 200

const invalid = (message: string) =>
  new ServiceError('invalid', 'INVALID_QUERY', `The search query is not valid: ${message}.`, {
    details: [{ field: 'querystring.q', message }],
  })

/** Splits on white space, keeping "quoted values" (also after `op:`) together. */
export function tokenize(q: string): string[] {
  const out: string[] = []
  const re = /(?:[^\s"]+:)?"[^"]*"?|\S+/g
  for (const m of q.matchAll(re)) {
    out.push(m[0])
    if (out.length > MAX_TOKENS) throw invalid(`use at most ${MAX_TOKENS} terms`)
  }
  return out
}

const unquote = (v: string) => v.replace(/^"/, '').replace(/"$/, '')

function parseDay(op: string, v: string): number {
  const m = /^(\d{4})[-/](\d{2})[-/](\d{2})$/.exec(v)
  const t = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : Number.NaN
  if (!m || Number.isNaN(t) || new Date(t).getUTCDate() !== Number(m[3]))
    throw invalid(`${op}: needs a date as YYYY-MM-DD, not ${JSON.stringify(v)}`)
  return t
}

export function parseQuery(q: string): MailQuery {
  const out: MailQuery = {
    words: [],
    from: [],
    to: [],
    subject: [],
    has_attachment: null,
    before: null,
    after: null,
    in: [],
    unread: null,
    starred: null,
  }
  const free: string[] = []
  for (const token of tokenize(q.normalize('NFC'))) {
    const colon = token.indexOf(':')
    const op = colon > 0 && !token.startsWith('"') ? token.slice(0, colon).toLowerCase() : ''
    const value = unquote(token.slice(colon + 1)).trim()
    const known = ['from', 'to', 'subject', 'has', 'is', 'before', 'after', 'in'].includes(op)
    if (!known) {
      free.push(unquote(token))
      continue
    }
    if (value === '') throw invalid(`${op}: needs a value`)
    if (value.length > MAX_VALUE) throw invalid(`${op}: values are at most ${MAX_VALUE} characters`)
    switch (op) {
      case 'from':
      case 'to':
      case 'subject':
        out[op].push(value.toLowerCase())
        break
      case 'in':
        out.in.push(value)
        break
      case 'has':
        if (!/^attachments?$/i.test(value)) throw invalid(`has: knows only "attachment", not ${value}`)
        out.has_attachment = true
        break
      case 'is': {
        const v = value.toLowerCase()
        if (v === 'unread' || v === 'read') out.unread = v === 'unread'
        else if (v === 'starred' || v === 'unstarred' || v === 'flagged') out.starred = v !== 'unstarred'
        else throw invalid(`is: knows unread, read, starred and unstarred, not ${value}`)
        break
      }
      case 'before':
        out.before = parseDay(op, value)
        break
      case 'after':
        out.after = parseDay(op, value)
        break
    }
  }
  out.words = queryWords(free.join(' '))
  return out
}

/** A LIKE pattern matching `text` anywhere, with its wildcards escaped (ESCAPE '\'). */
export function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
}

const like = (column: RawBuilder<unknown>, text: string) =>
  sql<boolean>`lower(${column}) LIKE ${containsPattern(text)} ESCAPE '\\'`

const hasKeyword = (keyword: string) =>
  sql<boolean>`EXISTS (SELECT 1 FROM message_keywords mk WHERE mk.message_id = m.id AND mk.keyword = ${keyword})`

/** In a folder: the folder ids are resolved (and authorised) by the caller. */
export const inFolder = (folderId: string) =>
  sql<boolean>`EXISTS (SELECT 1 FROM folder_messages fmq WHERE fmq.message_id = m.id AND fmq.folder_id = ${folderId})`

export const notInFolders = (folderIds: string[]) =>
  folderIds.length === 0
    ? sql<boolean>`1 = 1`
    : sql<boolean>`NOT EXISTS (SELECT 1 FROM folder_messages fmq WHERE fmq.message_id = m.id AND fmq.folder_id IN (${sql.join(folderIds)}))`

export const unreadCondition = (unread: boolean) =>
  unread ? sql<boolean>`NOT ${hasKeyword(SEEN)}` : hasKeyword(SEEN)

/** The conditions of a parsed query, except `in:` (which needs folder lookups). */
export function queryConditions(dialect: DialectName, q: MailQuery): RawBuilder<boolean>[] {
  const c: RawBuilder<boolean>[] = []
  if (q.words.length > 0) c.push(matchCondition(dialect, q.words))
  for (const v of q.from)
    c.push(
      sql<boolean>`(${like(sql`coalesce(m.from_address, '')`, v)} OR ${like(sql`coalesce(m.from_name, '')`, v)})`,
    )
  for (const v of q.to) c.push(sql<boolean>`(${like(sql`m.to_json`, v)} OR ${like(sql`m.cc_json`, v)})`)
  for (const v of q.subject) c.push(like(sql`m.subject`, v))
  if (q.has_attachment) c.push(sql<boolean>`m.has_attachments = 1`)
  if (q.before !== null) c.push(sql<boolean>`m.received_at < ${q.before}`)
  if (q.after !== null) c.push(sql<boolean>`m.received_at >= ${q.after}`)
  if (q.unread !== null) c.push(unreadCondition(q.unread))
  if (q.starred !== null) c.push(q.starred ? hasKeyword(FLAGGED) : sql<boolean>`NOT ${hasKeyword(FLAGGED)}`)
  return c
}
