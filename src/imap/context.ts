// What the IMAP server is given: the mail store's context, the mail-client log-in, its limits
// and our identity. Built by src/roles/imap.ts; the server reaches nothing else.

import type { SecureContextOptions } from 'node:tls'
import type { Logger } from '../log/logger.ts'
import type { MailLoginContext } from '../services/mail-login/login.ts'
import type { MessagesContext } from '../services/messages/context.ts'

export interface ImapSettings {
  max_connections: number
  max_connections_per_ip: number
  idle_timeout_ms: number
  login_timeout_ms: number
  max_line_bytes: number
  max_command_bytes: number
  max_errors: number
  /** APPENDLIMIT: the largest message a client may upload (the SMTP size limit). */
  max_message_bytes: number
}

export interface ImapContext {
  mail: MessagesContext
  login: MailLoginContext
  settings: ImapSettings
  /** Our name in the greeting and BYE. */
  hostname: string
  /** TLS for STARTTLS and port 993, read at each use; null: no certificate (no STARTTLS). */
  tls: () => SecureContextOptions | null
  /** True for client addresses allowed to log in without TLS (auth.plaintext_allowed_from). */
  plaintextAllowed: (ip: string) => boolean
  log: Logger
  sleep: (ms: number) => Promise<void>
}
