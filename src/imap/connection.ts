// One IMAP client's socket: writing responses with backpressure, the STARTTLS upgrade, the
// inactivity timer, and closing. It knows bytes, not commands (session.ts owns those).
// Invariants:
// - A client that stops reading cannot make us buffer without bound: writers await flush(),
//   which waits for 'drain' once the socket holds more than HIGH_WATER unsent bytes, and
//   the session stops reading input while it waits.
// - After upgradeToTls, nothing read before the handshake is kept (RFC 9051 6.2.1, the
//   STARTTLS command-injection defence: the caller drops its buffered input too).
// - Every socket has 'error' handled from the moment it exists; close runs once.

import type { Socket } from 'node:net'
import type { SecureContextOptions } from 'node:tls'
import type { Logger } from '../log/logger.ts'
import { serverTlsSocket, tlsInfo } from '../tls/server-socket.ts'

/** Unsent bytes above which writers wait for the client to read. */
export const HIGH_WATER = 256 * 1024

export interface ConnectionEvents {
  onData(chunk: Buffer): void
  onEnd(): void
  onClose(): void
}

export class ImapConnection {
  private socket: Socket
  private closed = false
  /** Our side was ended: nothing more is written. */
  private ended = false
  private timer: NodeJS.Timeout | null = null
  private timeoutMs = 0
  private onTimeout: (() => void) | null = null
  private readonly log: Logger
  private readonly events: ConnectionEvents
  /** Set once TLS is up (implicit on 993, or after STARTTLS). */
  tls: { protocol: string; cipher: string } | null

  constructor(
    socket: Socket,
    log: Logger,
    events: ConnectionEvents,
    tls: { protocol: string; cipher: string } | null,
  ) {
    this.socket = socket
    this.log = log
    this.events = events
    this.tls = tls
    this.attach(socket)
  }

  get isClosed(): boolean {
    return this.closed
  }

  write(data: Buffer | string): void {
    if (this.closed || this.ended) return
    this.socket.write(data)
  }

  /**
   * Holds writes in memory until flush() (one packet for a command's responses, not one per
   * line). Bounded: writers flush at least once per message they send.
   */
  cork(): void {
    if (!this.closed && this.socket.writableCorked === 0) this.socket.cork()
  }

  /** Sends what is held now, without waiting. */
  uncork(): void {
    while (this.socket.writableCorked > 0) this.socket.uncork()
  }

  /** Sends what is held and waits until the client has read enough (or the connection closed). */
  async flush(): Promise<void> {
    this.uncork()
    while (!this.closed && this.socket.writableLength > HIGH_WATER) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.socket.off('drain', done)
          this.socket.off('close', done)
          resolve()
        }
        this.socket.once('drain', done)
        this.socket.once('close', done)
      })
    }
  }

  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    if (!this.closed) this.socket.resume()
  }

  /** (Re)starts the inactivity timer: `onTimeout` runs after `ms` without input. */
  setIdleTimeout(ms: number, onTimeout: () => void): void {
    this.timeoutMs = ms
    this.onTimeout = onTimeout
    this.touch()
  }

  private touch(): void {
    if (this.timer) clearTimeout(this.timer)
    if (this.closed || !this.onTimeout) return
    const fire = this.onTimeout
    this.timer = setTimeout(fire, this.timeoutMs)
    this.timer.unref()
  }

  /** Writes what is pending, then replaces the socket with TLS over it; null when the handshake failed. */
  async upgradeToTls(
    options: SecureContextOptions,
    timeoutMs: number,
  ): Promise<{ protocol: string; cipher: string } | null> {
    const raw = this.socket
    this.uncork()
    raw.pause()
    raw.off('data', this.onDataBound)
    raw.off('end', this.onEndBound)
    await new Promise<void>((resolve) =>
      raw.writableLength === 0 ? resolve() : raw.once('drain', () => resolve()),
    )
    if (this.closed) return null
    const { tls, secured } = serverTlsSocket(raw, options, timeoutMs)
    this.socket = tls
    this.attach(tls)
    if (!(await secured) || this.closed) {
      this.log.debug('TLS handshake failed')
      tls.destroy()
      return null
    }
    this.tls = tlsInfo(tls)
    return this.tls
  }

  /** Sends what is queued and closes our side. */
  end(last?: string): void {
    if (this.closed || this.ended) return
    this.ended = true
    while (this.socket.writableCorked > 0) this.socket.uncork()
    if (last) this.socket.write(last)
    this.socket.end()
    const s = this.socket
    setTimeout(() => s.destroy(), 2000).unref()
  }

  destroy(): void {
    this.socket.destroy()
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onDataBound)
    socket.on('end', this.onEndBound)
    socket.on('error', this.onErrorBound)
    socket.on('close', this.onCloseBound)
  }

  private readonly onDataBound = (chunk: Buffer): void => {
    this.touch()
    this.events.onData(chunk)
  }

  private readonly onEndBound = (): void => this.events.onEnd()

  private readonly onErrorBound = (err: Error): void => {
    this.log.debug({ err }, 'IMAP socket error')
  }

  private readonly onCloseBound = (): void => {
    if (this.closed) return
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.events.onClose()
  }
}
