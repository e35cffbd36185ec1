// Splits a client's byte stream into IMAP commands (RFC 9051 2.2, 4.3; RFC 7888 LITERAL+/-;
// RFC 3516 literal8). Pure and pull-based: the session feeds bytes and takes frames when it is
// ready for the next one, so a command runs to completion before the next is read.
// A frame is a whole command in wire format (literals inline, final CRLF removed), ready for
// parser.ts; a literal announcement stops the framer until the session decides: accept it into
// the command, stream it out (APPEND: the message goes to disk, not to memory), or refuse it.
// Invariants:
// - Memory is bounded: a line longer than maxLineBytes is refused and skipped; literals are
//   buffered only when the session accepts them (it checks maxCommandBytes first); streamed
//   literals leave as they arrive.
// - A refused non-synchronizing literal (the client sends it anyway) is read and dropped, so
//   its bytes are never taken for commands.
// - Lines end with CRLF; a bare LF is accepted as a line end (Dovecot does too), a bare CR is
//   data.

export interface FramerLimits {
  maxLineBytes: number
}

export type Frame =
  /** A complete command: its bytes without the final CRLF. `streamedAt`: see stream(). */
  | { kind: 'command'; raw: Buffer; streamedAt: number | null }
  /**
   * A literal was announced at the end of a line. The framer waits for accept(), stream() or
   * refuse(). `prefix` is the command so far (including the announcement and its CRLF);
   * `at` is the offset in prefix where the announcement (`{` or `~{`) starts.
   */
  | { kind: 'literal'; prefix: Buffer; at: number; size: number; nonSync: boolean; binary: boolean }
  /** A line was longer than the limit; it was dropped. `tag` is its first word, if readable. */
  | { kind: 'too-long'; tag: string | null }

type State =
  | { s: 'line' }
  | { s: 'decide'; size: number; nonSync: boolean }
  | { s: 'literal'; left: number }
  | { s: 'stream'; left: number }
  | { s: 'discard'; left: number; thenSkipLine: boolean }
  | { s: 'skip-line' }

const LITERAL_AT_END = /(~?)\{(\d{1,10})(\+?)\}$/

export class CommandFramer {
  private buf: Buffer = Buffer.alloc(0)
  private parts: Buffer[] = []
  private partsBytes = 0
  private state: State = { s: 'line' }
  private streamedAt: number | null = null
  private readonly limits: FramerLimits

  constructor(limits: FramerLimits) {
    this.limits = limits
  }

  /** Bytes received and not yet taken. */
  get buffered(): number {
    return this.buf.length
  }

  /** Bytes of the command being assembled (its lines and accepted literals). */
  get commandBytes(): number {
    return this.partsBytes
  }

  /** True while the framer waits for accept/stream/refuse. */
  get deciding(): boolean {
    return this.state.s === 'decide'
  }

  /** True while a streamed literal still has bytes to come. */
  get streaming(): boolean {
    return this.state.s === 'stream'
  }

  feed(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
  }

  /** Drops everything buffered (after STARTTLS: nothing read before the handshake counts). */
  reset(): void {
    this.buf = Buffer.alloc(0)
    this.parts = []
    this.partsBytes = 0
    this.state = { s: 'line' }
    this.streamedAt = null
  }

  /** The next frame, or null when more input is needed (or a decision is pending). */
  take(): Frame | null {
    for (;;) {
      const st = this.state
      switch (st.s) {
        case 'decide':
        case 'stream':
          return null
        case 'literal': {
          if (this.buf.length === 0) return null
          const n = Math.min(st.left, this.buf.length)
          this.push(this.buf.subarray(0, n))
          this.buf = this.buf.subarray(n)
          st.left -= n
          if (st.left > 0) return null
          this.state = { s: 'line' }
          continue
        }
        case 'discard': {
          const n = Math.min(st.left, this.buf.length)
          this.buf = this.buf.subarray(n)
          st.left -= n
          if (st.left > 0) return null
          this.state = st.thenSkipLine ? { s: 'skip-line' } : { s: 'line' }
          continue
        }
        case 'skip-line': {
          const lf = this.buf.indexOf(10)
          if (lf < 0) {
            this.buf = Buffer.alloc(0)
            return null
          }
          this.buf = this.buf.subarray(lf + 1)
          this.state = { s: 'line' }
          continue
        }
        case 'line': {
          const lf = this.buf.indexOf(10)
          if (lf < 0) {
            if (this.buf.length > this.limits.maxLineBytes) return this.tooLong(this.buf, true)
            return null
          }
          if (lf > this.limits.maxLineBytes) {
            const frame = this.tooLong(this.buf.subarray(0, lf), false)
            this.buf = this.buf.subarray(lf + 1)
            return frame
          }
          const end = lf > 0 && this.buf[lf - 1] === 13 ? lf - 1 : lf
          const line = this.buf.subarray(0, end)
          this.buf = this.buf.subarray(lf + 1)
          const m = LITERAL_AT_END.exec(line.toString('latin1'))
          if (!m) {
            this.push(line)
            const raw = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts)
            const streamedAt = this.streamedAt
            this.parts = []
            this.partsBytes = 0
            this.streamedAt = null
            return { kind: 'command', raw, streamedAt }
          }
          const at = this.partsBytes + m.index
          this.push(line)
          this.push(CRLF)
          const size = Number(m[2])
          const nonSync = m[3] === '+'
          this.state = { s: 'decide', size, nonSync }
          return {
            kind: 'literal',
            prefix: Buffer.concat(this.parts),
            at,
            size,
            nonSync,
            binary: m[1] === '~',
          }
        }
      }
    }
  }

  /** Buffers the announced literal into the command (the session sent `+` first if it was synchronizing). */
  accept(): void {
    const st = this.mustDecide()
    this.state = { s: 'literal', left: st.size }
  }

  /**
   * Passes the announced literal out through takeStream(); the command then continues without
   * it, and its frame has `streamedAt` = the offset where the literal stood (only one literal
   * per command may be streamed).
   */
  stream(): void {
    const st = this.mustDecide()
    const prefix = Buffer.concat(this.parts)
    const m = LITERAL_AT_END.exec(prefix.subarray(0, prefix.length - 2).toString('latin1'))
    const at = m ? m.index : prefix.length
    this.parts = [prefix.subarray(0, at)]
    this.partsBytes = at
    this.streamedAt = at
    this.state = st.size > 0 ? { s: 'stream', left: st.size } : { s: 'line' }
  }

  /** The next piece of a streamed literal (null: wait for input); an empty buffer marks its end. */
  takeStream(): Buffer | null {
    const st = this.state
    if (st.s !== 'stream') return Buffer.alloc(0)
    if (this.buf.length === 0) return null
    const n = Math.min(st.left, this.buf.length)
    const piece = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(n)
    st.left -= n
    if (st.left === 0) this.state = { s: 'line' }
    return piece
  }

  /** Drops the command: a synchronizing literal is simply not sent; a non-synchronizing one is read and dropped with the rest of its command line. */
  refuse(): void {
    const st = this.mustDecide()
    this.parts = []
    this.partsBytes = 0
    this.streamedAt = null
    this.state = st.nonSync ? { s: 'discard', left: st.size, thenSkipLine: true } : { s: 'line' }
  }

  /** Abandons a streamed literal midway (the client's bytes are still read and dropped). */
  abandonStream(): void {
    const st = this.state
    this.parts = []
    this.partsBytes = 0
    this.streamedAt = null
    this.state = st.s === 'stream' ? { s: 'discard', left: st.left, thenSkipLine: true } : { s: 'line' }
  }

  /**
   * One raw line (IDLE's DONE, an AUTHENTICATE response), without its line end; null when more
   * input is needed. A line over the limit is returned truncated to the limit.
   */
  takeLine(): Buffer | null {
    const lf = this.buf.indexOf(10)
    if (lf < 0) {
      if (this.buf.length > this.limits.maxLineBytes) {
        const line = this.buf.subarray(0, this.limits.maxLineBytes)
        this.buf = Buffer.alloc(0)
        this.state = { s: 'skip-line' }
        return line
      }
      return null
    }
    const end = lf > 0 && this.buf[lf - 1] === 13 ? lf - 1 : lf
    const line = this.buf.subarray(0, Math.min(end, this.limits.maxLineBytes))
    this.buf = this.buf.subarray(lf + 1)
    return line
  }

  private push(b: Buffer): void {
    this.parts.push(b)
    this.partsBytes += b.length
  }

  private mustDecide(): { size: number; nonSync: boolean } {
    const st = this.state
    if (st.s !== 'decide') throw new Error('no literal is waiting for a decision')
    return st
  }

  private tooLong(line: Buffer, unterminated: boolean): Frame {
    const head = (this.parts[0] ?? line).subarray(0, 64).toString('latin1')
    const tag = /^([^\s(){%*"\\\]+]+) /.exec(head)?.[1] ?? null
    this.parts = []
    this.partsBytes = 0
    this.streamedAt = null
    if (unterminated) {
      this.buf = Buffer.alloc(0)
      this.state = { s: 'skip-line' }
    }
    return { kind: 'too-long', tag }
  }
}

const CRLF = Buffer.from('\r\n')
