// The full-text index of messages, the one dialect-specific part of search: SQLite FTS5
// (messages_fts, rowid = messages.rowid) or a PostgreSQL tsvector column. Callers index a
// message in the transaction that stores it, remove it with the message, and search with a
// plain list of words (each must match; prefix matching on the last word).
// Invariant: words are passed as bound parameters, never spliced into SQL or FTS syntax.

import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely'
import type { DialectName } from './db.ts'
import type { Database } from './schema.ts'

type Executor = Kysely<Database> | Transaction<Database>

export interface IndexedText {
  subject: string
  /** Sender and recipient names and addresses. */
  addresses: string
  /** Plain-text body (HTML already reduced to text), bounded by the caller. */
  body: string
}

export async function indexMessage(
  ex: Executor,
  dialect: DialectName,
  messageId: string,
  text: IndexedText,
): Promise<void> {
  if (dialect === 'postgres') {
    await sql`UPDATE messages SET search =
      setweight(to_tsvector('simple', ${text.subject}), 'A') ||
      setweight(to_tsvector('simple', ${text.addresses}), 'B') ||
      setweight(to_tsvector('simple', ${text.body}), 'C')
      WHERE id = ${messageId}`.execute(ex)
    return
  }
  await sql`INSERT INTO messages_fts (rowid, subject, addresses, body)
    SELECT rowid, ${text.subject}, ${text.addresses}, ${text.body} FROM messages WHERE id = ${messageId}`.execute(
    ex,
  )
}

/**
 * Indexing as part of the statement that inserts the message, where the dialect allows:
 * PostgreSQL's tsvector goes into the row itself (spread these values into the insert);
 * SQLite's FTS table still needs indexInserted after the insert. One statement fewer on
 * PostgreSQL than insert + indexMessage.
 */
export function searchOnInsert(dialect: DialectName, text: IndexedText): { search?: RawBuilder<unknown> } {
  if (dialect !== 'postgres') return {}
  return {
    search: sql`setweight(to_tsvector('simple', ${text.subject}), 'A') ||
      setweight(to_tsvector('simple', ${text.addresses}), 'B') ||
      setweight(to_tsvector('simple', ${text.body}), 'C')`,
  }
}

/** The rest of the indexing of a message inserted with searchOnInsert's values. */
export async function indexInserted(
  ex: Executor,
  dialect: DialectName,
  messageId: string,
  text: IndexedText,
): Promise<void> {
  if (dialect !== 'postgres') await indexMessage(ex, dialect, messageId, text)
}

/** Removes a message from the index (call before deleting its row). */
export async function unindexMessage(ex: Executor, dialect: DialectName, messageId: string): Promise<void> {
  if (dialect === 'postgres') return // the column goes with the row
  await sql`DELETE FROM messages_fts WHERE rowid = (SELECT rowid FROM messages WHERE id = ${messageId})`.execute(
    ex,
  )
}

/** Words of a free-text query: letters and digits only (no query syntax reaches the engine). */
export function queryWords(text: string): string[] {
  return (
    text
      .normalize('NFKC')
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? []
  ).slice(0, 16)
}

/**
 * A SQL condition on `messages` (aliased `m`) that is true when every word matches; the last
 * word also matches as a prefix. Empty word lists match everything.
 */
export function matchCondition(dialect: DialectName, words: string[]) {
  if (words.length === 0) return sql<boolean>`1 = 1`
  if (dialect === 'postgres') {
    const terms = words.map((w, i) => (i === words.length - 1 ? `${w}:*` : w)).join(' & ')
    return sql<boolean>`m.search @@ to_tsquery('simple', ${terms})`
  }
  // FTS5: each word as a quoted string; the last with a prefix star.
  const expr = words.map((w, i) => `"${w}"${i === words.length - 1 ? '*' : ''}`).join(' ')
  return sql<boolean>`m.rowid IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ${expr})`
}
