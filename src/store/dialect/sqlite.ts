// Kysely over node:sqlite (built in; no native addon). Owns the one SQLite connection of a
// process. Invariants:
// - One query or transaction at a time on the connection (a mutex): node:sqlite is
//   synchronous, and an interleaved `begin` from a second caller would join the first's
//   transaction.
// - Write transactions start with BEGIN IMMEDIATE, so several processes on one file queue on
//   the busy timeout instead of failing with SQLITE_BUSY at their first write.
// - WAL, foreign keys, synchronous=NORMAL plus wal-sync.ts: every write (a committed
//   transaction, or a write statement outside one) resolves only after an fdatasync of the WAL
//   made on the thread pool, so it survives power loss as with synchronous=FULL, without the
//   fsync blocking the event loop. The connection is free for the next caller during the sync.

import { DatabaseSync, type StatementSync } from 'node:sqlite'
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely'
import type { WalSync } from './wal-sync.ts'

export interface SqliteOptions {
  path: string
  busyTimeoutMs: number
}

/** Opens the file and applies the pragmas every Postern connection relies on. */
export function openSqlite(opts: SqliteOptions): DatabaseSync {
  // SQLite's own busy handler would sleep on the event loop: the driver retries instead
  // (Lease.#runOutside), waiting with timers, up to opts.busyTimeoutMs.
  const db = new DatabaseSync(opts.path, { timeout: 0 })
  db.exec('PRAGMA busy_timeout = 0')
  db.exec('PRAGMA journal_mode = WAL')
  // Durability comes from wal-sync.ts: the driver waits for an fdatasync of the WAL after
  // each write, off the event loop.
  db.exec('PRAGMA synchronous = NORMAL')
  db.exec('PRAGMA foreign_keys = ON')
  return db
}

const MAX_BUSY_WAIT_MS = 8
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** SQLITE_BUSY (5) and its extended codes: another connection holds the lock. */
function isBusy(err: unknown): boolean {
  const code = (err as { errcode?: unknown }).errcode
  return typeof code === 'number' && (code & 0xff) === 5
}

class Mutex {
  #tail: Promise<void> = Promise.resolve()
  lock(): Promise<() => void> {
    let release!: () => void
    const next = new Promise<void>((r) => {
      release = r
    })
    const ready = this.#tail.then(() => release)
    this.#tail = this.#tail.then(() => next)
    return ready
  }
}

/** Values SQLite cannot bind are converted here, in one place. */
function bindable(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0
  if (v instanceof Date) return v.getTime()
  if (v === undefined) return null
  return v
}

/** False only for statements that cannot change the database: a SELECT, a PRAGMA without `=`. */
function mayWrite(sqlText: string): boolean {
  const head = sqlText.trimStart().slice(0, 8).toLowerCase()
  if (head.startsWith('select')) return false
  if (head.startsWith('pragma')) return sqlText.includes('=')
  return true
}

/** The statements of the one connection (prepared once, cached); Lease is what kysely holds. */
class StatementRunner {
  readonly #db: DatabaseSync
  readonly #cache = new Map<string, { stmt: StatementSync; reader: boolean }>()
  constructor(db: DatabaseSync) {
    this.#db = db
  }

  #prepare(sql: string) {
    let entry = this.#cache.get(sql)
    if (!entry) {
      const stmt = this.#db.prepare(sql)
      entry = { stmt, reader: stmt.columns().length > 0 }
      if (this.#cache.size > 500) this.#cache.clear()
      this.#cache.set(sql, entry)
    }
    return entry
  }

  /** Runs one statement; `wrote` is true unless it can only read (SELECT, a PRAGMA query). */
  run<R>(q: CompiledQuery): { result: QueryResult<R>; wrote: boolean } {
    return { result: this.#run(q), wrote: mayWrite(q.sql) }
  }

  #run<R>(q: CompiledQuery): QueryResult<R> {
    if (q.parameters.length === 0 && !q.sql.trimStart().toLowerCase().startsWith('select')) {
      // Pragmas and transaction control: not cached (their statements are cheap and stateful).
      const stmt = this.#db.prepare(q.sql)
      if (stmt.columns().length > 0) return { rows: stmt.all() as R[] }
      const r = stmt.run()
      return { rows: [], numAffectedRows: BigInt(r.changes) }
    }
    const { stmt, reader } = this.#prepare(q.sql)
    const params = q.parameters.map(bindable) as never[]
    if (reader) return { rows: stmt.all(...params) as R[] }
    const r = stmt.run(...params)
    return { rows: [], numAffectedRows: BigInt(r.changes), insertId: BigInt(r.lastInsertRowid) }
  }

  async *streamQuery<R>(q: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    const { stmt } = this.#prepare(q.sql)
    for (const row of stmt.iterate(...(q.parameters.map(bindable) as never[]))) yield { rows: [row as R] }
  }
}

/**
 * One caller's hold on the connection, from acquireConnection to releaseConnection. It gives
 * the mutex up as soon as its write is done and waits for the WAL sync without it; a statement
 * run after that (a connection reused by kysely) takes the mutex again.
 */
class Lease implements DatabaseConnection {
  readonly #conn: StatementRunner
  readonly #mutex: Mutex
  readonly #opts: SqliteDriverOptions
  #release: (() => void) | null
  #inTransaction = false
  constructor(conn: StatementRunner, mutex: Mutex, opts: SqliteDriverOptions, release: () => void) {
    this.#conn = conn
    this.#mutex = mutex
    this.#opts = opts
    this.#release = release
  }

  /**
   * A statement outside a transaction, or BEGIN IMMEDIATE. While another connection (another
   * process or thread) holds the write lock, it waits on a timer with the mutex given up, up
   * to busyTimeoutMs, then fails with SQLite's "database is locked". A statement refused as
   * busy changed nothing, so running it again is safe.
   */
  async #runOutside<R>(q: CompiledQuery): Promise<{ result: QueryResult<R>; wrote: boolean }> {
    const deadline = Date.now() + this.#opts.busyTimeoutMs
    for (let wait = 1; ; wait = Math.min(wait * 2, MAX_BUSY_WAIT_MS)) {
      await this.#hold()
      try {
        return this.#conn.run<R>(q)
      } catch (err) {
        if (!isBusy(err) || Date.now() >= deadline) throw err
      }
      this.unlock()
      await sleep(wait)
    }
  }

  async #hold() {
    this.#release ??= await this.#mutex.lock()
  }

  unlock() {
    const release = this.#release
    this.#release = null
    release?.()
  }

  async executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
    if (this.#inTransaction) return this.#conn.run<R>(q).result
    const { result, wrote } = await this.#runOutside<R>(q)
    if (wrote) {
      this.unlock()
      await this.#opts.wal.sync()
    }
    return result
  }

  async *streamQuery<R>(q: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    await this.#hold()
    yield* this.#conn.streamQuery<R>(q)
  }

  async begin() {
    await this.#runOutside(CompiledQuery.raw('BEGIN IMMEDIATE'))
    this.#inTransaction = true
  }

  async commit() {
    this.#conn.run(CompiledQuery.raw('COMMIT'))
    this.#inTransaction = false
    this.unlock()
    await this.#opts.wal.sync()
  }

  async rollback() {
    this.#inTransaction = false
    this.#conn.run(CompiledQuery.raw('ROLLBACK'))
  }
}

class NodeSqliteDriver implements Driver {
  readonly #db: DatabaseSync
  readonly #mutex = new Mutex()
  readonly #conn: StatementRunner
  readonly #opts: SqliteDriverOptions
  constructor(db: DatabaseSync, opts: SqliteDriverOptions) {
    this.#db = db
    this.#conn = new StatementRunner(db)
    this.#opts = opts
  }
  async init() {}
  async acquireConnection() {
    const release = await this.#mutex.lock()
    return new Lease(this.#conn, this.#mutex, this.#opts, release)
  }
  async beginTransaction(c: DatabaseConnection) {
    await (c as Lease).begin()
  }
  async commitTransaction(c: DatabaseConnection) {
    await (c as Lease).commit()
  }
  async rollbackTransaction(c: DatabaseConnection) {
    await (c as Lease).rollback()
  }
  async releaseConnection(c: DatabaseConnection) {
    ;(c as Lease).unlock()
  }
  async destroy() {
    await this.#opts.wal.close()
    if (this.#db.isOpen) this.#db.close()
  }
}

/**
 * Kysely's SQLite adapter, except that kysely's own connection mutex is off: the driver's
 * mutex (held per Lease) is the one lock, so a writer waiting for its WAL sync does not keep
 * the next caller waiting.
 */
class LeasedSqliteAdapter extends SqliteAdapter {
  override get supportsMultipleConnections() {
    return true
  }
}

export interface SqliteDriverOptions {
  /** The syncer of this database's WAL file (createWalSync(path)). */
  wal: WalSync
  /** How long a write waits for another connection's write lock before failing. */
  busyTimeoutMs: number
}

export class NodeSqliteDialect implements Dialect {
  readonly #db: DatabaseSync
  readonly #opts: SqliteDriverOptions
  constructor(db: DatabaseSync, opts: SqliteDriverOptions) {
    this.#db = db
    this.#opts = opts
  }
  createDriver() {
    return new NodeSqliteDriver(this.#db, this.#opts)
  }
  createQueryCompiler() {
    return new SqliteQueryCompiler()
  }
  createAdapter() {
    return new LeasedSqliteAdapter()
  }
  createIntrospector(db: Kysely<unknown>) {
    return new SqliteIntrospector(db)
  }
}
