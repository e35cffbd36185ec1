// The change-event bus: tells every process sharing the database that something changed
// (a domain was added by the CLI, a message arrived, a queue item is due), so caches refresh
// and live feeds update. It carries hints, not data of record: receivers re-read the database.
//
// PostgreSQL: publish() is pg_notify inside the caller's transaction (delivered on commit);
// each process LISTENs on a channel named after its schema, so installations (and parallel
// test schemas) sharing a server never hear each other.
// SQLite: publish() appends to the `changes` table in the caller's transaction; each process
// polls `PRAGMA data_version` (which moves only when another connection commits) and reads rows
// past its cursor. Its own writes are picked up by an immediate poll after publishing. The
// poll takes the connection mutex, so it never sees a row of an uncommitted transaction.
// Invariant: on one process, events are delivered in commit order, each once.

import { type Kysely, sql, type Transaction } from 'kysely'
import type pg from 'pg'
import type { Logger } from '../log/logger.ts'
import type { Store } from './db.ts'
import type { Database } from './schema.ts'

export interface ChangeEvent {
  topic: string
  org_id: string | null
  data: Record<string, unknown>
}

export type ChangeHandler = (event: ChangeEvent) => void

export interface ChangeBus {
  /** Queues a change for delivery when `ex`'s transaction commits (at once outside one). */
  publish(ex: Kysely<Database> | Transaction<Database>, event: ChangeEvent): Promise<void>
  /** Subscribes to one topic, or '*' for every topic; returns the unsubscribe function. */
  subscribe(topic: string, handler: ChangeHandler): () => void
  start(): Promise<void>
  close(): Promise<void>
}

export interface ChangeBusOptions {
  store: Store
  log: Logger
  pollMs: number
  now: () => number
}

const MAX_NOTIFY_BYTES = 7900 // pg_notify payloads must stay under 8000 bytes

export function channelName(schema: string): string {
  return `postern_changes_${schema}`.slice(0, 63)
}

export function createChangeBus(opts: ChangeBusOptions): ChangeBus {
  const handlers = new Map<string, Set<ChangeHandler>>()
  const deliver = (event: ChangeEvent) => {
    for (const key of [event.topic, '*'])
      for (const h of handlers.get(key) ?? []) {
        try {
          h(event)
        } catch (err) {
          opts.log.error({ err, topic: event.topic }, 'change handler failed')
        }
      }
  }
  const subscribe = (topic: string, handler: ChangeHandler) => {
    const set = handlers.get(topic) ?? new Set<ChangeHandler>()
    handlers.set(topic, set)
    set.add(handler)
    return () => {
      set.delete(handler)
    }
  }
  return opts.store.dialect === 'postgres'
    ? postgresBus(opts, deliver, subscribe)
    : sqliteBus(opts, deliver, subscribe)
}

function postgresBus(
  opts: ChangeBusOptions,
  deliver: ChangeHandler,
  subscribe: ChangeBus['subscribe'],
): ChangeBus {
  const { url, schema } = opts.store.postgres as { url: string; schema: string }
  const channel = channelName(schema)
  let client: pg.Client | null = null
  let closed = false
  let retry: NodeJS.Timeout | null = null

  async function connect(): Promise<void> {
    // Loaded on first use, so a SQLite installation never loads pg.
    const { newPostgresClient, quoteIdent } = await import('./dialect/postgres.ts')
    const c = newPostgresClient({ url, schema, poolSize: 1 })
    c.on('notification', (msg) => {
      if (msg.channel !== channel || !msg.payload) return
      try {
        deliver(JSON.parse(msg.payload) as ChangeEvent)
      } catch (err) {
        opts.log.warn({ err }, 'unreadable change notification')
      }
    })
    c.on('error', (err) => {
      opts.log.warn({ err }, 'change bus connection lost; reconnecting')
      client = null
      c.end().catch(() => {})
      if (!closed) retry = setTimeout(() => connect().catch(() => {}), 1000)
    })
    await c.connect()
    await c.query(`LISTEN ${quoteIdent(channel)}`)
    client = c
  }

  return {
    subscribe,
    async publish(ex, event) {
      let payload = JSON.stringify(event)
      if (Buffer.byteLength(payload) > MAX_NOTIFY_BYTES)
        payload = JSON.stringify({ ...event, data: { truncated: true } } satisfies ChangeEvent)
      await sql`select pg_notify(${channel}, ${payload})`.execute(ex)
    },
    start: connect,
    async close() {
      closed = true
      if (retry) clearTimeout(retry)
      await client?.end().catch(() => {})
      client = null
    },
  }
}

function sqliteBus(
  opts: ChangeBusOptions,
  deliver: ChangeHandler,
  subscribe: ChangeBus['subscribe'],
): ChangeBus {
  const db = opts.store.db
  let cursor = 0
  let dataVersion = -1
  let dirty = false
  let polling: Promise<void> | null = null
  let timer: NodeJS.Timeout | null = null
  let closed = false

  async function readVersion(): Promise<number> {
    const r = await sql<{ data_version: number }>`PRAGMA data_version`.execute(db)
    return Number(r.rows[0]?.data_version ?? 0)
  }

  async function pollOnce(): Promise<void> {
    const version = await readVersion()
    if (version === dataVersion && !dirty) return
    dataVersion = version
    dirty = false
    for (;;) {
      const rows = await db
        .selectFrom('changes')
        .select(['seq', 'topic', 'org_id', 'payload'])
        .where('seq', '>', cursor)
        .orderBy('seq')
        .limit(500)
        .execute()
      for (const row of rows) {
        cursor = row.seq
        deliver({ topic: row.topic, org_id: row.org_id, data: JSON.parse(row.payload) })
      }
      if (rows.length < 500) break
    }
  }

  function poll(): Promise<void> {
    if (closed) return Promise.resolve()
    polling ??= pollOnce()
      .catch((err) => opts.log.warn({ err }, 'change poll failed'))
      .finally(() => {
        polling = null
      })
    return polling
  }

  return {
    subscribe,
    async publish(ex, event) {
      await ex
        .insertInto('changes')
        .values({
          topic: event.topic,
          org_id: event.org_id,
          payload: JSON.stringify(event.data),
          created_at: opts.now(),
        })
        .execute()
      dirty = true
      // Poll once the caller's transaction has released the connection.
      setImmediate(() => {
        poll().then(() => {
          if (dirty) poll()
        })
      })
    },
    async start() {
      const r = await db
        .selectFrom('changes')
        .select(sql<number>`coalesce(max(seq), 0)`.as('max'))
        .executeTakeFirst()
      cursor = Number(r?.max ?? 0)
      dataVersion = await readVersion()
      timer = setInterval(() => void poll(), opts.pollMs)
      timer.unref()
    },
    async close() {
      closed = true
      if (timer) clearInterval(timer)
      await polling
    },
  }
}

/** Deletes change-log rows older than `maxAgeMs` (a job; PostgreSQL never writes them). */
export async function pruneChanges(store: Store, olderThan: number): Promise<number> {
  const r = await store.db.deleteFrom('changes').where('created_at', '<', olderThan).executeTakeFirst()
  return Number(r.numDeletedRows)
}
