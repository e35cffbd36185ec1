// The IMAP listeners: port 143 (STARTTLS) and 993 (implicit TLS) share one set of sessions, one
// connection limit (total and per client address) and one fan-out of store changes: a
// mail.changed note for a mailbox reaches every session of that mailbox in this process, so
// IDLE and NOOP see deliveries, API changes and other sessions' changes at once.
// Invariants: a refused connection gets one `* BYE` line and is closed; close() says BYE to
// every session and destroys what is left after the grace period.

import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'
import { ImapConnection } from './connection.ts'
import type { ImapContext } from './context.ts'
import { untaggedStatus } from './protocol/encoder.ts'
import { ImapSession } from './session.ts'

export interface ImapServer {
  /** Binds one listener; `tls` means implicit TLS (993). Resolves with the bound port. */
  listen(port: number, host: string, tls: boolean): Promise<number>
  close(graceMs: number): Promise<void>
  readonly connections: number
  /**
   * Tells the sessions of a mailbox that its mail changed (the change bus calls this). After
   * a UID reset (`what` = 'uids_reset') their UIDs mean nothing: they are closed with BYE.
   */
  mailChanged(mailboxId: string, what: unknown): void
}

const plainAddress = (a: string | undefined): string | null =>
  a ? (a.startsWith('::ffff:') ? a.slice(7) : a) : null

export function createImapServer(ctx: ImapContext): ImapServer {
  const { settings, log } = ctx
  const sessions = new Set<ImapSession>()
  const byMailbox = new Map<string, Set<ImapSession>>()
  const perAddress = new Map<string, number>()
  const servers: Server[] = []
  const sockets = new Set<Socket>()
  let closing = false

  function accept(socket: Socket, implicitTls: boolean): void {
    socket.on('error', (err) => log.debug({ err }, 'IMAP socket error'))
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    const ip = plainAddress(socket.remoteAddress)
    if (closing || !ip) {
      socket.destroy()
      return
    }
    if (sessions.size >= settings.max_connections) {
      log.warn({ remote: ip, connections: sessions.size }, 'IMAP connection limit reached')
      refuse(socket, implicitTls, 'Too many connections; try again later.')
      return
    }
    const mine = perAddress.get(ip) ?? 0
    if (mine >= settings.max_connections_per_ip) {
      log.info({ remote: ip }, 'IMAP connection limit per address reached')
      refuse(socket, implicitTls, 'Too many connections from your address.')
      return
    }
    perAddress.set(ip, mine + 1)
    const info = { id: ImapSession.newId(), ip, port: socket.remotePort ?? 0 }
    const slog = log.child({ cid: info.id })
    let session: ImapSession | null = null
    const conn = new ImapConnection(
      socket,
      slog,
      {
        onData: (chunk) => session?.onData(chunk),
        onEnd: () => session?.onEnd(),
        onClose: () => session?.onClosed(),
      },
      null,
    )
    const s = new ImapSession(ctx, conn, info, {
      onLogin(x) {
        const a = x.account
        if (!a) return
        const set = byMailbox.get(a.mailbox_id) ?? new Set()
        set.add(x)
        byMailbox.set(a.mailbox_id, set)
      },
      onClose(x) {
        sessions.delete(x)
        const left = (perAddress.get(ip) ?? 1) - 1
        if (left > 0) perAddress.set(ip, left)
        else perAddress.delete(ip)
        const a = x.account
        if (a) {
          const set = byMailbox.get(a.mailbox_id)
          set?.delete(x)
          if (set && set.size === 0) byMailbox.delete(a.mailbox_id)
        }
      },
    })
    session = s
    sessions.add(s)
    slog.debug({ remote: ip, port: info.port, tls: implicitTls }, 'IMAP connection')
    void (async () => {
      if (implicitTls) {
        const opts = ctx.tls()
        const up = opts ? await conn.upgradeToTls(opts, settings.login_timeout_ms) : null
        if (!up) {
          conn.destroy()
          return
        }
      }
      await s.run()
    })()
  }

  function refuse(socket: Socket, implicitTls: boolean, text: string): void {
    if (!implicitTls) socket.end(untaggedStatus('BYE', text))
    else socket.end()
    socket.resume()
    setTimeout(() => socket.destroy(), 2000).unref()
  }

  return {
    listen(port, host, tls) {
      const server = createServer({ noDelay: true }, (socket) => accept(socket, tls))
      server.on('error', (err) => log.error({ err }, 'IMAP listener error'))
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
      const stopped = Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
      for (const s of sessions) s.shutdown()
      const deadline = Date.now() + graceMs
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      for (const s of sessions) s.conn.destroy()
      for (const socket of sockets) socket.destroy()
      await stopped
    },

    get connections() {
      return sessions.size
    },

    mailChanged(mailboxId, what) {
      for (const s of byMailbox.get(mailboxId) ?? [])
        if (what === 'uids_reset') s.drop('The mailbox UIDs were reset; reconnect to resync.')
        else s.changed()
    },
  }
}
