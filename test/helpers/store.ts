// Opens a migrated store over a private test database, for store and service tests that need
// no listeners. The config comes through the real loader, as in production.

import { loadConfig } from '../../src/config/load.ts'
import type { Config } from '../../src/config/schema.ts'
import { openMigratedStore } from '../../src/main.ts'
import type { Store } from '../../src/store/db.ts'
import { type Dialect, testDatabase } from './dialects.ts'

export interface TestStore {
  store: Store
  config: Config
  /** Opens a second connection (another "process" view) to the same database. */
  reopen(): Promise<Store>
  close(): Promise<void>
}

export async function openTestStore(dialect: Dialect, env: Record<string, string> = {}): Promise<TestStore> {
  const tdb = testDatabase(dialect)
  const { config } = loadConfig({ env: { ...tdb.env, POSTERN_LOG_LEVEL: 'silent', ...env }, args: [] })
  const store = await openMigratedStore(config)
  const extra: Store[] = []
  return {
    store,
    config,
    async reopen() {
      const s = await openMigratedStore(config)
      extra.push(s)
      return s
    },
    async close() {
      for (const s of extra) await s.close()
      await store.close()
      await tdb.drop()
    },
  }
}
