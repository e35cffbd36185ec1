// The settings the SMTP server reads: the smtp.* config keys it uses, so `config.smtp` can be
// passed as is and tests can pass a plain object (with timeouts below the config minimums).

import type { Config } from '../config/schema.ts'

export type SmtpSettings = Pick<
  Config['smtp'],
  | 'banner'
  | 'max_message_bytes'
  | 'max_header_bytes'
  | 'max_recipients'
  | 'max_line_bytes'
  | 'max_connections'
  | 'max_connections_per_ip'
  | 'max_errors'
  | 'max_unknown_recipients'
  | 'max_transactions'
  | 'command_timeout_ms'
  | 'data_timeout_ms'
  | 'greeting_delay_ms'
>

/** The greeting text after the host name when smtp.banner is unset. */
export const DEFAULT_BANNER = 'Postern ESMTP'
