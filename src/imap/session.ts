// One IMAP session (RFC 9051 3): its state (not authenticated, authenticated, selected,
// logout), the read loop that takes one command at a time from the framer and runs its
// module (commands/index.ts), the literal decisions (accept, stream for APPEND, refuse), and
// the untagged updates a client is owed when its selected folder changed elsewhere.
// Invariants:
// - Commands run one at a time, in order; the next is not read until the last one's tagged
//   response was written and flushed (a client that stops reading stops being read).
// - Input is bounded: the socket is paused while the framer holds more than INPUT_HIGH_WATER.
// - Updates (EXPUNGE, EXISTS, FETCH FLAGS) are only sent at the end of a command, or during
//   IDLE; EXPUNGE never while a FETCH, STORE or SEARCH by sequence number runs.
// - Secrets never reach the log: commands are logged by verb only.

import { randomBytes } from 'node:crypto'
import type { MailAccount } from '../services/mail-login/login.ts'
import { changesSince, claimRecent, flagsOf, type MailAccountRef } from '../services/mailstore/folder-view.ts'
import type { CommandCall, ImapCommand, LiteralHandler, LiteralStream } from './command.ts'
import { COMMANDS } from './commands/index.ts'
import { writeFlags } from './commands/select.ts'
import type { ImapConnection } from './connection.ts'
import type { ImapContext } from './context.ts'
import { imapFlags } from './flags.ts'
import { continuation, flagList, tagged, untagged, untaggedStatus } from './protocol/encoder.ts'
import { CommandFramer, type Frame } from './protocol/framing.ts'
import { ArgReader, ImapSyntaxError } from './protocol/parser.ts'
import { atom, type ImapValue } from './protocol/values.ts'
import { failureOf } from './replies.ts'
import type { SelectedFolder } from './selected.ts'
import { uidSetText } from './sequence.ts'

export type SessionState = 'not-authenticated' | 'authenticated' | 'selected' | 'logout'

/** Commands after which the selected folder is always re-read (they wrote to the store, or ask for news). */
const SYNC_AFTER = new Set([
  'NOOP',
  'CHECK',
  'COPY',
  'MOVE',
  'STORE',
  'EXPUNGE',
  'IDLE',
  'CREATE',
  'RENAME',
  'DELETE',
])

/** Largest command with its literals before log-in (a name and a password fit). */
const PRE_AUTH_COMMAND_BYTES = 8192

/** Framer bytes above which we stop reading the socket. */
const INPUT_HIGH_WATER = 512 * 1024

export interface SessionInfo {
  id: string
  ip: string
  port: number
}

export interface SessionHooks {
  /** The session logged in (joins the change fan-out of its mailbox). */
  onLogin(s: ImapSession): void
  onClose(s: ImapSession): void
}

export class ImapSession {
  readonly ctx: ImapContext
  readonly conn: ImapConnection
  readonly info: SessionInfo
  readonly log: ImapContext['log']
  state: SessionState = 'not-authenticated'
  account: MailAccount | null = null
  selected: SelectedFolder | null = null
  /** CONDSTORE is on (RFC 7162 3.1: ENABLE, or the first command that uses a MODSEQ). */
  condstore = false
  /** QRESYNC is enabled (RFC 7162 3.2.3): VANISHED replaces EXPUNGE. */
  qresync = false
  /**
   * IMAP4rev2 is enabled (RFC 9051): no \Recent or RECENT, SEARCH answers with ESEARCH,
   * SELECT lists the mailbox, mailbox names travel as UTF-8.
   */
  rev2 = false
  /** Set when the store said this mailbox changed; the next chance to report clears it. */
  private dirty = false
  private errors = 0
  private readonly framer: CommandFramer
  private wake: (() => void) | null = null
  private readonly hooks: SessionHooks
  /** While IDLE runs: called when the mailbox changed. */
  private onChange: (() => void) | null = null
  private shuttingDown = false

  constructor(ctx: ImapContext, conn: ImapConnection, info: SessionInfo, hooks: SessionHooks) {
    this.ctx = ctx
    this.conn = conn
    this.info = info
    this.hooks = hooks
    this.log = ctx.log.child({ cid: info.id })
    this.framer = new CommandFramer({ maxLineBytes: ctx.settings.max_line_bytes })
  }

  static newId(): string {
    return `imap_${randomBytes(9).toString('base64url')}`
  }

  get ref(): MailAccountRef {
    const a = this.account
    if (!a) throw new Error('not logged in')
    return { mailbox_id: a.mailbox_id, org_id: a.org_id, address: a.address }
  }

  get isTls(): boolean {
    return this.conn.tls !== null
  }

  /** LOGIN and AUTHENTICATE PLAIN are allowed: over TLS or from a trusted address. */
  get plaintextOk(): boolean {
    return this.isTls || this.ctx.plaintextAllowed(this.info.ip)
  }

  capabilities(): string[] {
    const caps = ['IMAP4rev1', 'IMAP4rev2', 'LITERAL+', 'SASL-IR', 'ID', 'ENABLE', 'IDLE', 'NAMESPACE']
    if (this.state === 'not-authenticated') {
      if (!this.isTls && this.ctx.tls()) caps.push('STARTTLS')
      if (this.plaintextOk) caps.push('AUTH=PLAIN')
      else caps.push('LOGINDISABLED')
      return caps
    }
    caps.push(
      'UIDPLUS',
      'MOVE',
      'SPECIAL-USE',
      'CHILDREN',
      'UNSELECT',
      'CONDSTORE',
      'QRESYNC',
      'STATUS=SIZE',
      'ESEARCH',
      'LIST-EXTENDED',
      'LIST-STATUS',
      'BINARY',
      'SORT',
      'SORT=DISPLAY',
      'THREAD=REFERENCES',
      'QUOTA',
      'QUOTA=RES-STORAGE',
      `APPENDLIMIT=${this.ctx.settings.max_message_bytes}`,
    )
    return caps
  }

  // --- output -------------------------------------------------------------------------------

  write(data: Buffer): void {
    this.conn.write(data)
  }

  untagged(...parts: ImapValue[]): void {
    this.conn.write(untagged(...parts))
  }

  status(kind: 'OK' | 'NO' | 'BAD' | 'BYE', text: string, code?: string): void {
    this.conn.write(untaggedStatus(kind, text, code))
  }

  /** A continuation request goes out at once: the client waits for it. */
  continue(text: string): void {
    this.conn.write(continuation(text))
    this.conn.uncork()
  }

  /** Waits while the client is behind on reading (bounded output per connection). */
  flush(): Promise<void> {
    return this.conn.flush()
  }

  // --- life ---------------------------------------------------------------------------------

  async run(): Promise<void> {
    this.status('OK', 'Postern IMAP ready.', `CAPABILITY ${this.capabilities().join(' ')}`)
    // Log-in must happen within the time, whatever the client sends meanwhile.
    const deadline = setTimeout(() => {
      if (!this.account && !this.conn.isClosed) this.timeout()
    }, this.ctx.settings.login_timeout_ms)
    deadline.unref()
    this.conn.setIdleTimeout(this.ctx.settings.login_timeout_ms, () => this.timeout())
    try {
      await this.loop()
    } catch (err) {
      this.log.error({ err }, 'IMAP session failed')
      this.conn.end()
    }
  }

  onData(chunk: Buffer): void {
    this.framer.feed(chunk)
    if (this.framer.buffered > INPUT_HIGH_WATER) this.conn.pause()
    this.kick()
  }

  onEnd(): void {
    this.conn.end()
  }

  onClosed(): void {
    this.state = 'logout'
    this.kick()
    this.hooks.onClose(this)
  }

  /** True when the store said the mailbox changed since this session last looked. */
  get stale(): boolean {
    return this.dirty
  }

  /** The store says this session's mailbox changed. */
  changed(): void {
    this.dirty = true
    this.onChange?.()
  }

  /** Server shutdown: BYE now when idle, else after the running command. */
  shutdown(): void {
    this.shuttingDown = true
    if (this.onChange || this.wake) {
      this.status('BYE', 'Server shutting down.')
      this.conn.end()
    }
  }

  /** Ends the session at once with BYE (the mailbox's UIDs were reset, ...). */
  drop(text: string): void {
    this.status('BYE', text)
    this.conn.end()
    this.state = 'logout'
  }

  private timeout(): void {
    this.status('BYE', this.account ? 'Idle for too long; log in again.' : 'Log-in took too long.')
    this.conn.end()
  }

  private kick(): void {
    const w = this.wake
    this.wake = null
    w?.()
  }

  /** Waits for input; false when the connection is gone. */
  private async more(): Promise<boolean> {
    if (this.conn.isClosed) return false
    this.conn.resume()
    await new Promise<void>((resolve) => {
      this.wake = resolve
    })
    return !this.conn.isClosed
  }

  private async loop(): Promise<void> {
    while (!this.conn.isClosed && this.state !== 'logout') {
      const frame = this.framer.take()
      if (!frame) {
        if (this.shuttingDown) {
          this.status('BYE', 'Server shutting down.')
          this.conn.end()
          return
        }
        if (!(await this.more())) return
        continue
      }
      if (this.framer.buffered <= INPUT_HIGH_WATER) this.conn.resume()
      this.conn.cork()
      await this.handle(frame)
      await this.flush()
    }
  }

  private async handle(frame: Frame): Promise<void> {
    if (frame.kind === 'too-long') {
      this.bad(frame.tag, 'Command line too long.', 'TOOBIG')
      return
    }
    if (frame.kind === 'literal') {
      await this.literal(frame)
      return
    }
    await this.command(frame.raw)
  }

  /** Parses the start of a command: tag, verb, UID. */
  private head(
    raw: Buffer,
  ): { call: CommandCall; command: ImapCommand } | { error: string; tag: string | null } {
    const r = new ArgReader(raw)
    let tag: string
    try {
      tag = r.tag()
    } catch {
      return { error: 'Error in IMAP command: no tag.', tag: null }
    }
    try {
      r.space()
      let name = r.keyword()
      let uid = false
      if (name === 'UID') {
        r.space()
        name = r.keyword()
        uid = true
      }
      const command = COMMANDS.get(name)
      if (!command || (uid && !command.uidForm))
        return { error: `Unknown command ${uid ? 'UID ' : ''}${name}.`, tag }
      return { call: { tag, name, uid, args: r }, command }
    } catch (err) {
      return { error: err instanceof ImapSyntaxError ? err.message : 'Error in IMAP command.', tag }
    }
  }

  private async literal(frame: Extract<Frame, { kind: 'literal' }>): Promise<void> {
    const head = this.head(frame.prefix)
    if ('call' in head && head.command.literal && head.command.states.includes(this.state)) {
      const { call, command } = head
      let handler: LiteralHandler | null
      try {
        handler = await (command.literal as NonNullable<ImapCommand['literal']>)(this, call, frame)
      } catch (err) {
        this.framer.refuse()
        this.fail(call.tag, err)
        return
      }
      if (handler) {
        await this.streamLiteral(frame, call, handler)
        return
      }
    }
    // An ordinary literal: part of the command, bounded by max_command_bytes (8 KiB before log-in).
    const cap = this.account ? this.ctx.settings.max_command_bytes : PRE_AUTH_COMMAND_BYTES
    if (this.framer.commandBytes + frame.size > cap) {
      this.framer.refuse()
      this.bad('call' in head ? head.call.tag : head.tag, 'Literal too large.', 'TOOBIG')
      return
    }
    this.framer.accept()
    if (!frame.nonSync) this.continue('Ready for literal data')
  }

  private async streamLiteral(
    frame: Extract<Frame, { kind: 'literal' }>,
    call: CommandCall,
    handler: LiteralHandler,
  ): Promise<void> {
    this.framer.stream()
    if (!frame.nonSync) this.continue('Ready for literal data')
    let left = frame.size
    const literal: LiteralStream = {
      size: frame.size,
      next: async () => {
        while (left > 0) {
          const piece = this.framer.takeStream()
          if (piece && piece.length > 0) {
            left -= piece.length
            if (this.framer.buffered <= INPUT_HIGH_WATER) this.conn.resume()
            return piece
          }
          if (!(await this.more())) throw new Error('connection closed during a literal')
        }
        return null
      },
    }
    // The rest of the command after the literal: the next frame must be its end.
    const rest = async (): Promise<ArgReader | null> => {
      for (;;) {
        const f = this.framer.take()
        if (f?.kind === 'command') {
          const r = new ArgReader(f.raw, f.streamedAt ?? 0)
          return r
        }
        if (f?.kind === 'literal') {
          this.framer.refuse()
          throw new ImapSyntaxError('Only one message per APPEND.')
        }
        if (f?.kind === 'too-long') throw new ImapSyntaxError('Command line too long.')
        if (!(await this.more())) return null
      }
    }
    try {
      const done = await handler.take(literal, rest)
      if (this.conn.isClosed) return
      if (this.selected) await this.sync(true)
      this.reply(call.tag, 'OK', done?.text ?? `${call.name} completed.`, done?.code)
    } catch (err) {
      if (left > 0) this.framer.abandonStream()
      if (this.conn.isClosed) return
      this.fail(call.tag, err)
    }
  }

  private async command(raw: Buffer): Promise<void> {
    if (raw.length === 0) return // an empty line: ignored, as Dovecot does
    const head = this.head(raw)
    if ('error' in head) {
      this.bad(head.tag, head.error)
      return
    }
    await this.exec(head.command, head.call)
  }

  /** Runs a parsed command and writes its tagged response (APPEND calls this after its literal). */
  async exec(command: ImapCommand, call: CommandCall): Promise<void> {
    if (!command.states.includes(this.state)) {
      this.bad(call.tag, this.state === 'not-authenticated' ? 'Log in first.' : 'Not valid in this state.')
      return
    }
    try {
      const done = await command.run(this, call)
      if (this.state === 'logout' || done?.answered) return
      // Changes made elsewhere arrive as bus notes (dirty); this session's own writes are read
      // back at once, before the tagged OK, so the client sees them in order.
      if (this.selected && (this.dirty || SYNC_AFTER.has(call.name)))
        await this.sync(command.expungeOk ? command.expungeOk(call) : true)
      this.reply(call.tag, 'OK', done?.text ?? `${call.uid ? 'UID ' : ''}${call.name} completed.`, done?.code)
    } catch (err) {
      this.fail(call.tag, err)
    }
  }

  private fail(tag: string, err: unknown): void {
    const f = failureOf(err)
    if (f.unexpected) this.log.error({ err }, 'IMAP command failed')
    if (f.status === 'BAD') this.bad(tag, f.text)
    else this.reply(tag, 'NO', f.text, f.code ?? undefined)
  }

  reply(tag: string, status: 'OK' | 'NO' | 'BAD', text: string, code?: string): void {
    this.conn.write(tagged(tag, status, text, code))
  }

  private bad(tag: string | null, text: string, code?: string): void {
    if (tag) this.reply(tag, 'BAD', text, code)
    else this.status('BAD', text, code)
    this.errors++
    if (this.errors >= this.ctx.settings.max_errors) {
      this.status('BYE', 'Too many bad commands.')
      this.conn.end()
      this.state = 'logout'
    }
  }

  // --- states -------------------------------------------------------------------------------

  loggedIn(account: MailAccount): void {
    this.account = account
    this.state = 'authenticated'
    this.conn.setIdleTimeout(this.ctx.settings.idle_timeout_ms, () => this.timeout())
    this.hooks.onLogin(this)
  }

  /** Replaces the selected folder (SELECT/EXAMINE) or leaves it (CLOSE, UNSELECT: null). */
  setSelected(folder: SelectedFolder | null): void {
    this.selected = folder
    this.state = folder ? 'selected' : 'authenticated'
    this.dirty = false
  }

  logout(): void {
    this.state = 'logout'
  }

  /** Drops what was read before the TLS handshake (RFC 9051 6.2.1). */
  resetInput(): void {
    this.framer.reset()
  }

  /** One raw line from the client (IDLE's DONE, AUTHENTICATE responses); null: connection gone. */
  async readLine(): Promise<Buffer | null> {
    for (;;) {
      const line = this.framer.takeLine()
      if (line) return line
      if (!(await this.more())) return null
    }
  }

  /**
   * IDLE (RFC 2177): reports changes as they happen until the client sends DONE. Returns false
   * when the client sent something else.
   */
  async idle(): Promise<boolean> {
    let pending: Promise<void> = Promise.resolve()
    const report = () => {
      pending = pending.then(async () => {
        if (this.selected && this.dirty && !this.conn.isClosed) await this.sync(true)
      })
      void pending.catch((err) => this.log.warn({ err }, 'IDLE update failed'))
    }
    this.onChange = report
    try {
      if (this.dirty) report()
      const line = await this.readLine()
      this.onChange = null
      // Every update started during IDLE ends before the tagged OK (none may run into the next command).
      let p: Promise<void>
      do {
        p = pending
        await p.catch(() => {})
      } while (p !== pending)
      return line !== null && line.toString('latin1').trim().toUpperCase() === 'DONE'
    } finally {
      this.onChange = null
    }
  }

  /** Whether to show \Recent on a message (never under IMAP4rev2, which dropped it). */
  recent(sel: SelectedFolder, uid: number): boolean {
    return !this.rev2 && sel.isRecent(uid)
  }

  /** Announces keywords the client has not been told about yet (FLAGS, PERMANENTFLAGS) before they are used. */
  announce(flags: Iterable<string>): void {
    const sel = this.selected
    if (!sel) return
    let fresh = false
    for (const f of flags)
      if (!f.startsWith('\\') && !sel.keywords.has(f)) {
        sel.keywords.add(f)
        fresh = true
      }
    if (fresh) writeFlags(this, sel)
  }

  /**
   * Reports messages gone from the selected folder: EXPUNGE per sequence number (in the order
   * given, each right when sent), or one VANISHED with their UIDs once QRESYNC is on.
   */
  reportExpunged(seqs: readonly number[], uids: readonly number[]): void {
    if (seqs.length === 0) return
    if (this.qresync) this.write(Buffer.from(`* VANISHED ${uidSetText([...uids].sort((a, b) => a - b))}\r\n`))
    else for (const seq of seqs) this.untagged(seq, atom('EXPUNGE'))
  }

  /** Reads what changed in the selected folder and tells the client (EXPUNGE, EXISTS, FETCH). */
  async sync(expunges: boolean, skipFlagsOf: ReadonlySet<number> = new Set()): Promise<void> {
    const sel = this.selected
    if (!sel) return
    this.dirty = false
    const changes = await changesSince(this.ctx.mail.store.db, this.ref, sel.folder.id, sel.modseq)
    if (!changes) {
      // Deleted (by another session or the API): nothing this session knows holds any more.
      this.drop('The selected folder was deleted; reconnect.')
      return
    }
    sel.absorb(changes)
    const u = sel.takeUpdates(expunges)
    if (u.added.length && !sel.readOnly)
      sel.markRecent(await claimRecent(this.ctx.mail, this.ref, sel.folder.id, u.added))
    this.reportExpunged(u.expunged, u.vanishedUids)
    if (u.exists !== null) this.untagged(u.exists, atom('EXISTS'))
    if ((u.recent !== null || u.exists !== null) && !this.rev2) this.untagged(sel.recent, atom('RECENT'))
    const changed = u.flagsChanged.filter((uid) => !skipFlagsOf.has(uid))
    if (changed.length) {
      const seqs = changed.map((uid) => sel.seqOf(uid)).filter((n) => n > 0)
      const ids = seqs.map((n) => sel.messageIdAt(n))
      const flags = await flagsOf(this.ctx.mail.store.db, this.ref.org_id, ids)
      for (const f of flags.values()) this.announce(f)
      for (const seq of seqs.sort((x, y) => x - y)) {
        const uid = sel.uidAt(seq)
        const f = imapFlags(flags.get(sel.messageIdAt(seq)) ?? [], this.recent(sel, uid))
        const items: ImapValue[] = [atom('UID'), uid, atom('FLAGS'), flagList(f)]
        if (this.condstore) items.push(atom('MODSEQ'), [sel.modseqAt(seq)])
        this.untagged(seq, atom('FETCH'), items)
      }
    }
    await this.flush()
  }
}
