// A minimal IMAP client for the benchmarks: one command at a time per connection, reading
// every response up to the tagged line (literals included) without interpreting it. It speaks
// the same bytes to Postern and to Dovecot, so their figures compare like for like.

import { connect, type Socket } from 'node:net'

export class BenchImap {
  private buf: Buffer = Buffer.alloc(0)
  private wake: (() => void) | null = null
  private n = 0
  private closed = false
  private readonly socket: Socket

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d
      this.wake?.()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake?.()
    })
    socket.on('error', () => {})
  }

  static async open(host: string, port: number): Promise<BenchImap> {
    const socket = connect({ host, port, noDelay: true })
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve())
      socket.once('error', reject)
    })
    const c = new BenchImap(socket)
    await c.readUntil(null)
    return c
  }

  private async more(): Promise<void> {
    if (this.closed) throw new Error('connection closed')
    await new Promise<void>((resolve) => {
      this.wake = () => {
        this.wake = null
        resolve()
      }
    })
  }

  /** Reads responses until the tagged line (or, with tag null, one untagged line). Returns the tagged line. */
  private async readUntil(tag: string | null): Promise<string> {
    let pos = 0
    for (;;) {
      const i = this.buf.indexOf('\r\n', pos)
      if (i < 0) {
        await this.more()
        continue
      }
      const m = /\{(\d+)\+?\}$/.exec(this.buf.subarray(Math.max(pos, i - 20), i).toString('latin1'))
      if (m) {
        const need = i + 2 + Number(m[1])
        while (this.buf.length < need) await this.more()
        pos = need
        continue
      }
      const line = this.buf.subarray(pos, i).toString('latin1')
      this.buf = this.buf.subarray(i + 2)
      pos = 0
      if (tag === null || line.startsWith(`${tag} `)) return line
    }
  }

  /** Runs one command; throws unless it ends in OK. */
  async cmd(command: string): Promise<string> {
    const tag = `b${++this.n}`
    this.socket.write(`${tag} ${command}\r\n`)
    const done = await this.readUntil(tag)
    if (!done.startsWith(`${tag} OK`)) throw new Error(`${command.slice(0, 40)}: ${done}`)
    return done
  }

  async append(folder: string, message: Buffer): Promise<void> {
    const tag = `b${++this.n}`
    this.socket.write(`${tag} APPEND ${folder} {${message.length}+}\r\n`)
    this.socket.write(message)
    this.socket.write('\r\n')
    const done = await this.readUntil(tag)
    if (!done.startsWith(`${tag} OK`)) throw new Error(`APPEND: ${done}`)
  }

  /** Starts IDLE and waits for the continuation. */
  async idle(): Promise<void> {
    const tag = `b${++this.n}`
    this.socket.write(`${tag} IDLE\r\n`)
    for (;;) {
      const i = this.buf.indexOf('\r\n')
      if (i >= 0) {
        const line = this.buf.subarray(0, i).toString('latin1')
        this.buf = this.buf.subarray(i + 2)
        if (line.startsWith('+')) return
        if (line.startsWith(tag)) throw new Error(`IDLE: ${line}`)
        continue
      }
      await this.more()
    }
  }

  /** The next response line (IDLE updates), without its CRLF. */
  async nextLine(): Promise<string> {
    for (;;) {
      const i = this.buf.indexOf('\r\n')
      if (i >= 0) {
        const line = this.buf.subarray(0, i).toString('latin1')
        this.buf = this.buf.subarray(i + 2)
        return line
      }
      await this.more()
    }
  }

  close(): void {
    this.socket.destroy()
  }
}
