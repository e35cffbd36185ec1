// The SMTP listener: accepts sockets, applies the connection limits, gives each connection an
// id, a child logger and a Session, and shuts down gracefully. MX mode: no AUTH.
// Invariants:
// - Connection limits are checked before anything else runs for a socket: over max_connections
//   or max_connections_per_ip the client gets 421 4.7.0 instead of a greeting, and no handler
//   call is made.
// - `connections` counts sessions whose sockets are open; a session's slot (and its address's
//   slot) is freed when its socket closes, not when the session decides to end.
// - close(graceMs) stops accepting at once, answers 421 4.3.2 to idle sessions and to busy ones
//   at their next command, lets messages in flight finish, and destroys whatever is left when
//   the grace period runs out. It resolves when every socket is closed.
// - Every socket has an 'error' listener from the moment it is accepted.

import { randomBytes } from 'node:crypto'
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'
import type { SecureContextOptions } from 'node:tls'
import type { Logger } from '../log/logger.ts'
import { Connection } from './connection.ts'
import type { SessionInfo, SmtpHandler } from './handler.ts'
import { createLargeMessages, type LargeMessageOptions } from './large-messages.ts'
import { formatReply, REPLIES, type Reply } from './protocol/replies.ts'
import { Session } from './session.ts'
import type { SmtpSettings } from './settings.ts'

export type { SmtpSettings } from './settings.ts'

export interface SmtpServerOptions {
  handler: SmtpHandler
  settings: SmtpSettings
  /** Our name in the greeting, EHLO and 421 replies. */
  hostname: string
  /** TLS options for STARTTLS, read at each EHLO and STARTTLS; null: no STARTTLS offered. */
  tls: () => SecureContextOptions | null
  log: Logger
  /** Epoch milliseconds for SessionInfo.startedAt; Date.now when omitted. */
  now?: () => number
  /** Spool large messages to files and deliver a few at a time; omitted: all kept in memory. */
  large?: LargeMessageOptions
}

export interface SmtpServer {
  /** Binds and resolves with the bound port (port 0 picks one). */
  /** `implicitTls`: TLS from the first byte (port 465, RFC 8314), before the greeting. */
  listen(port: number, host: string, implicitTls?: boolean): Promise<number>
  /**
   * Stops accepting, answers 421 4.3.2 to idle sessions and to busy sessions at their next
   * command, waits up to `graceMs` for messages in flight, then destroys what is left.
   */
  close(graceMs: number): Promise<void>
  /** Open sessions. */
  readonly connections: number
}

/** After our side is ended, how long a refused client may take to close before it is destroyed. */
const REFUSED_GRACE_MS = 2000

export function createSmtpServer(opts: SmtpServerOptions): SmtpServer {
  const { handler, settings, hostname, log } = opts
  const now = opts.now ?? Date.now
  const large = opts.large ? createLargeMessages(opts.large) : null
  const sessions = new Set<Session>()
  const sockets = new Set<Socket>()
  const perAddress = new Map<string, number>()
  let closing = false
  let allClosed: (() => void) | null = null

  // allowHalfOpen: a client that sends QUIT and shuts down its side still gets the 221.
  const servers: Server[] = []

  function accept(socket: Socket, implicitTls: boolean): void {
    socket.on('error', (err) => log.debug({ err }, 'SMTP socket error'))
    sockets.add(socket)
    socket.once('close', () => {
      sockets.delete(socket)
      if (sockets.size === 0) allClosed?.()
    })
    const address = plainAddress(socket.remoteAddress)
    if (closing || !address) {
      socket.destroy()
      return
    }
    if (sessions.size >= settings.max_connections) {
      log.warn({ remote: address, connections: sessions.size }, 'SMTP connection limit reached')
      refuse(socket, REPLIES.tooManyConnections(hostname))
      return
    }
    const fromAddress = perAddress.get(address) ?? 0
    if (fromAddress >= settings.max_connections_per_ip) {
      log.info({ remote: address }, 'SMTP connection limit per address reached')
      refuse(socket, REPLIES.tooManyFromAddress(hostname))
      return
    }
    perAddress.set(address, fromAddress + 1)

    const id = `smtp_${randomBytes(12).toString('base64url')}`
    const clog = log.child({ cid: id })
    const info: SessionInfo = {
      id,
      remoteAddress: address,
      remotePort: socket.remotePort ?? 0,
      localAddress: plainAddress(socket.localAddress) ?? '',
      localPort: socket.localPort ?? 0,
      helo: null,
      esmtp: false,
      tls: null,
      startedAt: now(),
      auth: null,
    }
    const conn = new Connection(socket, {
      commandTimeoutMs: settings.command_timeout_ms,
      dataTimeoutMs: settings.data_timeout_ms,
      maxLineBytes: settings.max_line_bytes,
      log: clog,
      onClose: () => {
        sessions.delete(session)
        handler.onClose?.(info)
        const left = (perAddress.get(address) ?? 1) - 1
        if (left > 0) perAddress.set(address, left)
        else perAddress.delete(address)
        clog.debug('SMTP connection closed')
      },
    })
    const session = new Session({ conn, handler, settings, hostname, tls: opts.tls, log: clog, info, large })
    sessions.add(session)
    clog.debug({ remote: address, port: info.remotePort }, 'SMTP connection')
    if (!implicitTls) {
      void session.run()
      return
    }
    void (async () => {
      const options = opts.tls()
      const tls = options ? await conn.upgradeToTls(options) : null
      if (!tls) {
        conn.destroy()
        return
      }
      info.tls = tls
      await session.run()
    })()
  }

  function refuse(socket: Socket, reply: Reply): void {
    socket.end(formatReply(reply))
    socket.resume() // drop what the client sends until it closes
    setTimeout(() => socket.destroy(), REFUSED_GRACE_MS).unref()
  }

  return {
    listen(port, host, implicitTls = false) {
      const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) =>
        accept(socket, implicitTls),
      )
      server.on('error', (err) => log.error({ err }, 'SMTP listener error'))
      servers.push(server)
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          resolve((server.address() as AddressInfo).port)
        })
      })
    },

    async close(graceMs) {
      closing = true
      const stopped = Promise.all(
        servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
      )
      const drained = new Promise<void>((resolve) => {
        allClosed = resolve
        if (sockets.size === 0) resolve()
      })
      for (const session of sessions) session.conn.requestShutdown()
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), graceMs)
      })
      if ((await Promise.race([drained, late])) === 'late') {
        log.warn({ connections: sockets.size }, 'SMTP shutdown grace period over, closing connections')
        for (const session of sessions) session.conn.destroy() // the TLS socket after STARTTLS
        for (const socket of sockets) socket.destroy()
      }
      clearTimeout(timer)
      await drained
      await stopped
    },

    get connections() {
      return sessions.size
    },
  }
}

/** The client's address as written in logs and limits: IPv4-mapped IPv6 as plain IPv4. */
function plainAddress(address: string | undefined): string | null {
  if (!address) return null
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}
