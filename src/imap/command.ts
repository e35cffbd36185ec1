// The shape of one IMAP command module (src/imap/commands/<verb>.ts) and the errors commands
// throw. A command parses its own arguments from the reader, does its work through the
// session, writes untagged responses, and returns what the tagged OK says; failures are
// thrown: ImapSyntaxError (protocol/parser.ts) becomes BAD, ImapNo becomes NO, a
// ServiceError becomes NO with its code mapped (replies.ts).

import type { ArgReader } from './protocol/parser.ts'
import type { ImapSession, SessionState } from './session.ts'

export interface CommandCall {
  tag: string
  /** The verb, uppercased (without UID). */
  name: string
  /** Sent as UID <name>. */
  uid: boolean
  /** Positioned after the verb (at the SP before the first argument, if any). */
  args: ArgReader
}

export interface Done {
  /** A response code for the tagged OK, e.g. `READ-WRITE` or `APPENDUID 1 2`. */
  code?: string
  text?: string
  /** The command wrote its own tagged response (STARTTLS must, before the handshake). */
  answered?: boolean
}

export interface ImapCommand {
  states: readonly SessionState[]
  /** Whether the UID form exists (FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE). */
  uidForm?: boolean
  /**
   * False when EXPUNGE responses must wait until after this command (FETCH, STORE and
   * SEARCH by sequence number: RFC 9051 7.5.1). Default true.
   */
  expungeOk?: (call: CommandCall) => boolean
  run(s: ImapSession, call: CommandCall): Promise<Done | undefined>
  /**
   * Called when a literal is announced in this command before its bytes are read: return a
   * stream handler to take the literal as it arrives (APPEND's message), null to buffer it as
   * usual, or throw to refuse the command (the literal is then not read, or read and dropped).
   */
  literal?(s: ImapSession, call: CommandCall, literal: LiteralAnnounced): Promise<LiteralHandler | null>
}

export interface LiteralAnnounced {
  size: number
  nonSync: boolean
  binary: boolean
  /** Offset in the command where the announcement starts; call.args reads up to it. */
  at: number
}

/** A literal the command takes as it arrives. */
export interface LiteralStream {
  size: number
  /** The next piece, or null after the last byte. Throws when the client went away. */
  next(): Promise<Buffer | null>
}

export interface LiteralHandler {
  /**
   * Consumes the literal, then reads the rest of the command with `rest()` (the arguments after
   * the literal), and returns what the tagged OK says.
   */
  take(literal: LiteralStream, rest: () => Promise<ArgReader | null>): Promise<Done | undefined>
}

/** A NO response: the command was understood and failed. */
export class ImapNo extends Error {
  readonly code: string | null
  constructor(text: string, code: string | null = null) {
    super(text)
    this.code = code
  }
}

export const AUTHENTICATED: readonly SessionState[] = ['authenticated', 'selected']
export const SELECTED: readonly SessionState[] = ['selected']
export const ANY: readonly SessionState[] = ['not-authenticated', 'authenticated', 'selected']
export const NOT_AUTHENTICATED: readonly SessionState[] = ['not-authenticated']
