// Applies the versioned migrations (Kysely's Migrator, inside one transaction). Safe to run
// from several processes at once: PostgreSQL takes Kysely's migration lock, SQLite's
// BEGIN IMMEDIATE serialises writers. Running it again when up to date changes nothing.

import { Migrator } from 'kysely/migration'
import type { Store } from './db.ts'
import { migrations } from './migrations/index.ts'

export interface MigrationReport {
  applied: string[]
  current: string | null
}

export async function migrateToLatest(store: Store): Promise<MigrationReport> {
  const migrator = new Migrator({
    db: store.db,
    provider: { getMigrations: async () => migrations },
    migrationTableSchema: store.dialect === 'postgres' ? store.schema : undefined,
  })
  const { error, results } = await migrator.migrateToLatest()
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName
    throw new Error(`migration ${failed ?? '(lock)'} failed: ${(error as Error).message ?? error}`, {
      cause: error,
    })
  }
  const all = await migrator.getMigrations()
  const done = all.filter((m) => m.executedAt)
  return {
    applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName),
    current: done.at(-1)?.name ?? null,
  }
}

/** Names of migrations this build knows but the database has not applied. */
export async function pendingMigrations(store: Store): Promise<string[]> {
  const migrator = new Migrator({
    db: store.db,
    provider: { getMigrations: async () => migrations },
    migrationTableSchema: store.dialect === 'postgres' ? store.schema : undefined,
  })
  return (await migrator.getMigrations()).filter((m) => !m.executedAt).map((m) => m.name)
}
