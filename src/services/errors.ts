// The one error type services throw. Its kind says whose fault it is and whether retrying can
// help; each protocol edge maps kinds once (http/problem.ts, later smtp and imap replies).
// Invariant: `message` is safe to show to the caller for every kind except 'internal'.

export type ServiceErrorKind =
  | 'invalid' // the caller's input is wrong (400/422, SMTP 5xx syntax)
  | 'unauthenticated' // no or bad credentials (401)
  | 'forbidden' // authenticated, not allowed (403)
  | 'not_found' // no such thing in the caller's tenant (404)
  | 'conflict' // the state forbids it (409)
  | 'too_large' // the input is over a size limit (413)
  | 'rate_limited' // slow down (429)
  | 'temporary' // try again later (503, SMTP 4xx)
  | 'internal' // our bug or an unexpected failure (500; message hidden)

export interface ServiceErrorOptions {
  cause?: unknown
  /** Field-level problems for 'invalid': [{ field, message }]. */
  details?: { field: string; message: string }[]
  /** Seconds after which a retry may succeed (rate_limited, temporary). */
  retryAfter?: number
}

export class ServiceError extends Error {
  override name = 'ServiceError'
  readonly kind: ServiceErrorKind
  /** Stable SCREAMING_SNAKE code, e.g. JOB_NOT_FOUND. */
  readonly code: string
  readonly details: { field: string; message: string }[] | undefined
  readonly retryAfter: number | undefined
  constructor(kind: ServiceErrorKind, code: string, message: string, opts: ServiceErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.kind = kind
    this.code = code
    this.details = opts.details
    this.retryAfter = opts.retryAfter
  }
}
