// Opens the database the config names: SQLite in the data folder by default, PostgreSQL when
// database.url is set. Everything above the store receives a `Store` and writes
// dialect-neutral Kysely; the few non-portable operations (leases, notifications, upserts)
// branch on `store.dialect` inside store/ only.

import { chmodSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Kysely, PostgresDialect, sql } from 'kysely'
import type pg from 'pg'
import type { Config } from '../config/schema.ts'
import { NodeSqliteDialect, openSqlite } from './dialect/sqlite.ts'
import { createWalSync } from './dialect/wal-sync.ts'
import type { Database } from './schema.ts'

export type DialectName = 'sqlite' | 'postgres'

export interface Store {
  db: Kysely<Database>
  dialect: DialectName
  /** PostgreSQL schema name; 'main' on SQLite. */
  schema: string
  /** Where the data is, for health and logs, with no credentials. */
  location: string
  /** PostgreSQL connection settings, for modules that need a connection of their own (LISTEN). */
  postgres: { url: string; schema: string } | null
  /** Statements run since the store opened (benchmarks print statements per message). */
  readonly statements: { count: number }
  close(): Promise<void>
}

/** Kysely's per-query hook, counting statements (cheap: one increment per query). */
function counting(statements: { count: number }) {
  return () => {
    statements.count++
  }
}

export async function openStore(config: Config): Promise<Store> {
  if (config.database.url) {
    const { url, schema, pool_size } = config.database
    // Loaded only here, so a SQLite installation never loads pg.
    const { openPostgresPool } = await import('./dialect/postgres.ts')
    const pool: pg.Pool = await openPostgresPool({ url, schema, poolSize: pool_size })
    const statements = { count: 0 }
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: counting(statements) })
    const u = new URL(url)
    return {
      db,
      dialect: 'postgres',
      schema,
      location: `postgres://${u.host}${u.pathname} schema ${schema}`,
      postgres: { url, schema },
      statements,
      close: () => db.destroy(),
    }
  }
  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 })
  const path = join(config.data_dir, 'postern.db')
  const raw = openSqlite({ path, busyTimeoutMs: config.database.busy_timeout_ms })
  chmodSync(path, 0o600) // password hashes and sealed keys live here
  const statements = { count: 0 }
  const db = new Kysely<Database>({
    dialect: new NodeSqliteDialect(raw, {
      wal: createWalSync(path),
      busyTimeoutMs: config.database.busy_timeout_ms,
    }),
    log: counting(statements),
  })
  return {
    db,
    dialect: 'sqlite',
    schema: 'main',
    location: path,
    postgres: null,
    statements,
    close: () => db.destroy(),
  }
}

/** A cheap query proving the database answers (health). */
export async function pingStore(store: Store): Promise<void> {
  await sql`select 1`.execute(store.db)
}
