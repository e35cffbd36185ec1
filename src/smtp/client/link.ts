// The byte stream of one outbound SMTP connection: commands out, whole replies in (read one at a
// time, each with its own timeout), the TLS upgrade (STARTTLS or implicit), and the close. It
// knows nothing of SMTP states: the session writes commands and reads the replies it expects.
// Invariants:
// - The socket comes connected from the connect guard; the link never connects anything, and
//   tls.connect only wraps that socket (servername is given explicitly, never looked up).
// - Replies that arrived before the connection closed can still be read; once they are used up
//   every read fails with the LinkError that ended the link. Unread replies are never dropped,
//   except at the TLS upgrade: everything received before the handshake is forgotten
//   (RFC 3207 6, the STARTTLS response injection).
// - A timeout or a protocol error ends the link (the socket is destroyed): the conversation
//   cannot be put back in step, so the session above never reuses it.
// - The transcript goes to the log at trace level ({c} client lines, {s} server replies);
//   callers pass a redacted form for lines carrying credentials, and message text is never logged.

import type { Socket } from 'node:net'
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls'
import type { Logger } from '../../log/logger.ts'
import { type Reply, ReplyParser, ReplyProtocolError } from './reply.ts'

export type LinkErrorKind = 'closed' | 'timeout' | 'protocol' | 'tls'

/** Why the link stopped working: the server closed it, it timed out, it spoke garbage, or TLS failed. */
export class LinkError extends Error {
  readonly kind: LinkErrorKind

  constructor(kind: LinkErrorKind, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'LinkError'
    this.kind = kind
  }
}

/** After our side is ended, how long the server has to close its own before the socket is destroyed. */
const END_GRACE_MS = 2000

interface Waiter {
  what: string
  resolve: (r: Reply) => void
  reject: (e: LinkError) => void
  timer: NodeJS.Timeout
}

export class Link {
  socket: Socket
  private readonly log: Logger
  private readonly tracing: boolean
  private readonly parser = new ReplyParser()
  private replies: Reply[] = []
  private waiter: Waiter | null = null
  private failure: LinkError | null = null
  private socketClosed = false
  private closeWaiters: (() => void)[] = []
  /** Called once when the link stops working (closed, error, timeout). */
  onDown: (() => void) | null = null

  constructor(socket: Socket, log: Logger) {
    this.socket = socket
    this.log = log
    this.tracing = log.isLevelEnabled('trace')
    socket.setNoDelay(true)
    this.attach(socket)
  }

  /** True until the connection closed, failed or timed out. */
  get up(): boolean {
    return this.failure === null
  }

  /** Why the link is down; null while it is up. */
  get error(): LinkError | null {
    return this.failure
  }

  get tlsSocket(): TLSSocket | null {
    return 'encrypted' in this.socket ? (this.socket as TLSSocket) : null
  }

  private readonly onData = (chunk: Buffer): void => {
    let got: Reply[]
    try {
      got = this.parser.feed(chunk)
    } catch (err) {
      const message = err instanceof ReplyProtocolError ? err.message : 'unreadable reply'
      this.fail(new LinkError('protocol', `protocol error: ${message}`, err))
      return
    }
    for (const r of got) {
      if (this.tracing) this.log.trace({ s: `${r.code} ${r.lines.join(' / ')}`.slice(0, 1024) })
      this.replies.push(r)
    }
    this.deliver()
  }

  private readonly onError = (err: Error): void => {
    this.log.debug({ err }, 'SMTP client socket error')
    const code = (err as NodeJS.ErrnoException).code
    this.fail(new LinkError('closed', `connection failed: ${code ? `${code} ` : ''}${err.message}`, err))
  }

  private readonly onEnd = (): void => {
    this.fail(new LinkError('closed', 'connection closed by the server'))
  }

  private readonly onClose = (): void => {
    this.socketClosed = true
    this.fail(new LinkError('closed', 'connection closed'))
    for (const w of this.closeWaiters.splice(0)) w()
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onData)
    socket.on('error', this.onError)
    socket.on('end', this.onEnd)
    socket.on('close', this.onClose)
  }

  private detach(socket: Socket): void {
    socket.off('data', this.onData)
    socket.off('error', this.onError)
    socket.off('end', this.onEnd)
    socket.off('close', this.onClose)
  }

  /** Marks the link down (first reason wins), fails a pending read, and destroys the socket. */
  fail(err: LinkError): void {
    if (this.failure) return
    this.failure = err
    this.deliver()
    if (!this.socket.destroyed) {
      // A server that ends its side has said all it will; anything else is broken for good.
      if (err.kind === 'closed') this.socket.end()
      else this.socket.destroy()
    }
    this.onDown?.()
  }

  private deliver(): void {
    const w = this.waiter
    if (!w) return
    const r = this.replies.shift()
    if (r) {
      this.waiter = null
      clearTimeout(w.timer)
      w.resolve(r)
    } else if (this.failure) {
      this.waiter = null
      clearTimeout(w.timer)
      const f = this.failure
      w.reject(
        f.kind === 'timeout'
          ? f
          : new LinkError(f.kind, `${f.message} (waiting for the reply to ${w.what})`, f),
      )
    }
  }

  /** Writes a command line (CRLF added). `logAs` replaces it in the transcript (credentials). */
  command(line: string, logAs?: string): void {
    if (this.tracing) this.log.trace({ c: logAs ?? line })
    this.write(Buffer.from(`${line}\r\n`, 'utf8'))
  }

  /** Writes several command lines in one go (a PIPELINING group, RFC 2920). */
  commands(lines: readonly string[]): void {
    if (this.tracing) for (const line of lines) this.log.trace({ c: line })
    this.write(lines.map((line) => Buffer.from(`${line}\r\n`, 'utf8')))
  }

  /** Writes raw bytes (message text); writes after the link went down are dropped. */
  write(data: Buffer | readonly Buffer[]): void {
    if (this.failure || this.socket.destroyed) return
    if (Buffer.isBuffer(data)) {
      this.socket.write(data)
      return
    }
    this.socket.cork()
    for (const b of data) this.socket.write(b)
    this.socket.uncork()
  }

  /** The next reply. Rejects with a LinkError when the link is down or no reply came in time. */
  read(timeoutMs: number, what: string): Promise<Reply> {
    if (this.waiter) return Promise.reject(new Error('Link.read: a read is already pending'))
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null
        const err = new LinkError('timeout', `no reply to ${what} within ${timeoutMs} ms`)
        reject(err)
        this.fail(err)
      }, timeoutMs)
      this.waiter = { what, resolve, reject, timer }
      this.deliver()
    })
  }

  /**
   * Wraps the socket in TLS (after STARTTLS's 220, or at once for implicit TLS) and resolves when
   * the handshake is done. Everything received before it is discarded. Throws LinkError 'tls'.
   */
  async startTls(opts: ConnectionOptions, timeoutMs: number): Promise<TLSSocket> {
    if (this.failure) throw this.failure
    this.replies = []
    this.parser.reset()
    const plain = this.socket
    this.detach(plain)
    plain.on('error', () => {}) // the TLS socket reports its errors; this one must not throw
    const secure = tlsConnect({ ...opts, socket: plain })
    this.socket = secure
    this.attach(secure)
    await new Promise<void>((resolve, reject) => {
      const done = (err: Error | null): void => {
        clearTimeout(timer)
        secure.off('secureConnect', ok)
        secure.off('error', bad)
        secure.off('close', closed)
        if (err) reject(err)
        else resolve()
      }
      const ok = (): void => done(null)
      const bad = (err: Error): void =>
        done(new LinkError('tls', `TLS handshake failed: ${err.message}`, err))
      const closed = (): void => done(new LinkError('tls', 'TLS handshake failed: connection closed'))
      const timer = setTimeout(
        () => done(new LinkError('tls', `TLS handshake not done within ${timeoutMs} ms`)),
        timeoutMs,
      )
      secure.once('secureConnect', ok)
      secure.once('error', bad)
      secure.once('close', closed)
    }).catch((err: LinkError) => {
      this.failure ??= err
      this.socket.destroy()
      this.onDown?.()
      throw err
    })
    return secure
  }

  /** Ends our side and waits (briefly) for the server to close; then the socket is destroyed. */
  async end(): Promise<void> {
    this.fail(new LinkError('closed', 'connection closed by us'))
    if (this.socketClosed) return
    if (!this.socket.writableEnded) this.socket.end()
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, END_GRACE_MS)
      timer.unref()
      this.closeWaiters.push(() => {
        clearTimeout(timer)
        resolve()
      })
    })
    this.socket.destroy()
  }

  /** Destroys the socket at once. */
  destroy(err?: LinkError): void {
    this.fail(err ?? new LinkError('closed', 'connection closed by us'))
    this.socket.destroy()
  }
}
