// Receiving SMTP servers for the outbound TLS tests, all on one port (outbound.mx_port is one
// number) at different loopback addresses, so MX records choose between them:
//   127.0.0.1  Postern's SMTP server with STARTTLS and a test-CA certificate for `names`
//   127.0.0.2  Postern's SMTP server with STARTTLS and a test-CA certificate for another name
//   127.0.0.3  Postern's SMTP server without STARTTLS
//   127.0.0.4  a scripted server offering STARTTLS and, once TLS is up, REQUIRETLS (RFC 8689);
//              it records each MAIL line and whether TLS was up when it came.
//   127.0.0.5  the same scripted server with a valid certificate but without REQUIRETLS.
// (Postern's own server offers REQUIRETLS after STARTTLS too; the scripted ones record MAIL lines.)

import { createServer as createNetServer, type Server, type Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import { createSmtpServer, type SmtpServer } from '../../src/smtp/server.ts'
import type { TestCa } from '../helpers/test-ca.ts'
import { captureLogger, type FakeHandler, fakeHandler, HOST, SETTINGS } from '../smtp/helpers.ts'

export const SINK_IP = {
  verified: '127.0.0.1',
  wrongName: '127.0.0.2',
  plain: '127.0.0.3',
  requiretls: '127.0.0.4',
  noRequiretls: '127.0.0.5',
}

export interface PosternSink {
  ip: string
  handler: FakeHandler
  server: SmtpServer
}

export interface ScriptedSink {
  ip: string
  /** Every MAIL FROM line received, with whether TLS was up and the RCPT addresses that followed. */
  mails: { line: string; tls: boolean; rcpt: string[] }[]
  messages: Buffer[]
  close(): Promise<void>
}

export interface Sinks {
  port: number
  verified: PosternSink
  wrongName: PosternSink
  plain: PosternSink
  requiretls: ScriptedSink
  noRequiretls: ScriptedSink
  close(): Promise<void>
}

/** Starts the four sinks; `names` are the MX names the valid certificates carry. */
export async function startSinks(ca: TestCa, names: readonly string[]): Promise<Sinks> {
  const good = await ca.issue(names)
  const wrong = await ca.issue(['somewhere-else.example'])
  for (let tries = 0; ; tries++) {
    const started: { close(): Promise<void> }[] = []
    try {
      const verified = await posternSink(SINK_IP.verified, 0, good)
      started.push(verified)
      const port = verified.port
      const wrongName = await posternSink(SINK_IP.wrongName, port, wrong)
      started.push(wrongName)
      const plain = await posternSink(SINK_IP.plain, port, null)
      started.push(plain)
      const requiretls = await scriptedSink(SINK_IP.requiretls, port, good)
      started.push(requiretls)
      const noRequiretls = await scriptedSink(SINK_IP.noRequiretls, port, good, false)
      started.push(noRequiretls)
      return {
        port,
        verified: verified.sink,
        wrongName: wrongName.sink,
        plain: plain.sink,
        requiretls,
        noRequiretls,
        close: async () => {
          for (const s of started) await s.close()
        },
      }
    } catch (err) {
      for (const s of started) await s.close()
      // The port picked on 127.0.0.1 may be taken on another address: pick again.
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || tries >= 5) throw err
    }
  }
}

async function posternSink(ip: string, port: number, pair: { key: string; cert: string } | null) {
  const handler = fakeHandler()
  const server = createSmtpServer({
    handler,
    settings: SETTINGS,
    hostname: HOST,
    tls: () => pair,
    log: captureLogger([]),
  })
  const bound = await server.listen(port, ip)
  return { port: bound, sink: { ip, handler, server }, close: () => server.close(500) }
}

async function scriptedSink(
  ip: string,
  port: number,
  pair: { key: string; cert: string },
  offersRequireTls = true,
): Promise<ScriptedSink> {
  const mails: ScriptedSink['mails'] = []
  const messages: Buffer[] = []
  const sockets = new Set<Socket>()
  const server: Server = createNetServer((raw) => {
    sockets.add(raw)
    raw.on('close', () => sockets.delete(raw))
    raw.on('error', () => {})
    let socket: Socket = raw
    let tls = false
    let buf = Buffer.alloc(0)
    let inData = false
    const reply = (text: string) => socket.write(`${text}\r\n`)
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n')
          if (end < 0) return
          messages.push(Buffer.from(buf.subarray(0, end + 2)))
          buf = buf.subarray(end + 5)
          inData = false
          reply('250 2.0.0 Queued')
          continue
        }
        const i = buf.indexOf('\r\n')
        if (i < 0) return
        const line = buf.subarray(0, i).toString('utf8')
        buf = buf.subarray(i + 2)
        const verb = (line.split(' ')[0] ?? '').toUpperCase()
        if (verb === 'EHLO') {
          const after = offersRequireTls ? ['REQUIRETLS'] : []
          const ext = ['requiretls.test', '8BITMIME', 'ENHANCEDSTATUSCODES', ...(tls ? after : ['STARTTLS'])]
          reply(ext.map((l, n) => `250${n === ext.length - 1 ? ' ' : '-'}${l}`).join('\r\n'))
        } else if (verb === 'STARTTLS' && !tls) {
          reply('220 2.0.0 Ready to start TLS')
          socket.off('data', onData)
          buf = Buffer.alloc(0)
          const secure = new TLSSocket(socket, { isServer: true, key: pair.key, cert: pair.cert })
          secure.on('error', () => {})
          secure.on('data', onData)
          socket = secure
          tls = true
          return
        } else if (verb === 'MAIL') {
          mails.push({ line, tls, rcpt: [] })
          reply('250 2.1.0 Ok')
        } else if (verb === 'RCPT') {
          mails.at(-1)?.rcpt.push(/<([^>]*)>/.exec(line)?.[1] ?? '')
          reply('250 2.1.5 Ok')
        } else if (verb === 'DATA') {
          inData = true
          reply('354 Go ahead')
        } else if (verb === 'RSET' || verb === 'NOOP') reply('250 2.0.0 Ok')
        else if (verb === 'QUIT') {
          reply('221 2.0.0 Bye')
          socket.end()
        } else reply('502 5.5.2 Unknown command')
      }
    }
    raw.on('data', onData)
    reply('220 requiretls.test ESMTP')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, ip, () => resolve())
  })
  return {
    ip,
    mails,
    messages,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
