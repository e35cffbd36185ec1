// Test helpers for the SMTP server: a handler that records every call and answers as told, a
// server on 127.0.0.1 port 0, and a raw client that reads replies as transcripts
// (`await c.cmd('RCPT TO:<a@b.example>', '550 5.1.1')`, after Stalwart's tests).

import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { type TLSSocket, connect as tlsConnect } from 'node:tls'
import { createLogger, type Logger } from '../../src/log/logger.ts'
import type { MailFrom, RcptTo, SessionInfo, SmtpHandler, SmtpReply } from '../../src/smtp/handler.ts'
import { createSmtpServer, type SmtpServer, type SmtpServerOptions } from '../../src/smtp/server.ts'
import type { SmtpSettings } from '../../src/smtp/settings.ts'

export const HOST = 'mx.postern.test'

export const SETTINGS: SmtpSettings = {
  banner: null,
  max_message_bytes: 1_000_000,
  max_header_bytes: 64 * 1024,
  max_recipients: 5,
  max_line_bytes: 1000,
  max_connections: 50,
  max_connections_per_ip: 20,
  max_errors: 10,
  max_unknown_recipients: 5,
  max_transactions: 10,
  command_timeout_ms: 10_000,
  data_timeout_ms: 10_000,
  greeting_delay_ms: 0,
}

export type Call =
  | { kind: 'connect'; s: SessionInfo }
  | { kind: 'mail'; s: SessionInfo; from: MailFrom }
  | { kind: 'rcpt'; s: SessionInfo; from: MailFrom; to: RcptTo; accepted: readonly RcptTo[] }
  | { kind: 'message'; s: SessionInfo; from: MailFrom; to: readonly RcptTo[]; message: Buffer }

/** Answers: null accepts; a function may look at the call. Recipients ending `@unknown.example` get 550 5.1.1. */
export interface FakeAnswers {
  connect?: () => Promise<SmtpReply | null>
  mail?: (from: MailFrom) => Promise<SmtpReply | null>
  rcpt?: (to: RcptTo) => Promise<SmtpReply | null>
  message?: (message: Buffer) => Promise<SmtpReply>
}

export interface FakeHandler extends SmtpHandler {
  calls: Call[]
  messages(): Buffer[]
}

export function fakeHandler(answers: FakeAnswers = {}): FakeHandler {
  const calls: Call[] = []
  return {
    calls,
    messages: () => calls.flatMap((c) => (c.kind === 'message' ? [c.message] : [])),
    async onConnect(s) {
      calls.push({ kind: 'connect', s })
      return answers.connect ? answers.connect() : null
    },
    async onMailFrom(s, from) {
      calls.push({ kind: 'mail', s, from })
      return answers.mail ? answers.mail(from) : null
    },
    async onRcptTo(s, from, to, accepted) {
      calls.push({ kind: 'rcpt', s, from, to, accepted })
      if (answers.rcpt) return answers.rcpt(to)
      if (to.address.endsWith('@unknown.example'))
        return { code: 550, enhanced: '5.1.1', message: 'No such user here' }
      return null
    },
    async onMessage(s, envelope, message) {
      calls.push({ kind: 'message', s, from: envelope.from, to: envelope.to, message })
      if (answers.message) return answers.message(message)
      return { code: 250, enhanced: '2.0.0', message: 'Ok: queued as TEST' }
    },
  }
}

export interface TestSmtp {
  server: SmtpServer
  port: number
  handler: FakeHandler
  log: Logger
  close(): Promise<void>
}

/** Log lines at trace level, to check what reaches the logs (POSTERN_TEST_LOG_LEVEL shows them). */
export function captureLogger(lines: string[]): Logger {
  return createLogger({
    level: 'trace',
    destination: {
      write(line: string) {
        lines.push(line)
        if (process.env.POSTERN_TEST_LOG_LEVEL) process.stderr.write(line)
      },
    },
  })
}

export async function startSmtp(
  opts: {
    settings?: Partial<SmtpSettings>
    handler?: FakeHandler
    tls?: SmtpServerOptions['tls']
    logLines?: string[]
  } = {},
): Promise<TestSmtp> {
  const handler = opts.handler ?? fakeHandler()
  const log = captureLogger(opts.logLines ?? [])
  const server = createSmtpServer({
    handler,
    settings: { ...SETTINGS, ...opts.settings },
    hostname: HOST,
    tls: opts.tls ?? (() => null),
    log,
  })
  const port = await server.listen(0, '127.0.0.1')
  return { server, port, handler, log, close: () => server.close(1000) }
}

/** A raw SMTP client over a socket, reading whole (multi-line) replies. */
export class RawClient {
  socket: Socket | TLSSocket
  private buffer = ''
  private closed = false
  private waiter: (() => void) | null = null

  private constructor(socket: Socket) {
    this.socket = socket
    this.listen(socket)
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port })
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return new RawClient(socket)
  }

  /** Connects and reads the greeting, which must start with `expected`. */
  static async greeted(port: number, expected = '220 '): Promise<RawClient> {
    const c = await RawClient.connect(port)
    await c.expect(expected)
    return c
  }

  private listen(socket: Socket): void {
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => {
      this.buffer += d
      this.poke()
    })
    socket.on('close', () => {
      this.closed = true
      this.poke()
    })
    socket.on('error', () => {})
  }

  private poke(): void {
    const w = this.waiter
    this.waiter = null
    w?.()
  }

  /** Sends raw text (no CRLF added). */
  write(text: string | Buffer): void {
    this.socket.write(typeof text === 'string' ? Buffer.from(text, 'latin1') : text)
  }

  /** Sends a command line (CRLF added). */
  send(line: string): void {
    this.socket.write(Buffer.from(`${line}\r\n`, 'utf8'))
  }

  /** The next whole reply (all its lines, CRLF-joined, without the final CRLF); null when the server closed first. */
  async reply(timeoutMs = 5000): Promise<string | null> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      // A reply ends with a line `ddd` or `ddd text` (RFC 5321 4.2.1); earlier lines are `ddd-text`.
      for (
        let start = 0, end = this.buffer.indexOf('\r\n');
        end >= 0;
        end = this.buffer.indexOf('\r\n', start)
      ) {
        if (/^\d{3}(?: |$)/.test(this.buffer.slice(start, Math.min(end, start + 4)))) {
          const reply = this.buffer.slice(0, end)
          this.buffer = this.buffer.slice(end + 2)
          return reply
        }
        start = end + 2
      }
      if (this.closed) return null
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; have ${JSON.stringify(this.buffer)}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiter = () => {
          clearTimeout(t)
          resolve()
        }
      })
    }
  }

  /** Reads a reply and checks it starts with `prefix` (e.g. '250 2.1.5'); returns it. */
  async expect(prefix: string, timeoutMs?: number): Promise<string> {
    const reply = await this.reply(timeoutMs)
    assert.ok(reply !== null, `expected '${prefix}', but the server closed the connection`)
    assert.ok(reply.startsWith(prefix), `expected '${prefix}...', got ${JSON.stringify(reply)}`)
    return reply
  }

  /** Sends a command and checks the reply. */
  async cmd(line: string, prefix: string): Promise<string> {
    this.send(line)
    return this.expect(prefix)
  }

  /** Waits for the server to close the connection (after reading any replies). */
  async closedByServer(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!this.closed) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error('the server did not close the connection')
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiter = () => {
          clearTimeout(t)
          resolve()
        }
      })
    }
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** Everything received and not yet read as a reply. */
  get pending(): string {
    return this.buffer
  }

  /** STARTTLS's handshake on this socket (after the 220 was read). */
  async startTls(): Promise<void> {
    const plain = this.socket as Socket
    plain.removeAllListeners('data')
    plain.removeAllListeners('close')
    const tls = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'localhost' })
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', resolve)
      tls.once('error', reject)
    })
    this.socket = tls
    this.buffer = ''
    this.listen(tls)
  }

  /** Stops reading from the socket (the server's replies back up in TCP), until resume(). */
  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }

  close(): void {
    this.socket.destroy()
  }
}

/** EHLO, MAIL and RCPT for a transaction to `to`. */
export async function openTransaction(c: RawClient, to = 'bob@postern.test', from = 'alice@sender.example') {
  await c.cmd('EHLO client.example', '250')
  await c.cmd(`MAIL FROM:<${from}>`, '250 2.1.0')
  await c.cmd(`RCPT TO:<${to}>`, '250 2.1.5')
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
