// The outbound SMTP client: the Transport of src/services/outbound/transport.ts. open() connects
// through the connect guard, reads the greeting, says EHLO (HELO when refused), upgrades with
// STARTTLS or starts in TLS, and authenticates; the session it returns runs mail transactions
// (MAIL, RCPT..., DATA, pipelined when offered) until it is closed or the connection breaks.
// Written on a small client of its own (link.ts, reply.ts, envelope.ts) rather than nodemailer's
// SMTPConnection, which sends one NOTIFY/ORCPT for all recipients, asks for SMTPUTF8 only for
// addresses, hides each reply from the trace and keeps one idle timeout for every step.
// Invariants:
// - The socket comes from deps.connectGuard.connect with the target's IP; nothing here resolves
//   a name. target.host is only the TLS servername (unless it is an IP) and the name the
//   certificate is checked against.
// - Every server reply is traced ('reply'), and so are the connection, the TLS parameters and
//   each failure ('error'). Credentials never reach a trace or a log line.
// - Failures of open() are TransportErrors: a 5xx to the greeting, EHLO and HELO is permanent,
//   the guard's refusal is permanent (phase 'connect'); everything else is temporary, AUTH
//   failures included (a wrong password should not bounce the queue). A timeout anywhere has
//   phase 'timeout'.
// - TLS: 'require' never sends mail without TLS; 'starttls' uses it when offered and, without
//   certificate verification, retries once in plain text on a new connection when the handshake
//   fails (as Postfix does for opportunistic TLS). AUTH is only sent over TLS, or when the
//   caller chose tls 'none'.
// - send() gives one outcome per recipient in order, or rejects with a temporary TransportError
//   (phase 'transaction', or 'timeout') when the connection breaks before the last reply that
//   decides them; a connection that broke or timed out is never used again (usable is false).
//   A 421 reply decides every recipient not yet refused, and the connection is dropped.
// - Transactions on one session run one after another; each but the first starts with RSET.

import { isIP } from 'node:net'
import { type ConnectionOptions, checkServerIdentity, rootCertificates } from 'node:tls'
import type { Logger } from '../../log/logger.ts'
import { type ConnectGuard, ConnectRefusedError } from '../../net/connect-guard.ts'
import {
  type DeliveryTarget,
  type OutgoingTransaction,
  type RecipientOutcome,
  type SessionOptions,
  type SmtpSession,
  type TraceStep,
  type TransactionResult,
  type Transport,
  TransportError,
} from '../../services/outbound/transport.ts'
import { systemClock } from '../../time/clock.ts'
import { planEnvelope } from './envelope.ts'
import { Link, LinkError } from './link.ts'
import { describeReply, type Reply } from './reply.ts'

export interface SmtpTransportTimeouts {
  /** TCP connection set up (the connect guard's timeout). */
  connectMs: number
  /** From connected (or TLS up, for implicit TLS) to the greeting. */
  greetingMs: number
  /** Each command's reply, and a TLS handshake. */
  commandMs: number
  /** From the first octet of the message to the reply at its end. */
  dataMs: number
}

export interface SmtpTransportDeps {
  connectGuard: ConnectGuard
  logger: Logger
  clock?: { now(): number }
  timeouts: SmtpTransportTimeouts
  /** An extra CA trusted (besides the system's) when verifyCertificate is set (tests). */
  ca?: string | Buffer
}

type Phase = TransportError['phase']

/** QUIT's reply is waited for at most this long, whatever commandMs says. */
const QUIT_WAIT_MS = 5000

export function createSmtpTransport(deps: SmtpTransportDeps): Transport {
  const clock = deps.clock ?? systemClock

  async function connect(target: DeliveryTarget, opts: SessionOptions, log: Logger): Promise<Link> {
    const trace = traceFn(opts, clock)
    const socket = await deps.connectGuard.connect({
      host: target.ip,
      port: target.port,
      timeoutMs: deps.timeouts.connectMs,
    })
    trace('connect', { ip: target.ip, port: target.port, host: target.host })
    log.debug('SMTP client connected')
    return new Link(socket, log)
  }

  async function attempt(target: DeliveryTarget, opts: SessionOptions, plainOnly: boolean) {
    const log = deps.logger.child({ smtpOut: target.ip, port: target.port, mx: target.host })
    let link: Link
    try {
      link = await connect(target, opts, log)
    } catch (err) {
      throw toTransportError(err, 'connect')
    }
    const session = new ClientSession({ deps, clock, target, opts, link, log })
    await session.handshake(plainOnly)
    return session
  }

  return {
    async open(target, opts) {
      const trace = traceFn(opts, clock)
      try {
        try {
          return await attempt(target, opts, false)
        } catch (err) {
          const fallback =
            err instanceof HandshakeFailed && opts.tls === 'starttls' && !opts.verifyCertificate
          if (!fallback) throw err
          trace('error', { message: `${err.message}; retrying without TLS`, phase: 'tls' })
          deps.logger.info(
            { mx: target.host, ip: target.ip, err: err.message },
            'STARTTLS failed, retrying without TLS',
          )
          return await attempt(target, opts, true)
        }
      } catch (err) {
        const e = toTransportError(err, 'connect')
        trace('error', { message: e.message, phase: e.phase })
        throw e
      }
    },
  }
}

function traceFn(opts: SessionOptions, clock: { now(): number }) {
  return (kind: TraceStep['kind'], detail: Record<string, unknown>): void => {
    opts.onTrace?.({ kind, at: clock.now(), detail })
  }
}

/** The TLS handshake of STARTTLS failed (opportunistic TLS may go on without it). */
class HandshakeFailed extends TransportError {}

function replyError(what: string, phase: Phase, r: Reply): TransportError {
  return new TransportError(`${what}: ${describeReply(r)}`, {
    temporary: r.code < 500,
    phase,
    code: r.code,
    enhanced: r.enhanced,
  })
}

function toTransportError(err: unknown, phase: Phase): TransportError {
  if (err instanceof TransportError) return err
  if (err instanceof ConnectRefusedError)
    return new TransportError(err.message, { temporary: false, phase: 'connect' })
  if (err instanceof LinkError) {
    if (err.kind === 'timeout') return new TransportError(err.message, { temporary: true, phase: 'timeout' })
    if (err.kind === 'tls') return new TransportError(err.message, { temporary: true, phase: 'tls' })
    return new TransportError(err.message, { temporary: true, phase })
  }
  const e = err instanceof Error ? err : new Error(String(err))
  const code = (e as NodeJS.ErrnoException).code
  if (code === 'ETIMEDOUT') return new TransportError(e.message, { temporary: true, phase: 'timeout' })
  return new TransportError(code && !e.message.includes(code) ? `${code}: ${e.message}` : e.message, {
    temporary: true,
    phase,
  })
}

const positive = (r: Reply): boolean => r.code >= 200 && r.code < 300

const outcome = (address: string, r: Reply): RecipientOutcome => ({
  address,
  code: r.code,
  enhanced: r.enhanced,
  message: r.message,
})

interface SessionDeps {
  deps: SmtpTransportDeps
  clock: { now(): number }
  target: DeliveryTarget
  opts: SessionOptions
  link: Link
  log: Logger
}

class ClientSession implements SmtpSession {
  readonly target: DeliveryTarget
  tls: SmtpSession['tls'] = null
  private readonly link: Link
  private readonly deps: SmtpTransportDeps
  private readonly opts: SessionOptions
  private readonly log: Logger
  private readonly trace: (kind: TraceStep['kind'], detail: Record<string, unknown>) => void
  private readonly helo: string
  /** EHLO keywords (upper case) and their parameters; empty after HELO. */
  private ext = new Map<string, string>()
  /** The server may hold transaction state: RSET before the next MAIL. */
  private needsReset = false
  private busy = false
  private closed = false
  private queue: Promise<unknown> = Promise.resolve()

  constructor(d: SessionDeps) {
    this.target = d.target
    this.link = d.link
    this.deps = d.deps
    this.opts = d.opts
    this.log = d.log
    this.trace = traceFn(d.opts, d.clock)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may reach a command line
    this.helo = d.opts.helo.replace(/[\s\x00-\x1f\x7f]+/g, '') || 'localhost'
  }

  get usable(): boolean {
    return this.link.up && !this.closed
  }

  offers(keyword: string): boolean {
    return this.ext.has(keyword)
  }

  private traceReply(command: string, r: Reply, extra?: Record<string, unknown>): void {
    this.trace('reply', { command, ...extra, code: r.code, enhanced: r.enhanced, message: r.message })
  }

  /** Reads the next reply and traces it under `command`. */
  private async read(command: string, timeoutMs: number, extra?: Record<string, unknown>): Promise<Reply> {
    const r = await this.link.read(timeoutMs, command)
    this.traceReply(command, r, extra)
    return r
  }

  /** Sends a command line and reads its reply. `logAs` stands in for a line carrying credentials. */
  private async cmd(line: string, command: string, logAs?: string): Promise<Reply> {
    this.link.command(line, logAs)
    return this.read(command, this.deps.timeouts.commandMs)
  }

  // ---- open ----------------------------------------------------------------------------------

  /** Greeting, EHLO, TLS and AUTH; on failure the connection is closed and a TransportError thrown. */
  async handshake(plainOnly: boolean): Promise<void> {
    const { opts } = this
    let phase: Phase = 'greeting'
    try {
      if (opts.tls === 'implicit') {
        phase = 'tls'
        await this.startTls()
        phase = 'greeting'
      }
      const greeting = await this.read('greeting', this.deps.timeouts.greetingMs)
      if (greeting.code !== 220) throw replyError('greeting refused', 'greeting', greeting)
      phase = 'ehlo'
      await this.hello()
      if (!this.tls && (opts.tls === 'starttls' || opts.tls === 'require') && !plainOnly) {
        phase = 'tls'
        await this.starttls()
        phase = 'ehlo'
        if (this.tls) await this.hello()
      }
      if (opts.auth) {
        phase = 'auth'
        await this.authenticate(opts.auth)
      }
      this.log.debug(
        { tls: this.tls?.protocol ?? null, esmtp: this.ext.size > 0 },
        'SMTP client session open',
      )
    } catch (err) {
      const e = toTransportError(err, phase)
      this.log.info({ phase: e.phase, err: e.message }, 'SMTP client session failed to open')
      if (this.link.up && e.code !== null) this.link.command('QUIT')
      void this.link.end()
      throw e
    }
  }

  private async hello(): Promise<void> {
    const ehlo = await this.cmd(`EHLO ${this.helo}`, 'EHLO')
    this.ext = new Map()
    if (positive(ehlo)) {
      for (const line of ehlo.lines.slice(1)) {
        const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/.exec(line.trim())
        if (m) this.ext.set(m[1]!.toUpperCase(), (m[2] ?? '').trim())
      }
      return
    }
    if (ehlo.code === 421) throw replyError('EHLO refused', 'ehlo', ehlo)
    let helo: Reply
    try {
      helo = await this.cmd(`HELO ${this.helo}`, 'HELO')
    } catch (err) {
      // A server that hangs up after refusing EHLO has given its answer.
      if (err instanceof LinkError && err.kind === 'closed') throw replyError('EHLO refused', 'ehlo', ehlo)
      throw err
    }
    if (!positive(helo)) throw replyError('HELO refused', 'ehlo', helo)
  }

  private async starttls(): Promise<void> {
    const required = this.opts.tls === 'require'
    if (!this.ext.has('STARTTLS')) {
      if (required) {
        throw new TransportError('TLS is required but the server does not offer STARTTLS', {
          temporary: true,
          phase: 'tls',
        })
      }
      return
    }
    const r = await this.cmd('STARTTLS', 'STARTTLS')
    if (r.code !== 220) {
      if (required || r.code === 421) throw replyError('STARTTLS refused', 'tls', r)
      this.log.debug({ code: r.code }, 'STARTTLS refused, going on without TLS')
      return
    }
    try {
      await this.startTls()
    } catch (err) {
      if (err instanceof LinkError && err.kind === 'tls') {
        throw new HandshakeFailed(err.message, { temporary: true, phase: 'tls' })
      }
      throw err
    }
  }

  private async startTls(): Promise<void> {
    const { target, opts, deps } = this
    const options: ConnectionOptions = {
      rejectUnauthorized: opts.verifyCertificate,
      checkServerIdentity: (_name, cert) => checkServerIdentity(target.host, cert),
    }
    if (!isIP(target.host)) options.servername = target.host
    // The extra CA also when not verifying: `authorized` then still tells (MTA-STS testing reports it).
    if (deps.ca) options.ca = [...rootCertificates, deps.ca.toString()]
    const socket = await this.link.startTls(options, deps.timeouts.commandMs)
    const tls = { protocol: socket.getProtocol() ?? 'unknown', cipher: socket.getCipher()?.name ?? 'unknown' }
    const verifyError = socket.authorized ? null : String(socket.authorizationError ?? 'not verified')
    this.tls = { ...tls, verified: socket.authorized, verifyError }
    this.trace('tls', {
      ...tls,
      authorized: socket.authorized,
      ...(verifyError ? { verify_error: verifyError } : {}),
    })
    this.log.debug({ ...tls, authorized: socket.authorized }, 'SMTP client TLS up')
  }

  private async authenticate(auth: { user: string; pass: string }): Promise<void> {
    const fail = (message: string, r?: Reply): TransportError =>
      r ? replyErrorTemporary(message, r) : new TransportError(message, { temporary: true, phase: 'auth' })
    if (!this.tls && this.opts.tls !== 'none') throw fail('refusing to send credentials without TLS')
    const offered = this.ext.get('AUTH')
    if (offered === undefined) throw fail('the server does not offer AUTH')
    const mechanisms = offered.toUpperCase().split(/[\s=]+/)
    const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64')
    let r: Reply
    if (mechanisms.includes('PLAIN')) {
      r = await this.cmd(`AUTH PLAIN ${b64(`\0${auth.user}\0${auth.pass}`)}`, 'AUTH', 'AUTH PLAIN [redacted]')
    } else if (mechanisms.includes('LOGIN')) {
      r = await this.cmd('AUTH LOGIN', 'AUTH')
      if (r.code === 334) r = await this.cmd(b64(auth.user), 'AUTH', '[redacted]')
      if (r.code === 334) r = await this.cmd(b64(auth.pass), 'AUTH', '[redacted]')
    } else {
      throw fail(
        `no AUTH mechanism in common (the server offers ${offered || 'none'}; PLAIN and LOGIN are known)`,
      )
    }
    if (r.code !== 235) throw fail('authentication failed', r)
  }

  // ---- transactions --------------------------------------------------------------------------

  send(tx: OutgoingTransaction): Promise<TransactionResult> {
    const run = (): Promise<TransactionResult> => this.transaction(tx)
    const p = this.queue.then(run, run)
    this.queue = p.catch(() => {})
    return p
  }

  private async transaction(tx: OutgoingTransaction): Promise<TransactionResult> {
    if (!this.usable) {
      throw new TransportError('the connection is closed', { temporary: true, phase: 'transaction' })
    }
    this.busy = true
    try {
      return await this.run(tx)
    } catch (err) {
      this.link.destroy()
      const e = toTransportError(err, 'transaction')
      this.trace('error', { message: e.message, phase: e.phase })
      this.log.info({ phase: e.phase, err: e.message }, 'SMTP client transaction failed')
      throw e
    } finally {
      this.busy = false
    }
  }

  private async run(tx: OutgoingTransaction): Promise<TransactionResult> {
    const t = this.deps.timeouts
    const plan = planEnvelope(tx, this.ext)
    const outcomes: (RecipientOutcome | null)[] = plan.rcpts.map((r) =>
      r.refused ? outcome(r.address, r.refused) : null,
    )
    for (const r of plan.rcpts) {
      if (r.refused)
        this.trace('error', { message: describeReply(r.refused), phase: 'transaction', address: r.address })
    }
    const live = plan.rcpts.flatMap((r, i) =>
      r.line === null ? [] : [{ i, address: r.address, line: r.line }],
    )
    const result = (): TransactionResult => ({ recipients: outcomes.map((o) => o!), dsn: plan.dsn })
    if (live.length === 0) return result()

    if (this.needsReset) {
      const r = await this.cmd('RSET', 'RSET')
      if (!positive(r)) {
        throw new TransportError(`RSET refused: ${describeReply(r)}`, {
          temporary: true,
          phase: 'transaction',
          code: r.code,
          enhanced: r.enhanced,
        })
      }
    }
    this.needsReset = true

    // MAIL, then RCPT for each recipient: in one group with PIPELINING (RFC 2920 3.1), one
    // at a time without. DATA waits for the RCPT replies, so it is never sent for nobody.
    const pipelining = this.ext.has('PIPELINING')
    this.link.commands(pipelining ? [plan.mail, ...live.map((r) => r.line)] : [plan.mail])
    const mail = await this.read('MAIL', t.commandMs, { address: tx.mailFrom })
    if (!positive(mail)) {
      for (const r of live) outcomes[r.i] = outcome(r.address, mail)
      if (mail.code === 421) this.link.destroy()
      else if (pipelining) await this.drain(live)
      return result()
    }

    const accepted: { i: number; address: string }[] = []
    for (const r of live) {
      if (!pipelining) this.link.command(r.line)
      const reply = await this.read('RCPT', t.commandMs, { address: r.address })
      if (reply.code === 421) {
        this.link.destroy()
        for (const o of live) outcomes[o.i] ??= outcome(o.address, reply)
        return result()
      }
      if (positive(reply)) accepted.push(r)
      else outcomes[r.i] = outcome(r.address, reply)
    }

    if (accepted.length === 0) {
      const r = await this.cmd('RSET', 'RSET').catch(() => null)
      if (r && positive(r)) this.needsReset = false
      return result()
    }

    const data = await this.cmd('DATA', 'DATA')
    if (data.code !== 354) {
      for (const r of accepted) outcomes[r.i] = outcome(r.address, data)
      if (data.code === 421) this.link.destroy()
      return result()
    }
    this.link.write(plan.data)
    const end = await this.read('DATA-END', t.dataMs)
    for (const r of accepted) outcomes[r.i] = outcome(r.address, end)
    if (end.code === 421) this.link.destroy()
    return result()
  }

  /** Reads the pipelined RCPT replies after a refused MAIL; a broken connection is only noted. */
  private async drain(live: readonly { address: string }[]): Promise<void> {
    try {
      for (const r of live) await this.read('RCPT', this.deps.timeouts.commandMs, { address: r.address })
    } catch {
      this.link.destroy()
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
      if (this.busy) this.link.destroy()
      else if (this.link.up) {
        this.link.command('QUIT')
        await this.read('QUIT', Math.min(this.deps.timeouts.commandMs, QUIT_WAIT_MS))
      }
    } catch {
      // the connection goes away either way
    }
    await this.link.end()
  }
}

function replyErrorTemporary(what: string, r: Reply): TransportError {
  return new TransportError(`${what}: ${describeReply(r)}`, {
    temporary: true,
    phase: 'auth',
    code: r.code,
    enhanced: r.enhanced,
  })
}
