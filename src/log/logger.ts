// Logging: one pino root logger per process, child loggers per connection, job and request.
// Secrets never reach a log line: credentials in headers, passwords, tokens and keys are
// redacted by path here, in the one place every logger is made.

import { type DestinationStream, type Logger, pino } from 'pino'

export type { Logger }

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["x-setup-token"]',
  'res.headers["set-cookie"]',
  'password',
  '*.password',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'api_key',
  '*.api_key',
  'database.url',
  '*.database.url',
]

export interface LoggerOptions {
  level: string
  /** Where lines go; standard output when omitted. */
  destination?: DestinationStream
  base?: Record<string, unknown>
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: opts.base ?? { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination,
  )
}
