// Kysely over node:sqlite (built in; no native addon). Owns the one SQLite connection of a
// process. Invariants:
// - One query or transaction at a time on the connection (a mutex): node:sqlite is
//   synchronous, and an interleaved `begin` from a second caller would join the first's
//   transaction.
// - Write transactions start with BEGIN IMMEDIATE, so several processes on one file queue on
//   the busy timeout instead of failing with SQLITE_BUSY at their first write.
// - WAL, foreign keys, synchronous=FULL: a committed transaction survives power loss.

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

export interface SqliteOptions {
  path: string
  busyTimeoutMs: number
}

/** Opens the file and applies the pragmas every Postern connection relies on. */
export function openSqlite(opts: SqliteOptions): DatabaseSync {
  const db = new DatabaseSync(opts.path, { timeout: opts.busyTimeoutMs })
  db.exec(`PRAGMA busy_timeout = ${Math.trunc(opts.busyTimeoutMs)}`)
  db.exec('PRAGMA journal_mode = WAL')
  db.exec('PRAGMA synchronous = FULL')
  db.exec('PRAGMA foreign_keys = ON')
  return db
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

class NodeSqliteConnection implements DatabaseConnection {
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

  async executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
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

class NodeSqliteDriver implements Driver {
  readonly #db: DatabaseSync
  readonly #mutex = new Mutex()
  readonly #conn: NodeSqliteConnection
  #release: (() => void) | null = null
  constructor(db: DatabaseSync) {
    this.#db = db
    this.#conn = new NodeSqliteConnection(db)
  }
  async init() {}
  async acquireConnection() {
    this.#release = await this.#mutex.lock()
    return this.#conn
  }
  async beginTransaction(c: DatabaseConnection) {
    await c.executeQuery(CompiledQuery.raw('BEGIN IMMEDIATE'))
  }
  async commitTransaction(c: DatabaseConnection) {
    await c.executeQuery(CompiledQuery.raw('COMMIT'))
  }
  async rollbackTransaction(c: DatabaseConnection) {
    await c.executeQuery(CompiledQuery.raw('ROLLBACK'))
  }
  async releaseConnection() {
    const release = this.#release
    this.#release = null
    release?.()
  }
  async destroy() {
    if (this.#db.isOpen) this.#db.close()
  }
}

export class NodeSqliteDialect implements Dialect {
  readonly #db: DatabaseSync
  constructor(db: DatabaseSync) {
    this.#db = db
  }
  createDriver() {
    return new NodeSqliteDriver(this.#db)
  }
  createQueryCompiler() {
    return new SqliteQueryCompiler()
  }
  createAdapter() {
    return new SqliteAdapter()
  }
  createIntrospector(db: Kysely<unknown>) {
    return new SqliteIntrospector(db)
  }
}
