// Opaque cursors of the list routes: base64url of the sort key of the last row returned
// (a time and an id). Lists sort newest first with the id as tie-breaker, so a cursor names
// one position exactly and rows inserted meanwhile never shift a page.
// Invariant: a cursor is decoded strictly (shape and types); anything else is INVALID_CURSOR.

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
