// What a step (steps/*.ts) sees of its session: the state it may read and change and the calls
// it may make. session.ts implements it; steps depend only on this file, so the session and its
// steps do not import each other.

import type { SecureContextOptions } from 'node:tls'
import type { Logger } from '../log/logger.ts'
import type { Connection, Interruption } from './connection.ts'
import type { MailFrom, RcptTo, SessionInfo, SmtpHandler, SmtpReply } from './handler.ts'
import type { LargeMessages } from './large-messages.ts'
import type { MessageLimits, MessageReader } from './protocol/data-reader.ts'
import type { Reply } from './protocol/replies.ts'
import type { SmtpSettings } from './settings.ts'

/** A mail transaction, from an accepted MAIL to the answer for its message (or RSET). */
export interface Transaction {
  from: MailFrom
  /** Accepted recipients. */
  to: RcptTo[]
  /** The message being assembled from BDAT chunks; null until the first BDAT (RFC 3030). */
  chunks: MessageReader | null
  /** A BDAT chunk was refused: the rest of the pipelined chunks are read and refused too. */
  failed: boolean
}

export interface StepSession {
  readonly conn: Connection
  readonly handler: SmtpHandler
  readonly settings: SmtpSettings
  readonly hostname: string
  readonly log: Logger
  readonly info: SessionInfo
  readonly limits: MessageLimits
  /** Spooling and delivery turns of large messages; null: every message is kept in memory. */
  readonly large: LargeMessages | null
  /** Setting it drops the BDAT text of the transaction it replaces (and its spool file). */
  tx: Transaction | null
  /** Bad commands so far (max_errors). */
  errors: number
  /** RCPTs the handler refused with 5xx (max_unknown_recipients). */
  unknownRecipients: number
  /** Transactions started (max_transactions). */
  transactions: number
  /** The session is over: no more input is read. */
  ended: boolean
  /** Queues a reply. */
  reply(reply: Reply): void
  /** Replies to a bad command, and ends the session when it was one too many (max_errors). */
  refuse(reply: Reply): void
  /** Sends a last reply (if any) and closes the connection. */
  end(reply?: Reply): void
  /** Input stopped: the client left, a timeout (421 4.4.2), or server shutdown (421 4.3.2). */
  interrupted(why: Interruption): void
  /** Calls the handler; undefined when it threw (logged). */
  ask<T>(step: string, call: () => Promise<T>): Promise<T | undefined>
  /** What to send for a handler's answer: `accept` for null, 451 4.3.0 when it threw or is unusable. */
  answer(answer: SmtpReply | null | undefined, accept: Reply): Reply
  /** A copy of the session facts for a handler call. */
  snapshot(): SessionInfo
  /** TLS options when STARTTLS can be offered now. */
  tlsAvailable(): SecureContextOptions | null
  /** ESMTP extensions for EHLO. */
  extensions(): string[]
  /** The session's state after STARTTLS: nothing learnt before it is kept (RFC 3207 4.2). */
  forgetAll(): void
}
