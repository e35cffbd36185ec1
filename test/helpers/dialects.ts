// The database matrix every store and service test runs over (Kysely's DIALECTS, Stalwart's
// STORE): SQLite always; PostgreSQL when POSTERN_TEST_DATABASE_URL is set. Under CI=true a
// missing PostgreSQL is a failure, not a skip. Each opened test database is private: a temp
// SQLite folder, or a fresh PostgreSQL schema dropped on close.

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

export type Dialect = 'sqlite' | 'postgres'

const PG_URL = process.env.POSTERN_TEST_DATABASE_URL ?? null

if (process.env.CI === 'true' && !PG_URL)
  throw new Error('CI=true but POSTERN_TEST_DATABASE_URL is not set: the suite must run on PostgreSQL too')

export const DIALECTS: Dialect[] = PG_URL ? ['sqlite', 'postgres'] : ['sqlite']

export interface TestDatabase {
  /** POSTERN_* variables selecting this database (none for SQLite: data_dir decides). */
  env: Record<string, string>
  dataDir: string
  schema: string | null
  /** Drops the schema / removes the folder. */
  drop(): Promise<void>
}

/** A private database for one test server or store. */
export function testDatabase(dialect: Dialect): TestDatabase {
  const dataDir = mkdtempSync(join(tmpdir(), 'postern-test-'))
  const base = { POSTERN_DATA_DIR: dataDir }
  if (dialect === 'sqlite')
    return {
      env: base,
      dataDir,
      schema: null,
      drop: async () => rmSync(dataDir, { recursive: true, force: true }),
    }
  const schema = `t_${process.pid}_${randomBytes(4).toString('hex')}`
  return {
    env: { ...base, POSTERN_DATABASE_URL: PG_URL as string, POSTERN_DATABASE_SCHEMA: schema },
    dataDir,
    schema,
    async drop() {
      rmSync(dataDir, { recursive: true, force: true })
      const c = new pg.Client({ connectionString: PG_URL as string })
      await c.connect()
      try {
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      } finally {
        await c.end()
      }
    },
  }
}
