// The byte stream of one SMTP connection: buffered input read as command lines, DATA text or
// BDAT chunks; queued replies; the command and data timeouts; the STARTTLS upgrade. It knows
// nothing of SMTP states: the session asks it for the next piece of input.
// Invariants:
// - Input is read only when the session asks for more (pull): while the session is busy
//   (a handler call, a pipelined backlog) chunks queue up to HIGH_WATER, then the socket is
//   paused, so a fast client is held back by TCP rather than by memory. While the client does
//   not read its replies (the socket needs draining) no more input is read either.
// - Replies are queued and written in one write when the session next waits for input, so a
//   pipelined group gets its replies in order in as few packets as possible (RFC 2920 3.2);
//   nothing is written out of order because there is one queue and one writer.
// - Lines end only at CRLF (RFC 5321 2.3.8): a bare CR or LF stays inside the line. A line
//   longer than maxLineBytes (CRLF included) is skipped up to its CRLF and reported once.
// - Two timers per connection, made once and re-armed with refresh(): the command timeout runs
//   from when the session starts waiting for a command line (partial lines do not re-arm it),
//   the data timeout from the start of the message text or chunk to its end.
// - STARTTLS: input received after the STARTTLS line and before the handshake is discarded
//   (RFC 3207 4.2, CVE-2011-0411); the socket is paused before the 220 goes out, so the client's
//   TLS handshake stays in the socket and reaches the TLS layer.

import type { Socket } from 'node:net'
import type { SecureContextOptions } from 'node:tls'
import type { Logger } from '../log/logger.ts'
import { serverTlsSocket, tlsInfo } from '../tls/server-socket.ts'

/** Why input stopped: the client closed, a timeout, or the server is shutting down. */
export type Interruption = 'eof' | 'timeout' | 'shutdown'

export type LineInput = { line: Buffer } | { tooLong: true } | { end: Interruption }

/** Receives the octets of DATA text or a BDAT chunk; returns how many it used (DATA stops at its end). */
export interface TextSink {
  feed(chunk: Buffer): number
  readonly done: boolean
  /** When the sink's own writes are behind, a promise to wait for before feeding more. */
  drained?(): Promise<void> | null
}

export interface ConnectionOptions {
  commandTimeoutMs: number
  dataTimeoutMs: number
  maxLineBytes: number
  log: Logger
  /** Called once when the socket has closed. */
  onClose: () => void
}

/** Input queued beyond this pauses the socket until the session catches up. */
const HIGH_WATER = 256 * 1024
/** After we end our side, how long the client has to close its own before the socket is destroyed. */
const CLOSE_GRACE_MS = 5000
const CRLF = Buffer.from('\r\n')
const CR = 13

type WaitKind = 'command' | 'data' | 'other'

export class Connection {
  socket: Socket
  private readonly opts: ConnectionOptions
  private chunks: Buffer[] = []
  private buffered = 0
  private out: string[] = []
  private wake: (() => void) | null = null
  private waiting: WaitKind | null = null
  private eof = false
  private ending = false
  private discardingLine = false
  private shutdownAsked = false
  private commandExpired = false
  private dataClock = false
  private dataExpired = false
  private readonly commandTimer: NodeJS.Timeout
  private readonly dataTimer: NodeJS.Timeout
  private graceTimer: NodeJS.Timeout | null = null
  closed = false

  constructor(socket: Socket, opts: ConnectionOptions) {
    this.socket = socket
    this.opts = opts
    // Made once; refresh() re-arms them (a cleared timer cannot be refreshed, so they are only
    // cleared at close), and their callbacks act only in the phase they time.
    this.commandTimer = setTimeout(this.onCommandTimer, opts.commandTimeoutMs).unref()
    this.dataTimer = setTimeout(this.onDataTimer, opts.dataTimeoutMs).unref()
    this.attach(socket)
  }

  /** close() of the server was called: idle waits end with 'shutdown'. */
  get shuttingDown(): boolean {
    return this.shutdownAsked
  }

  requestShutdown(): void {
    this.shutdownAsked = true
    if (this.waiting === 'command' || this.waiting === 'other') this.signal()
  }

  // ---- output ---------------------------------------------------------------------------------

  /** Queues reply text; written at the next wait for input, or by end(). */
  send(text: string): void {
    if (!this.ending && !this.closed) this.out.push(text)
  }

  private flush(): void {
    if (this.out.length === 0) return
    const text = this.out.length === 1 ? this.out[0]! : this.out.join('')
    this.out = []
    if (!this.ending && !this.closed) this.socket.write(text)
  }

  /** Writes what is queued and closes our side; the socket is destroyed if the client lingers. */
  end(): void {
    this.flush()
    if (this.ending || this.closed) return
    this.ending = true
    this.chunks = []
    this.buffered = 0
    this.stopTimers()
    this.socket.end()
    this.socket.resume() // read (and drop) until the client closes its side
    this.graceTimer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref()
  }

  destroy(): void {
    this.socket.destroy()
  }

  // ---- input ----------------------------------------------------------------------------------

  /** The next command line (without CRLF). */
  async readLine(): Promise<LineInput> {
    let armed = false
    for (;;) {
      const line = this.takeLine()
      if (line) return line
      if (this.closed || this.eof) return { end: 'eof' }
      if (this.shutdownAsked) return { end: 'shutdown' }
      if (!armed) {
        // RFC 5321 4.5.3.2.7: the server's timeout while awaiting the next command
        this.commandExpired = false
        this.commandTimer.refresh()
        armed = true
      }
      await this.wait('command')
      if (this.commandExpired) return { end: 'timeout' }
    }
  }

  /** Feeds DATA text to `sink` until it is done (the end-of-data line); the rest stays queued. */
  async readText(sink: TextSink): Promise<'done' | Interruption> {
    for (;;) {
      while (this.chunks.length > 0) {
        const chunk = this.chunks[0]!
        this.consume(sink.feed(chunk))
        if (sink.done) return 'done'
        const behind = sink.drained?.()
        if (behind) await behind
      }
      if (this.dataExpired) return 'timeout'
      if (this.closed || this.eof) return 'eof'
      await this.wait('data')
    }
  }

  /** Feeds exactly `size` octets to `sink` (a BDAT chunk), or drops them when sink is null. */
  async readChunk(size: number, sink: TextSink | null): Promise<'done' | Interruption> {
    let left = size
    for (;;) {
      while (left > 0 && this.chunks.length > 0) {
        const chunk = this.chunks[0]!
        const take = Math.min(left, chunk.length)
        sink?.feed(take === chunk.length ? chunk : chunk.subarray(0, take))
        this.consume(take)
        left -= take
        const behind = sink?.drained?.()
        if (behind) await behind
      }
      if (left === 0) return 'done'
      if (this.dataExpired) return 'timeout'
      if (this.closed || this.eof) return 'eof'
      await this.wait('data')
    }
  }

  /** Starts the data timeout: the text that follows must be complete within data_timeout_ms. */
  startDataClock(): void {
    this.dataExpired = false
    this.dataClock = true
    this.dataTimer.refresh()
  }

  stopDataClock(): void {
    this.dataClock = false
  }

  /** Waits `ms` for the client to stay silent (the greeting pause). */
  async quietFor(ms: number): Promise<'quiet' | 'talked' | 'eof' | 'shutdown'> {
    let elapsed = false
    const timer = setTimeout(() => {
      elapsed = true
      this.signal()
    }, ms)
    try {
      for (;;) {
        if (this.buffered > 0) return 'talked'
        if (this.closed || this.eof) return 'eof'
        if (this.shutdownAsked) return 'shutdown'
        if (elapsed) return 'quiet'
        await this.wait('other')
      }
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Replaces the socket with a TLS server socket over it, after writing what is queued (the
   * 220). Returns the negotiated protocol and cipher, or null when the handshake failed (the
   * socket is then destroyed).
   */
  async upgradeToTls(options: SecureContextOptions): Promise<{ protocol: string; cipher: string } | null> {
    const raw = this.socket
    raw.pause()
    // RFC 3207 4.2 / CVE-2011-0411: what was pipelined after STARTTLS is not taken as commands.
    this.chunks = []
    this.buffered = 0
    this.discardingLine = false
    const ready = this.out.join('')
    this.out = []
    await new Promise<void>((resolve) => raw.write(ready, () => resolve()))
    if (this.closed) return null
    raw.off('data', this.onData)
    raw.off('end', this.onEnd)
    const { tls, secured } = serverTlsSocket(raw, options, this.opts.commandTimeoutMs)
    this.socket = tls
    this.attach(tls)
    if (!(await secured) || this.closed) {
      this.opts.log.debug('TLS handshake failed')
      tls.destroy()
      return null
    }
    return tlsInfo(tls)
  }

  // ---- internals ------------------------------------------------------------------------------

  private attach(socket: Socket): void {
    socket.on('data', this.onData)
    socket.on('end', this.onEnd)
    socket.on('error', this.onError)
    socket.on('close', this.onClose)
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.ending) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
    if (this.buffered > HIGH_WATER) this.socket.pause() // resumed by wait()
    this.signal()
  }

  private readonly onEnd = (): void => {
    this.eof = true
    this.signal()
  }

  private readonly onError = (err: Error): void => {
    this.opts.log.debug({ err }, 'socket error')
  }

  private readonly onClose = (): void => {
    if (this.closed) return
    this.closed = true
    this.eof = true
    this.stopTimers()
    if (this.graceTimer) clearTimeout(this.graceTimer)
    this.signal()
    this.opts.onClose()
  }

  private readonly onCommandTimer = (): void => {
    if (this.waiting !== 'command') return
    this.commandExpired = true
    this.signal()
  }

  private readonly onDataTimer = (): void => {
    if (!this.dataClock) return
    this.dataExpired = true
    if (this.waiting === 'data') this.signal()
  }

  private readonly signal = (): void => {
    const wake = this.wake
    this.wake = null
    wake?.()
  }

  private stopTimers(): void {
    clearTimeout(this.commandTimer)
    clearTimeout(this.dataTimer)
    this.dataClock = false
  }

  /** Flushes replies, lets input flow (unless the client must read first), and sleeps until an event. */
  private async wait(kind: WaitKind): Promise<void> {
    this.flush()
    if (this.closed) return
    if (this.socket.writableNeedDrain) this.socket.once('drain', this.signal)
    else if (this.socket.isPaused()) this.socket.resume()
    this.waiting = kind
    await new Promise<void>((resolve) => {
      this.wake = resolve
    })
    this.waiting = null
    this.socket.off('drain', this.signal)
  }

  /** Drops `n` octets from the front of the queue. */
  private consume(n: number): void {
    if (n <= 0) return
    this.buffered -= n
    const head = this.chunks[0]!
    if (n >= head.length) this.chunks.shift()
    else this.chunks[0] = head.subarray(n)
  }

  /** A complete line from the queue, a too-long report, or null when more input is needed. */
  private takeLine(): LineInput | null {
    const max = this.opts.maxLineBytes
    for (;;) {
      const head = this.chunks[0]
      if (!head) return null
      const at = head.indexOf(CRLF)
      if (at >= 0) {
        const line = head.subarray(0, at)
        this.consume(at + 2)
        if (this.discardingLine || at + 2 > max) {
          this.discardingLine = false
          return { tooLong: true } // RFC 5321 4.5.3.1.4: 512 octets by default; ours is configured
        }
        return { line }
      }
      if (this.discardingLine || head.length >= max) {
        // Too long already: drop it, keeping a final CR that may start the CRLF.
        this.discardingLine = true
        const keep = head[head.length - 1] === CR ? 1 : 0
        if (head.length > keep) {
          this.consume(head.length - keep)
          continue
        }
      }
      if (this.chunks.length < 2) return null
      // The line continues in the next chunk: join the two (bounded by max, or 1 octet when discarding).
      const next = this.chunks[1]!
      this.chunks.splice(0, 2, Buffer.concat([head, next]))
    }
  }
}
