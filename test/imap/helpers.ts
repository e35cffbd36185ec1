// IMAP test helpers: a whole Postern with a hosted mailbox whose password the test knows, and
// a raw IMAP client over a real socket that returns exactly the bytes of each response, for
// transcript tests.

import { connect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { hostedOrg } from '../delivery/helpers.ts'
import type { Api } from '../helpers/api.ts'
import type { Dialect } from '../helpers/dialects.ts'
import { startTestServer, type TestServer, type TestServerOptions } from '../helpers/server.ts'

export const PASSWORD = 'correct-horse-battery-7'

export interface ImapFixture {
  s: TestServer
  api: Api
  domain: string
  /** Mailbox id and address of ann (password PASSWORD) and bob. */
  ann: { id: string; address: string }
  bob: { id: string; address: string }
  imapPort: number
  imapsPort: number
  smtpPort: number
  close(): Promise<void>
}

export async function imapFixture(dialect: Dialect, opts: TestServerOptions = {}): Promise<ImapFixture> {
  const s = await startTestServer(dialect, opts)
  try {
    const { api, domain, ann, bob } = await hostedOrg(s)
    for (const id of [ann, bob]) {
      const r = await api.patch(`/v1/mailboxes/${id}`, { password: PASSWORD })
      if (r.status !== 200)
        throw new Error(`setting the password failed: ${r.status} ${JSON.stringify(r.body)}`)
    }
    const port = (name: string) => {
      const l = s.postern.listeners.find((x) => x.name === name)
      if (!l) throw new Error(`no ${name} listener`)
      return l.port
    }
    return {
      s,
      api,
      domain,
      ann: { id: ann, address: `ann@${domain}` },
      bob: { id: bob, address: `bob@${domain}` },
      imapPort: port('imap'),
      imapsPort: port('imaps'),
      smtpPort: port('smtp-mx'),
      close: () => s.close(),
    }
  } catch (err) {
    await s.close()
    throw err
  }
}

/** A raw IMAP client: send a command, get back every byte up to and including its tagged line. */
export class RawImap {
  private buf = Buffer.alloc(0)
  private waiters: (() => void)[] = []
  socket: Socket
  closed = false

  private constructor(socket: Socket) {
    this.socket = socket
    this.attach(socket)
  }

  private attach(socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d])
      for (const w of this.waiters.splice(0)) w()
    })
    socket.on('close', () => {
      this.closed = true
      for (const w of this.waiters.splice(0)) w()
    })
    socket.on('error', () => {})
  }

  static async open(port: number, tls = false): Promise<{ c: RawImap; greeting: string }> {
    const socket = tls
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      : connect({ host: '127.0.0.1', port })
    await new Promise<void>((resolve, reject) => {
      socket.once(tls ? 'secureConnect' : 'connect', () => resolve())
      socket.once('error', reject)
    })
    const c = new RawImap(socket)
    const greeting = await c.readLine()
    return { c, greeting }
  }

  private async more(timeoutMs: number): Promise<void> {
    if (this.closed)
      throw new Error(`connection closed; unread: ${JSON.stringify(this.buf.toString('latin1'))}`)
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`timed out; have: ${JSON.stringify(this.buf.toString('latin1'))}`)),
        timeoutMs,
      )
      this.waiters.push(() => {
        clearTimeout(t)
        resolve()
      })
    })
  }

  /** One line including its CRLF. */
  async readLine(timeoutMs = 5000): Promise<string> {
    for (;;) {
      const i = this.buf.indexOf('\r\n')
      if (i >= 0) {
        const line = this.buf.subarray(0, i + 2).toString('latin1')
        this.buf = this.buf.subarray(i + 2)
        return line
      }
      await this.more(timeoutMs)
    }
  }

  /** Everything up to and including the line starting with `tag `, literals included, as latin1. */
  async until(tag: string, timeoutMs = 5000): Promise<string> {
    let out = ''
    for (;;) {
      const i = this.buf.indexOf('\r\n')
      if (i < 0) {
        await this.more(timeoutMs)
        continue
      }
      const line = this.buf.subarray(0, i + 2).toString('latin1')
      const lit = /\{(\d+)\}\r\n$/.exec(line)
      if (lit) {
        const n = Number(lit[1])
        while (this.buf.length < i + 2 + n) await this.more(timeoutMs)
        out += this.buf.subarray(0, i + 2 + n).toString('latin1')
        this.buf = this.buf.subarray(i + 2 + n)
        continue
      }
      out += line
      this.buf = this.buf.subarray(i + 2)
      if (line.startsWith(`${tag} `)) return out
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data)
  }

  /** Sends `tag command` and returns the whole response. */
  async cmd(tag: string, command: string, timeoutMs = 5000): Promise<string> {
    this.write(`${tag} ${command}\r\n`)
    return this.until(tag, timeoutMs)
  }

  async login(address: string, password = PASSWORD): Promise<void> {
    const r = await this.cmd('L1', `LOGIN "${address}" "${password}"`)
    if (!/^L1 OK/m.test(r)) throw new Error(`login failed: ${r}`)
  }

  close(): void {
    this.socket.destroy()
  }
}

/** Sends a message over SMTP to the MX (plain, no TLS). */
export async function smtpDeliver(port: number, from: string, to: string, message: string): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port })
  let buf = ''
  const waiters: (() => void)[] = []
  socket.on('data', (d) => {
    buf += d.toString('latin1')
    for (const w of waiters.splice(0)) w()
  })
  const reply = async (): Promise<string> => {
    for (;;) {
      const m = /(^|\r\n)(\d{3}) [^\r\n]*\r\n$/.exec(buf)
      if (m) {
        const r = buf
        buf = ''
        return r
      }
      await new Promise<void>((resolve) => waiters.push(resolve))
    }
  }
  const expect = async (code: string) => {
    const r = await reply()
    if (!r.split('\r\n').at(-2)?.startsWith(code)) throw new Error(`expected ${code}, got ${r}`)
  }
  await expect('220')
  for (const [line, code] of [
    ['EHLO client.example', '250'],
    [`MAIL FROM:<${from}>`, '250'],
    [`RCPT TO:<${to}>`, '250'],
    ['DATA', '354'],
  ] as const) {
    socket.write(`${line}\r\n`)
    await expect(code)
  }
  const body = message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..')
  socket.write(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`)
  await expect('250')
  socket.write('QUIT\r\n')
  socket.end()
}
