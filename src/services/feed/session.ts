// One live-feed connection, apart from its socket: replays what the caller missed after a
// cursor, then passes on live events and mailbox changes the caller may see (scope.ts) and
// asked for (types), each once. The socket side (http/routes/feed.ts) gives it a transport.
// Frames sent (JSON text):
//   {type:'event', cursor, event}  an event; cursor is its id, to resume after it
//   {type:'change', cursor, topic, mailbox_id, what, folder?}  a mailbox's mail or settings changed
//   {type:'ready', cursor, replayed}  the replay is over, live from here
//   {type:'pong'}  the answer to {type:'ping'}
//   {type:'error', code, detail}  sent just before a close with a 44xx code
// Frames taken: {resume: <event id>} (first frame, when no ?cursor was given), {type:'ping'}.
// Invariants:
// - An event is sent at most once per connection, and only if it is newer than the cursor
//   the connection started from (or resumed at).
// - Unsent bytes never grow past maxBuffered: a consumer that falls behind is closed with 4429.
// - Live events arriving during a replay wait in a bounded queue and are sent after it.

import type { ChangeEvent } from '../../store/change-bus.ts'
import type { Store } from '../../store/db.ts'
import type { Clock } from '../../time/clock.ts'
import { isEventType } from '../events/types.ts'
import type { FeedHub } from './hub.ts'
import { CURSOR, eventsAfter, eventView, type FeedEvent, idTime, latestEventId } from './rows.ts'
import type { FeedScope } from './scope.ts'

/** Close codes of the feed (4000-4999 are for applications, RFC 6455 7.4.2). */
export const FEED_CLOSE = {
  invalidFrame: 4400,
  unauthorized: 4401,
  slowConsumer: 4429,
} as const

export interface FeedTransport {
  send(text: string): void
  /** Bytes queued on the socket and not yet sent. */
  buffered(): number
  close(code: number, reason: string): void
}

export interface FeedSessionOptions {
  store: Store
  hub: FeedHub
  clock: Clock
  scope: FeedScope
  /** Null: every type. */
  types: TypeFilter | null
  changes: boolean
  maxBuffered: number
  transport: FeedTransport
}

export type TypeFilter = (type: string) => boolean

/** `email.delivered,email.*` into a filter, or the names that are not event types. */
export function parseTypeFilter(text: string): { filter: TypeFilter } | { unknown: string[] } {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const exact = new Set<string>()
  const prefixes: string[] = []
  const unknown: string[] = []
  for (const p of parts) {
    if (/^[a-z_]+\.\*$/.test(p)) prefixes.push(p.slice(0, -1))
    else if (isEventType(p)) exact.add(p)
    else unknown.push(p)
  }
  if (unknown.length > 0 || parts.length === 0) return { unknown: unknown.length ? unknown : [text] }
  return { filter: (t) => exact.has(t) || prefixes.some((x) => t.startsWith(x)) }
}

/** Null when `cursor` may be resumed from, else why not. */
export function cursorProblem(cursor: string, now: number): string | null {
  if (!CURSOR.test(cursor))
    return `'${cursor.slice(0, 60)}' is not an event id (evt_ and 26 letters and digits); resume from the cursor of a message the feed sent`
  if (idTime(cursor) > now + 300_000) return `'${cursor}' is an event id from the future`
  return null
}

const PAGE = 500
const MAX_PENDING = 10_000
const SENT_MEMORY = 10_000

export interface FeedSession {
  /** Replays after `cursor` (null: from now), then goes live. */
  start(cursor: string | null): Promise<void>
  /** A text frame from the client. */
  frame(text: string): Promise<void>
  /** Sends an error frame and closes with `code`. */
  end(code: number, errorCode: string, detail: string): void
  stop(): void
}

export function createFeedSession(o: FeedSessionOptions): FeedSession {
  const sent = new Map<string, true>()
  let pending: FeedEvent[] | null = []
  let floor = ''
  let last = ''
  let stopped = false
  let resumable = true
  let unlisten: (() => void) | null = null

  const send = (frame: Record<string, unknown>): boolean => {
    if (stopped) return false
    o.transport.send(JSON.stringify(frame))
    if (o.transport.buffered() > o.maxBuffered) {
      fail(
        FEED_CLOSE.slowConsumer,
        'SLOW_CONSUMER',
        'the client read too slowly; reconnect with the last cursor',
      )
      return false
    }
    return true
  }

  function fail(code: number, errorCode: string, detail: string): void {
    if (stopped) return
    o.transport.send(JSON.stringify({ type: 'error', code: errorCode, detail }))
    stop()
    o.transport.close(code, errorCode)
  }

  /** Sends `e` if this connection should have it; true when sent. */
  function deliver(e: FeedEvent): boolean {
    if (e.id <= floor || sent.has(e.id)) return false
    if (!o.scope.sees(e.org_id, e.mailbox_id)) return false
    if (o.types && !o.types(e.type)) return false
    sent.set(e.id, true)
    if (sent.size > SENT_MEMORY) sent.delete(sent.keys().next().value as string)
    if (e.id > last) last = e.id
    return send({ type: 'event', cursor: e.id, event: eventView(e) })
  }

  function change(note: ChangeEvent): void {
    if (!o.changes || pending) return
    const mailbox = note.data.mailbox_id
    if (typeof mailbox !== 'string' || !o.scope.sees(note.org_id ?? '', mailbox)) return
    if (note.topic === 'mailbox.changed') void o.scope.refresh()
    send({
      type: 'change',
      cursor: last,
      topic: note.topic,
      mailbox_id: mailbox,
      what: typeof note.data.what === 'string' ? note.data.what : null,
      ...(typeof note.data.folder === 'string' ? { folder: note.data.folder } : {}),
    })
  }

  /** Waits until the socket has sent most of what is queued (a replay never outruns the reader). */
  async function drained(): Promise<boolean> {
    const until = o.clock.now() + 30_000
    while (!stopped && o.transport.buffered() > o.maxBuffered / 2) {
      if (o.clock.now() > until) {
        fail(
          FEED_CLOSE.slowConsumer,
          'SLOW_CONSUMER',
          'the client read too slowly; reconnect with the last cursor',
        )
        return false
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    return !stopped
  }

  async function replay(after: string): Promise<number> {
    let n = 0
    let at = after
    for (;;) {
      const rows = await eventsAfter(o.store.db, [o.scope.orgId], at, PAGE)
      for (const e of rows) {
        if (o.transport.buffered() > o.maxBuffered / 2 && !(await drained())) return n
        if (deliver(e)) n++
        at = e.id
      }
      if (rows.length < PAGE) break
    }
    return n
  }

  function stop(): void {
    stopped = true
    pending = null
    unlisten?.()
    unlisten = null
  }

  return {
    async start(cursor) {
      unlisten = o.hub.listen(o.scope.orgId, {
        event: (e) => {
          if (pending) {
            if (pending.length >= MAX_PENDING)
              fail(
                FEED_CLOSE.slowConsumer,
                'SLOW_CONSUMER',
                'too many events arrived during the replay; reconnect with the last cursor',
              )
            else pending.push(e)
          } else deliver(e)
        },
        change,
      })
      if (cursor) resumable = false
      floor = cursor ?? (await latestEventId(o.store.db, o.scope.orgId))
      last = floor
      const replayed = cursor ? await replay(cursor) : 0
      if (stopped) return
      const queued = pending ?? []
      pending = null
      for (const e of queued) deliver(e)
      send({ type: 'ready', cursor: last, replayed })
      o.hub.poke()
    },
    async frame(text) {
      let msg: unknown
      try {
        msg = JSON.parse(text)
      } catch {
        return fail(
          FEED_CLOSE.invalidFrame,
          'INVALID_FRAME',
          'frames must be JSON: {"resume": "<event id>"} or {"type": "ping"}',
        )
      }
      const m = msg as Record<string, unknown> | null
      const first = resumable
      resumable = false
      if (m && typeof m === 'object' && m.type === 'ping') {
        send({ type: 'pong' })
        return
      }
      if (m && typeof m === 'object' && 'resume' in m) {
        if (!first)
          return fail(
            FEED_CLOSE.invalidFrame,
            'RESUME_NOT_ALLOWED',
            'resume only as the first frame of a connection opened without ?cursor',
          )
        const c = m.resume
        const why =
          typeof c === 'string' ? cursorProblem(c, o.clock.now()) : 'resume must be an event id string'
        if (why) return fail(FEED_CLOSE.invalidFrame, 'INVALID_CURSOR', why)
        const cursor = c as string
        if (cursor < floor) floor = cursor
        const replayed = await replay(cursor)
        send({ type: 'ready', cursor: last, replayed })
        return
      }
      fail(
        FEED_CLOSE.invalidFrame,
        'INVALID_FRAME',
        'unknown frame; send {"resume": "<event id>"} or {"type": "ping"}',
      )
    },
    end: fail,
    stop,
  }
}
