// The live feed's one reader per process: while any socket listens, it reads new events of
// the listening orgs from the events table and hands each to that org's listeners, and it
// relays mailbox change notes from the change bus. Events written by any process reach it:
// it reads on every change note (PostgreSQL LISTEN/NOTIFY, the SQLite change log) and at
// least every feed.poll_ms for events written without one.
// Invariants:
// - Each event reaches each listener at most once (ids handed out are remembered for the
//   look-back window) and in id order within one read.
// - A transaction that commits after a younger one is still seen if it committed within
//   feed.lookback_ms of its events' creation: every read starts that far back.
// - One read at a time; a read asked for during a read runs once right after it.
// - Nothing runs while no socket listens.

import type { Logger } from '../../log/logger.ts'
import type { ChangeBus, ChangeEvent } from '../../store/change-bus.ts'
import type { Store } from '../../store/db.ts'
import type { Clock } from '../../time/clock.ts'
import { eventsAfter, type FeedEvent, idFloor } from './rows.ts'

export interface FeedListener {
  event(e: FeedEvent): void
  change(note: ChangeEvent): void
}

export interface FeedHubOptions {
  store: Store
  bus: ChangeBus
  clock: Clock
  log: Logger
  pollMs: number
  lookbackMs: number
}

export interface FeedHub {
  /** Starts handing `orgId`'s events and changes to `l`; returns the function that stops it. */
  listen(orgId: string, l: FeedListener): () => void
  /** Asks for a read now (tests, and writers in this process that know they wrote). */
  poke(): void
  readonly listeners: number
  close(): Promise<void>
}

const PAGE = 1000
/** Change topics a feed relays (the rest are internal to the workers). */
const RELAYED = new Set(['mail.changed', 'mailbox.changed'])

export function createFeedHub(o: FeedHubOptions): FeedHub {
  const byOrg = new Map<string, Set<FeedListener>>()
  /** Ids handed out, with their creation time, for the look-back window. */
  const seen = new Map<string, number>()
  let count = 0
  let timer: NodeJS.Timeout | null = null
  let unsubscribe: (() => void) | null = null
  let reading: Promise<void> | null = null
  let again = false
  let closed = false

  async function readOnce(): Promise<void> {
    const orgs = [...byOrg.keys()]
    if (orgs.length === 0) return
    const floorMs = o.clock.now() - o.lookbackMs
    for (const [id, t] of seen) if (t < floorMs - 1000) seen.delete(id)
    let after = idFloor(floorMs)
    for (;;) {
      const rows = await eventsAfter(o.store.db, orgs, after, PAGE)
      for (const e of rows) {
        after = e.id
        if (seen.has(e.id)) continue
        seen.set(e.id, e.created_at)
        for (const l of byOrg.get(e.org_id) ?? []) {
          try {
            l.event(e)
          } catch (err) {
            o.log.error({ err }, 'feed listener failed')
          }
        }
      }
      if (rows.length < PAGE) break
    }
  }

  function read(): void {
    if (closed || count === 0) return
    if (reading) {
      again = true
      return
    }
    reading = readOnce()
      .catch((err) => o.log.warn({ err }, 'feed read failed'))
      .finally(() => {
        reading = null
        if (again) {
          again = false
          read()
        }
      })
  }

  function onChange(note: ChangeEvent): void {
    if (note.org_id && RELAYED.has(note.topic))
      for (const l of byOrg.get(note.org_id) ?? []) {
        try {
          l.change(note)
        } catch (err) {
          o.log.error({ err }, 'feed listener failed')
        }
      }
    read()
  }

  function start(): void {
    unsubscribe = o.bus.subscribe('*', onChange)
    timer = setInterval(read, o.pollMs)
    timer.unref()
  }

  function stop(): void {
    unsubscribe?.()
    unsubscribe = null
    if (timer) clearInterval(timer)
    timer = null
    seen.clear()
  }

  return {
    listen(orgId, l) {
      if (closed) throw new Error('the feed hub is closed')
      const set = byOrg.get(orgId) ?? new Set<FeedListener>()
      byOrg.set(orgId, set)
      set.add(l)
      count++
      if (count === 1) start()
      let done = false
      return () => {
        if (done) return
        done = true
        set.delete(l)
        if (set.size === 0) byOrg.delete(orgId)
        count--
        if (count === 0) stop()
      }
    },
    poke: read,
    get listeners() {
      return count
    },
    async close() {
      closed = true
      stop()
      byOrg.clear()
      count = 0
      await reading
    },
  }
}
