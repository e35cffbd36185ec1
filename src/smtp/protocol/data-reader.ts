// Message text framing and checking: DATA's end-of-data line and dot-unstuffing (RFC 5321
// 4.1.1.4, 4.5.2) and BDAT chunk assembly (RFC 3030 2), with the limits on the text. Pure: it is
// fed Buffers and answers how much it consumed; the connection does the reading.
// Invariants (the SMTP smuggling defence, RFC 5321 2.3.8):
// - A line ends only at CRLF, and DATA ends only at CRLF "." CRLF, where the first CRLF may be
//   the one that ended the DATA command. `\n.\n`, `\r.\r`, `\n.\r\n`, `\r\n.\n` and the like are
//   message text, never an end.
// - A bare LF or bare CR anywhere makes the message refused (BARE_LINE_END), but reading goes on
//   to the real end, so the session stays in step with the client.
// - Limits are checked on the unstuffed text: total size, header section (up to the first empty
//   line), and line length (CRLF included, as RFC 5321 4.5.3.1.6 counts). A refused message is
//   read to its end and not kept: its bytes are dropped as soon as a problem is seen.
// - The text is kept as the Buffers received (slices, no copies, no strings) and joined once,
//   up to the spool's threshold; past it, everything kept so far and all that follows goes to
//   the spool (a temp file) instead, and comes back as one Buffer at complete(). A refused
//   message's spool is discarded at once: nothing of it is kept, in memory or on disk.
// Speed: within a line the scanner jumps from CR to CR with Buffer.indexOf (memchr), checking for
// LFs in between with a cached position, instead of looking at every byte in JavaScript.

export interface MessageLimits {
  maxMessageBytes: number
  maxHeaderBytes: number
  maxLineBytes: number
}

/** A temp file that holds a message's text while it arrives (store/blobs/spool.ts makes them). */
export interface SpoolFile {
  /** Queues a write; a failure is reported by read(). */
  write(chunk: Buffer): void
  /** Octets queued and not yet written. */
  readonly pending: number
  /** Resolves once the queued writes are done. */
  flushed(): Promise<void>
  /** Everything written, read back as one Buffer; the file is removed. */
  read(): Promise<Buffer>
  /** Removes the file; never rejects. */
  discard(): Promise<void>
}

export interface MessageSpool {
  /** Text above this many octets is spooled rather than kept in memory. */
  thresholdBytes: number
  open(): SpoolFile
}

/** Queued spool writes above this make the reader ask the connection to wait (backpressure). */
const SPOOL_HIGH_WATER = 1024 * 1024

export type MessageProblem = 'TOO_BIG' | 'BARE_LINE_END' | 'HEADER_TOO_BIG' | 'LINE_TOO_LONG'

const CR = 13
const LF = 10
const DOT = 46
const CR_BUFFER = Buffer.from([CR])

// Scanner states.
const LINE_START = 0 // after CRLF (or at the start of DATA's text)
const IN_LINE = 1
const CR_SEEN = 2 // a CR inside a line: CRLF if LF follows, else a bare CR
const DOT_SEEN = 3 // DATA: "." at the start of a line (already dropped: stuffing or end marker)
const DOT_CR = 4 // DATA: "." CR at the start of a line: the end if LF follows

export class MessageReader {
  private readonly limits: MessageLimits
  /** DATA (dot-stuffed, ends at CRLF.CRLF) or BDAT (raw chunks, ends at LAST). */
  private readonly dotStuffed: boolean
  private state = LINE_START
  private lineLength = 0
  private inHeader = true
  private headerBytes = 0
  /** DOT_CR was entered on the last byte of the previous chunk, whose CR is not yet kept. */
  private heldCr = false
  private parts: Buffer[] = []
  private bytes = 0
  private readonly spool: MessageSpool | null
  private file: SpoolFile | null = null
  /** The removal of a refused text's spool file, awaited by complete() and abandon(). */
  private discarding: Promise<void> | null = null
  private bareLineEnd = false
  private headerTooBig = false
  private lineTooLong = false
  /** DATA: the end-of-data line was read. */
  done = false

  constructor(mode: 'data' | 'bdat', limits: MessageLimits, spool: MessageSpool | null = null) {
    this.dotStuffed = mode === 'data'
    this.limits = limits
    this.spool = spool
  }

  /** True once the text went to a spool file (the message is large). */
  get spooled(): boolean {
    return this.file !== null
  }

  /** A promise to wait for before feeding more, when spool writes are behind; else null. */
  drained(): Promise<void> | null {
    return this.file && this.file.pending > SPOOL_HIGH_WATER ? this.file.flushed() : null
  }

  /** Unstuffed octets so far, kept or not. */
  get size(): number {
    return this.bytes
  }

  /** The first thing wrong with the text so far, or null. */
  get problem(): MessageProblem | null {
    if (this.bytes > this.limits.maxMessageBytes) return 'TOO_BIG'
    if (this.bareLineEnd) return 'BARE_LINE_END'
    if (this.headerTooBig) return 'HEADER_TOO_BIG'
    if (this.lineTooLong) return 'LINE_TOO_LONG'
    return null
  }

  /**
   * Reads text. Returns how many octets of `chunk` were used: all of them, except in DATA when
   * the end-of-data line ends inside the chunk (the rest is the client's next command).
   */
  feed(chunk: Buffer): number {
    if (this.done) return 0
    const n = chunk.length
    let i = 0
    let keepFrom = 0 // start of the text of this chunk not yet kept
    let nextLf = -1 // cached position of the next LF at or after i (n when none)
    while (i < n) {
      switch (this.state) {
        case LINE_START:
          if (this.dotStuffed && chunk[i] === DOT) {
            this.keep(chunk, keepFrom, i) // RFC 5321 4.5.2: the first dot of a line is dropped
            keepFrom = i + 1
            i++
            this.state = DOT_SEEN
          } else this.state = IN_LINE
          break
        case IN_LINE: {
          let cr = chunk.indexOf(CR, i)
          if (cr < 0) cr = n
          if (!this.bareLineEnd) {
            if (nextLf < i) {
              nextLf = chunk.indexOf(LF, i)
              if (nextLf < 0) nextLf = n
            }
            if (nextLf < cr) this.flagBareLineEnd() // an LF with no CR before it
          }
          this.lineLength += cr - i
          i = cr
          if (cr < n) {
            this.state = CR_SEEN
            i++
          }
          break
        }
        case CR_SEEN:
          if (chunk[i] === LF) {
            this.endLine()
            i++
          } else {
            this.flagBareLineEnd() // the CR stays in the line; this octet is read as text
            this.lineLength++
            this.state = IN_LINE
          }
          break
        case DOT_SEEN:
          if (chunk[i] === CR) {
            this.state = DOT_CR
            i++
          } else this.state = IN_LINE
          break
        case DOT_CR:
          if (chunk[i] === LF) {
            // CRLF "." CRLF: the end (RFC 5321 4.1.1.4). The "." and CR are not text.
            this.keep(chunk, keepFrom, Math.max(keepFrom, i - 1))
            this.heldCr = false
            this.done = true
            this.state = LINE_START
            return i + 1
          }
          if (this.heldCr) this.keep(CR_BUFFER, 0, 1) // the CR ended the previous chunk
          this.heldCr = false
          this.flagBareLineEnd()
          this.lineLength++
          this.state = IN_LINE
          break
      }
    }
    if (this.state === DOT_CR) {
      // The CR is the last octet: keep it only if no LF follows in the next chunk.
      this.keep(chunk, keepFrom, n - 1)
      this.heldCr = true
    } else this.keep(chunk, keepFrom, n)
    return n
  }

  /**
   * The message once the text is complete (after DATA's end line, or BDAT LAST), or the reason
   * it is refused.
   */
  finish(): { message: Buffer; problem: null } | { message: null; problem: MessageProblem } {
    const problem = this.finalProblem()
    if (problem) return { message: null, problem }
    if (this.file) throw new Error('the text was spooled: use complete()')
    const message = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bytes)
    this.parts = []
    return { message, problem: null }
  }

  /** finish(), reading a spooled text back from its file (one Buffer; the file is removed). */
  async complete(): Promise<{ message: Buffer; problem: null } | { message: null; problem: MessageProblem }> {
    if (!this.file) {
      const done = this.finish()
      await this.discarding
      return done
    }
    const problem = this.finalProblem()
    if (problem) {
      await this.abandon()
      return { message: null, problem }
    }
    const file = this.file
    this.file = null
    try {
      return { message: await file.read(), problem: null }
    } finally {
      await file.discard()
    }
  }

  /** The checks of the end of the text, then the first thing wrong with it, or null. */
  private finalProblem(): MessageProblem | null {
    if (this.state === CR_SEEN) this.flagBareLineEnd() // BDAT text ending in a lone CR
    if (this.state !== LINE_START && this.lineLength > 0) {
      // BDAT text whose last line has no CRLF: measure it too
      if (this.lineLength + 2 > this.limits.maxLineBytes) this.refuse('LINE_TOO_LONG')
      if (this.inHeader) this.addHeaderBytes(this.lineLength)
    }
    return this.problem
  }

  /** Drops the text (a transaction that ended without it); removes a spool file. */
  async abandon(): Promise<void> {
    this.parts = []
    const file = this.file
    this.file = null
    if (file) await file.discard()
    await this.discarding
  }

  private endLine(): void {
    // RFC 5321 4.5.3.1.6: a text line is at most max octets including its CRLF
    if (this.lineLength + 2 > this.limits.maxLineBytes) this.refuse('LINE_TOO_LONG')
    if (this.inHeader) {
      if (this.lineLength === 0)
        this.inHeader = false // the empty line ends the header section
      else this.addHeaderBytes(this.lineLength + 2)
    }
    this.lineLength = 0
    this.state = LINE_START
  }

  private addHeaderBytes(n: number): void {
    this.headerBytes += n
    if (this.headerBytes > this.limits.maxHeaderBytes) this.refuse('HEADER_TOO_BIG')
  }

  private flagBareLineEnd(): void {
    this.refuse('BARE_LINE_END')
  }

  /** Records why the message is refused and frees what was collected: it will not be kept. */
  private refuse(problem: Exclude<MessageProblem, 'TOO_BIG'>): void {
    if (problem === 'BARE_LINE_END') this.bareLineEnd = true
    else if (problem === 'HEADER_TOO_BIG') this.headerTooBig = true
    else this.lineTooLong = true
    this.drop()
  }

  /** Frees what was kept of a refused text: its parts, and its spool file if it has one. */
  private drop(): void {
    this.parts = []
    const file = this.file
    this.file = null
    if (file) this.discarding = file.discard()
  }

  private keep(buf: Buffer, start: number, end: number): void {
    if (end <= start) return
    this.bytes += end - start
    if (this.bareLineEnd || this.headerTooBig || this.lineTooLong) return
    if (this.bytes > this.limits.maxMessageBytes) {
      this.drop()
      return
    }
    const piece = start === 0 && end === buf.length ? buf : buf.subarray(start, end)
    if (this.file) {
      this.file.write(piece)
      return
    }
    this.parts.push(piece)
    if (this.spool && this.bytes > this.spool.thresholdBytes) {
      const file = this.spool.open()
      for (const p of this.parts) file.write(p)
      this.parts = []
      this.file = file
    }
  }
}
