// Opaque cursors of the list routes: base64url of the sort key of the last row returned
// (a time and an id). Lists sort newest first with the id as tie-breaker, so a cursor names
// one position exactly and rows inserted meanwhile never shift a page.
// Invariant: a cursor is decoded strictly (shape and types); anything else is INVALID_CURSOR.

import { type RawBuilder, sql } from 'kysely'
import { ServiceError } from '../errors.ts'

export interface CursorKey {
  t: number
  id: string
}

export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify([key.t, key.id])).toString('base64url')
}

export function decodeCursor(cursor: string | undefined): CursorKey | null {
  if (cursor === undefined || cursor === '') return null
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (
      Array.isArray(v) &&
      v.length === 2 &&
      Number.isSafeInteger(v[0]) &&
      typeof v[1] === 'string' &&
      v[1].length <= 64
    )
      return { t: v[0] as number, id: v[1] }
  } catch {}
  throw new ServiceError('invalid', 'INVALID_CURSOR', 'The cursor is not one this API returned.', {
    details: [{ field: 'querystring.cursor', message: 'is not a valid cursor' }],
  })
}

export interface Page<T> {
  data: T[]
  next_cursor: string | null
}

/** Page size: default 50, at most 200. */
export const pageSize = (limit: number | undefined) => Math.min(Math.max(limit ?? 50, 1), 200)

/**
 * The rows after the cursor's row in a newest-first list ordered by (time, id) descending:
 * `time < t OR (time = t AND id < id)`. Columns as the query names them ('created_at', 'e.id').
 */
export function olderThan(after: CursorKey, timeColumn: string, idColumn: string): RawBuilder<boolean> {
  const t = sql.ref(timeColumn)
  const id = sql.ref(idColumn)
  return sql<boolean>`(${t} < ${after.t} OR (${t} = ${after.t} AND ${id} < ${after.id}))`
}

/** One page of rows fetched with `limit + 1`, and the cursor of the next page (by created_at, id). */
export function pageOf<R extends { created_at: number | string; id: string }>(
  rows: R[],
  limit: number,
): { page: R[]; next_cursor: string | null } {
  const page = rows.slice(0, limit)
  const last = page.at(-1)
  return {
    page,
    next_cursor:
      rows.length > limit && last ? encodeCursor({ t: Number(last.created_at), id: last.id }) : null,
  }
}
