// One SMTP session's state machine (RFC 5321 4.1.4 ordering, RFC 3030 for BDAT): reads one
// command at a time from its Connection, parses it, runs the step for it (steps/*.ts) and
// queues the reply. Owns the session's state and per-session limits.
// States: greeting -> no HELO -> ready (HELO/EHLO seen) -> in a transaction (MAIL accepted,
// recipients collected, possibly BDAT chunks) -> back to ready after the message, RSET, EHLO or
// STARTTLS (which also forgets HELO, RFC 3207 4.2).
// Invariants:
// - One command at a time: each step, and each handler call inside it, finishes before the next
//   line is read, so replies go out in command order and handler calls never overlap.
// - Every command gets exactly one reply, except that a limit reached after a reply adds a 421
//   and the session ends (as Postfix does for its error limit).
// - The log carries the transcript at trace level: client lines (AUTH without its arguments),
//   server replies; never message text.

import type { SecureContextOptions } from 'node:tls'
import type { Logger } from '../log/logger.ts'
import type { Connection, Interruption } from './connection.ts'
import type { SessionInfo, SmtpHandler, SmtpReply } from './handler.ts'
import type { LargeMessages } from './large-messages.ts'
import { type Command, decodeLine, parseCommand } from './protocol/commands.ts'
import type { MessageLimits } from './protocol/data-reader.ts'
import {
  COMMAND_ERRORS,
  formatReply,
  fromHandler,
  REPLIES,
  type Reply,
  withDetail,
} from './protocol/replies.ts'
import { DEFAULT_BANNER, type SmtpSettings } from './settings.ts'
import type { StepSession, Transaction } from './step-session.ts'
import { auth } from './steps/auth.ts'
import { bdat } from './steps/bdat.ts'
import { data } from './steps/data.ts'
import { ehlo } from './steps/hello.ts'
import { mail } from './steps/mail.ts'
import { rcpt } from './steps/rcpt.ts'
import { starttls } from './steps/starttls.ts'

export interface SessionDeps {
  conn: Connection
  handler: SmtpHandler
  settings: SmtpSettings
  hostname: string
  tls: () => SecureContextOptions | null
  log: Logger
  info: SessionInfo
  large?: LargeMessages | null
}

type Step<K extends Command['kind']> = (
  s: StepSession,
  cmd: Extract<Command, { kind: K }>,
) => void | Promise<void>

/** The step for each command. */
const STEPS: { [K in Command['kind']]: Step<K> } = {
  EHLO: ehlo,
  HELO: ehlo,
  MAIL: mail,
  RCPT: rcpt,
  DATA: data,
  BDAT: bdat,
  STARTTLS: starttls,
  RSET: (s) => {
    s.tx = null // RFC 5321 4.1.1.5
    s.reply(REPLIES.resetOk)
  },
  NOOP: (s) => s.reply(REPLIES.ok), // RFC 5321 4.1.1.9
  QUIT: (s) => s.end(REPLIES.bye(s.hostname)), // RFC 5321 4.1.1.10
  VRFY: (s) => s.reply(REPLIES.cannotVrfy), // RFC 5321 3.5.3: no user lookup, no harvesting
  HELP: (s) => s.reply(REPLIES.help),
  AUTH: auth, // refused unless the handler has an auth policy (submission); never on the MX
}

export class Session implements StepSession {
  readonly conn: Connection
  readonly handler: SmtpHandler
  readonly settings: SmtpSettings
  readonly hostname: string
  readonly log: Logger
  readonly info: SessionInfo
  readonly limits: MessageLimits
  private readonly tlsOptions: () => SecureContextOptions | null
  readonly large: LargeMessages | null
  private readonly trace: boolean
  private current: Transaction | null = null
  /** Bad commands so far (max_errors). */
  errors = 0
  /** RCPTs the handler refused with 5xx (max_unknown_recipients). */
  unknownRecipients = 0
  /** Transactions started (max_transactions). */
  transactions = 0
  /** The session is over: no more input is read. */
  ended = false

  constructor(deps: SessionDeps) {
    this.conn = deps.conn
    this.handler = deps.handler
    this.settings = deps.settings
    this.hostname = deps.hostname
    this.log = deps.log
    this.info = deps.info
    this.tlsOptions = deps.tls
    this.trace = deps.log.isLevelEnabled('trace')
    this.large = deps.large ?? null
    this.limits = {
      maxMessageBytes: deps.settings.max_message_bytes,
      maxHeaderBytes: deps.settings.max_header_bytes,
      maxLineBytes: deps.settings.max_line_bytes,
    }
  }

  get tx(): Transaction | null {
    return this.current
  }

  set tx(next: Transaction | null) {
    // A transaction replaced (RSET, MAIL, EHLO, STARTTLS, the end) drops its BDAT text.
    const chunks = this.current?.chunks
    if (chunks && chunks !== next?.chunks) void chunks.abandon()
    this.current = next
  }

  /** Runs the session to its end; never rejects. */
  async run(): Promise<void> {
    try {
      if (!(await this.greet())) return
      while (!this.ended) {
        if (this.conn.shuttingDown) return this.end(REPLIES.shuttingDown(this.hostname))
        const input = await this.conn.readLine()
        if ('end' in input) return this.interrupted(input.end)
        if ('tooLong' in input) {
          if (this.trace) this.log.trace({ c: '[line too long]' })
          this.refuse(REPLIES.lineTooLong)
          continue
        }
        await this.execute(input.line)
      }
    } catch (err) {
      this.log.error({ err }, 'SMTP session failed')
      this.ended = true
      this.conn.destroy()
    } finally {
      this.tx = null // a BDAT transaction cut off by the end of the session leaves no spool file
    }
  }

  private async greet(): Promise<boolean> {
    // onConnect runs during the greeting pause.
    const connect = this.ask('onConnect', () => this.handler.onConnect(this.snapshot()))
    const pause = this.settings.greeting_delay_ms
    if (pause > 0) {
      const quiet = await this.conn.quietFor(pause)
      if (quiet === 'talked') {
        this.log.debug('client talked before the greeting')
        this.end(REPLIES.earlyTalker)
        return false
      }
      if (quiet !== 'quiet') {
        this.interrupted(quiet)
        return false
      }
    }
    const answer = await connect
    if (answer !== null) {
      // A refusal is sent instead of the greeting (RFC 5321 3.1: typically 554 or 421).
      this.end(answer === undefined ? REPLIES.connectFailed(this.hostname) : this.fromHandler(answer))
      return false
    }
    if (this.conn.shuttingDown) {
      this.end(REPLIES.shuttingDown(this.hostname))
      return false
    }
    this.reply(REPLIES.greeting(this.hostname, this.settings.banner ?? DEFAULT_BANNER)) // RFC 5321 4.3.1
    return true
  }

  private async execute(raw: Buffer): Promise<void> {
    const line = decodeLine(raw)
    if (this.trace) this.log.trace({ c: forLog(typeof line === 'string' ? line : raw.toString('latin1')) })
    if (typeof line !== 'string') return this.refuse(COMMAND_ERRORS[line.error])
    const cmd = parseCommand(line, { smtputf8: this.tx?.from.smtputf8 ?? false })
    if (cmd.kind === 'ERROR') {
      if (cmd.error === 'NON_SMTP') return this.end(REPLIES.nonSmtp)
      return this.refuse(withDetail(COMMAND_ERRORS[cmd.error], cmd.detail))
    }
    await (STEPS[cmd.kind] as Step<typeof cmd.kind>)(this, cmd)
  }

  // ---- what steps use -------------------------------------------------------------------------

  /** Queues a reply. */
  reply(reply: Reply): void {
    const text = formatReply(reply)
    if (this.trace) this.log.trace({ s: text.trimEnd() })
    this.conn.send(text)
  }

  /** Replies to a bad command, and ends the session when it was one too many (max_errors). */
  refuse(reply: Reply): void {
    this.reply(reply)
    this.errors++
    if (this.errors >= this.settings.max_errors) {
      this.log.info({ errors: this.errors }, 'too many errors, closing')
      this.end(REPLIES.tooManyErrors(this.hostname))
    }
  }

  /** Sends a last reply (if any) and closes the connection. */
  end(reply?: Reply): void {
    if (reply) this.reply(reply)
    this.ended = true
    this.conn.end()
  }

  /** Input stopped: the client left, a timeout (421 4.4.2), or server shutdown (421 4.3.2). */
  interrupted(why: Interruption): void {
    if (why === 'timeout') this.log.info('timeout, closing')
    if (why === 'timeout')
      this.end(REPLIES.timeout(this.hostname)) // RFC 5321 4.5.3.2
    else if (why === 'shutdown') this.end(REPLIES.shuttingDown(this.hostname))
    else this.end()
  }

  /** Calls the handler; undefined when it threw (logged). */
  async ask<T>(step: string, call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call()
    } catch (err) {
      this.log.error({ err, step }, 'SMTP handler failed')
      return undefined
    }
  }

  /** What to send for a handler's answer: `accept` for null, 451 4.3.0 when it threw or is unusable. */
  answer(answer: SmtpReply | null | undefined, accept: Reply): Reply {
    if (answer === undefined) return REPLIES.localError
    if (answer === null) return accept
    return this.fromHandler(answer)
  }

  private fromHandler(answer: SmtpReply): Reply {
    const reply = fromHandler(answer)
    if (reply) return reply
    this.log.error({ code: answer?.code }, 'SMTP handler answered an unusable reply code')
    return REPLIES.localError
  }

  /** A copy of the session facts for a handler call. */
  snapshot(): SessionInfo {
    return { ...this.info, tls: this.info.tls && { ...this.info.tls } }
  }

  /** TLS options when STARTTLS can be offered now. */
  tlsAvailable(): SecureContextOptions | null {
    return this.info.tls ? null : this.tlsOptions()
  }

  /** ESMTP extensions for EHLO, in this order (RFC 2920, 6152, 6531, 1870, 2034, 3030, 3461, 3207, 8689). */
  extensions(): string[] {
    const list = [
      'PIPELINING',
      '8BITMIME',
      'SMTPUTF8',
      `SIZE ${this.settings.max_message_bytes}`,
      'ENHANCEDSTATUSCODES',
      'CHUNKING',
      'DSN',
    ]
    if (this.tlsAvailable()) list.push('STARTTLS')
    // RFC 8689 2: REQUIRETLS only in a TLS session (after STARTTLS, or on implicit TLS).
    if (this.info.tls) list.push('REQUIRETLS')
    // RFC 4954: AUTH only where the policy allows it now (after TLS, or from a trusted address).
    if (this.handler.auth?.offered(this.snapshot()) && !this.info.auth) list.push('AUTH PLAIN LOGIN')
    return list
  }

  /** The session's state after STARTTLS: nothing learnt before it is kept (RFC 3207 4.2). */
  forgetAll(): void {
    this.tx = null
    this.info.helo = null
    this.info.esmtp = false
    this.info.auth = null
  }
}

/** A client line as the transcript shows it: AUTH arguments are secrets, long lines are cut. */
function forLog(line: string): string {
  const auth = /^auth(?: +([A-Za-z0-9_-]{1,20}))?/i.exec(line)
  if (auth) return `AUTH ${auth[1]?.toUpperCase() ?? ''} [redacted]`.replace('  ', ' ')
  return line.length > 512 ? `${line.slice(0, 512)}...` : line
}
