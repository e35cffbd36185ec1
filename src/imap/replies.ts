// How failures become IMAP responses: the one place a service's error code turns into an IMAP
// response code (RFC 5530) and an error nobody expected turns into NO [SERVERBUG] without
// leaking its message.

import { ServiceError } from '../services/errors.ts'
import { ImapNo } from './command.ts'
import { ImapSyntaxError } from './protocol/parser.ts'

/** Service error codes with an IMAP response code of their own. */
const CODES: Record<string, string> = {
  FOLDER_NOT_FOUND: 'NONEXISTENT',
  FOLDER_EXISTS: 'ALREADYEXISTS',
  OVER_QUOTA: 'OVERQUOTA',
  ROLE_FOLDER: 'CANNOT',
  INVALID_FOLDER_NAME: 'CANNOT',
}

const KIND_CODES: Record<string, string> = {
  invalid: 'CANNOT',
  forbidden: 'NOPERM',
  not_found: 'NONEXISTENT',
  conflict: 'CANNOT',
  rate_limited: 'LIMIT',
  temporary: 'UNAVAILABLE',
}

export type Failure = { status: 'BAD' | 'NO'; code: string | null; text: string; unexpected: boolean }

export function failureOf(err: unknown): Failure {
  if (err instanceof ImapSyntaxError)
    return { status: 'BAD', code: null, text: err.message, unexpected: false }
  if (err instanceof ImapNo) return { status: 'NO', code: err.code, text: err.message, unexpected: false }
  if (err instanceof ServiceError && err.kind !== 'internal')
    return {
      status: 'NO',
      code: CODES[err.code] ?? KIND_CODES[err.kind] ?? null,
      text: err.message,
      unexpected: false,
    }
  return { status: 'NO', code: 'SERVERBUG', text: 'Internal error; the server logged it.', unexpected: true }
}
