// A minimal SMTP client for benchmarks: one message per connection, one command at a time (no
// PIPELINING, like Postfix's smtp-source), HELO. It times the end of DATA: from writing the
// final "." line (the CRLF.CRLF that ends the message) to having read the whole reply.
// Talks to 127.0.0.1 only; every step has a timeout, so a stuck server cannot hang a run.

import { connect, type Socket } from 'node:net'

export interface Reply {
  code: number
  text: string
}

export interface Envelope {
  helo: string
  from: string
  to: string
}

export interface SendResult {
  /** Code of the reply to the end of DATA, or of the first refused command; 0: connection failed. */
  code: number
  /** End of DATA to its reply, in milliseconds (null when DATA never ended). */
  dataMs: number | null
  error?: string
}

/** Reads whole SMTP replies (multi-line ones too) from a socket, in order. */
class ReplyReader {
  #buf = ''
  #ready: Reply[] = []
  #waiters: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = []
  #failed: Error | null = null
  #lines: string[] = []

  constructor(sock: Socket) {
    sock.setEncoding('latin1')
    sock.on('data', (chunk: string) => this.#feed(chunk))
    const fail = (err: Error) => {
      this.#failed ??= err
      for (const w of this.#waiters.splice(0)) w.reject(this.#failed)
    }
    sock.on('error', fail)
    sock.on('close', () => fail(new Error('connection closed')))
  }

  #feed(chunk: string) {
    this.#buf += chunk
    for (let i = this.#buf.indexOf('\n'); i >= 0; i = this.#buf.indexOf('\n')) {
      const line = this.#buf.slice(0, i).replace(/\r$/, '')
      this.#buf = this.#buf.slice(i + 1)
      this.#lines.push(line)
      if (line.length >= 3 && line[3] !== '-') {
        const reply = { code: Number(line.slice(0, 3)), text: this.#lines.join('\n') }
        this.#lines = []
        const w = this.#waiters.shift()
        if (w) w.resolve(reply)
        else this.#ready.push(reply)
      }
    }
  }

  next(timeoutMs: number): Promise<Reply> {
    const ready = this.#ready.shift()
    if (ready) return Promise.resolve(ready)
    if (this.#failed) return Promise.reject(this.#failed)
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs)
      this.#waiters.push({
        resolve: (r) => {
          clearTimeout(timer)
          resolve(r)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      })
    })
  }
}

/** The message as sent after DATA: CRLF line ends, dot-stuffed, ending in CRLF (not the dot). */
export function toDataBody(message: string | Buffer): Buffer {
  const text = (typeof message === 'string' ? message : message.toString('latin1')).replace(/\r?\n/g, '\r\n')
  const stuffed = text.replace(/^\./gm, '..')
  return Buffer.from(stuffed.endsWith('\r\n') ? stuffed : `${stuffed}\r\n`, 'latin1')
}

/**
 * Sends one message over a new connection and closes it (QUIT). `body` must come from
 * toDataBody. Resolves (never rejects) with the reply code and the end-of-DATA latency.
 */
export async function sendMessage(
  port: number,
  env: Envelope,
  body: Buffer,
  timeoutMs = 60_000,
): Promise<SendResult> {
  const sock = connect({ host: '127.0.0.1', port, noDelay: true })
  const replies = new ReplyReader(sock)
  const step = async (line: string | null, want: number): Promise<Reply> => {
    if (line !== null) sock.write(`${line}\r\n`)
    const r = await replies.next(timeoutMs)
    if (Math.floor(r.code / 100) !== Math.floor(want / 100))
      throw Object.assign(new Error(r.text), { reply: r })
    return r
  }
  let dataMs: number | null = null
  try {
    await step(null, 220)
    await step(`HELO ${env.helo}`, 250)
    await step(`MAIL FROM:<${env.from}>`, 250)
    await step(`RCPT TO:<${env.to}>`, 250)
    await step('DATA', 354)
    sock.write(body)
    const t0 = performance.now()
    sock.write('.\r\n')
    const r = await replies.next(timeoutMs)
    dataMs = performance.now() - t0
    if (r.code !== 250) return { code: r.code, dataMs, error: r.text }
    sock.write('QUIT\r\n')
    await replies.next(timeoutMs).catch(() => null)
    return { code: 250, dataMs }
  } catch (err) {
    const reply = (err as { reply?: Reply }).reply
    return { code: reply?.code ?? 0, dataMs, error: (err as Error).message }
  } finally {
    sock.destroy()
  }
}
