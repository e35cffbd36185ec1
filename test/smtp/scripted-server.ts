// A scripted SMTP server on 127.0.0.1 for what Postern's own server never does (AUTH on an MX,
// implicit TLS, no EHLO, a chosen set of extensions: no DSN, no SMTPUTF8, a STARTTLS that
// fails). It records every command line per connection and every message it took.

import net, { createServer as createNetServer, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'

export type Answer = string | { reply: string; after: 'drop-next' }

export interface Scripted {
  port: number
  /** Every command line received, per connection. */
  sessions: string[][]
  messages: Buffer[]
  close(): Promise<void>
}

/** `respond` is made per connection; a reply starting 354 reads a message, 221/421 close. */
export async function scripted(
  respond: () => (line: string) => Answer,
  tls?: { key: string; cert: string },
  /** Where to listen (default 127.0.0.1, a random port). */
  at: { host: string; port: number } = { host: '127.0.0.1', port: 0 },
): Promise<Scripted> {
  const sessions: string[][] = []
  const messages: Buffer[] = []
  const sockets = new Set<Socket>()
  const onSocket = (socket: Socket): void => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    const lines: string[] = []
    sessions.push(lines)
    const answer = respond()
    let buf = Buffer.alloc(0)
    let inData = false
    let dropNext = false
    socket.write('220 scripted.test ESMTP\r\n')
    socket.on('data', (chunk: Buffer) => {
      if (dropNext) {
        socket.destroy()
        return
      }
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n')
          if (end < 0) return
          messages.push(Buffer.from(buf.subarray(0, end + 2)))
          buf = buf.subarray(end + 5)
          inData = false
          socket.write('250 2.0.0 Queued\r\n')
          continue
        }
        const i = buf.indexOf('\r\n')
        if (i < 0) return
        const line = buf.subarray(0, i).toString('utf8')
        buf = buf.subarray(i + 2)
        lines.push(line)
        const a = answer(line)
        const reply = typeof a === 'string' ? a : a.reply
        if (typeof a !== 'string') dropNext = true
        if (reply.startsWith('354')) inData = true
        socket.write(`${reply}\r\n`)
        if (/^(221|421)/.test(reply)) socket.end()
      }
    })
  }
  const server: Server = tls ? createTlsServer(tls, onSocket) : createNetServer(onSocket)
  await new Promise<void>((resolve) => server.listen(at.port, at.host, resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    port,
    sessions,
    messages,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** Answers like a plain ESMTP server offering `ext`; `extra` answers first (undefined: fall through). */
export const basic =
  (ext: string[], extra?: (line: string) => Answer | undefined) =>
  () =>
  (line: string): Answer => {
    const own = extra?.(line)
    if (own !== undefined) return own
    const verb = (line.split(' ')[0] ?? '').toUpperCase()
    if (verb === 'EHLO') {
      const all = ['scripted.test', ...ext]
      return all.map((l, i) => `250${i === all.length - 1 ? ' ' : '-'}${l}`).join('\r\n')
    }
    if (verb === 'HELO') return '250 scripted.test'
    if (verb === 'MAIL') return '250 2.1.0 Ok'
    if (verb === 'RCPT') return '250 2.1.5 Ok'
    if (verb === 'DATA') return '354 Go ahead'
    if (verb === 'RSET') return '250 2.0.0 Ok'
    if (verb === 'QUIT') return '221 2.0.0 Bye'
    return '502 5.5.2 Unknown command'
  }
