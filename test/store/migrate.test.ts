import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { sql } from 'kysely'
import { migrateToLatest, pendingMigrations } from '../../src/store/migrate.ts'
import { migrations } from '../../src/store/migrations/index.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { openTestStore } from '../helpers/store.ts'

const CORE_TABLES = [
  'orgs',
  'users',
  'sessions',
  'api_keys',
  'domains',
  'dkim_keys',
  'mailboxes',
  'mailbox_grants',
  'aliases',
  'folders',
  'messages',
  'folder_messages',
  'message_keywords',
  'expunged',
  'threads',
  'outbound_messages',
  'outbound_recipients',
  'events',
  'blobs',
  'blob_data',
  'changes',
  'jobs',
  'server_meta',
]

for (const dialect of DIALECTS) {
  describe(`migrations (${dialect})`, () => {
    it('applies every migration once; a second run changes nothing', async () => {
      const t = await openTestStore(dialect) // opening migrates
      try {
        assert.deepEqual(await pendingMigrations(t.store), [])
        const again = await migrateToLatest(t.store)
        assert.deepEqual(again.applied, [])
        assert.equal(again.current, Object.keys(migrations).at(-1))
        const tables = (await t.store.db.introspection.getTables()).map((x) => x.name)
        for (const name of CORE_TABLES) assert.ok(tables.includes(name), `table ${name} missing`)
      } finally {
        await t.close()
      }
    })

    it('keeps the IMAP counters and per-recipient state of the data model', async () => {
      const t = await openTestStore(dialect)
      try {
        const tables = await t.store.db.introspection.getTables()
        const cols = (name: string) => tables.find((x) => x.name === name)?.columns.map((c) => c.name) ?? []
        for (const c of ['uidvalidity', 'uidnext', 'highestmodseq', 'role'])
          assert.ok(cols('folders').includes(c), c)
        for (const c of ['uid', 'modseq']) assert.ok(cols('folder_messages').includes(c), c)
        for (const c of ['state', 'attempts', 'next_attempt_at', 'dsn_notify'])
          assert.ok(cols('outbound_recipients').includes(c), c)
      } finally {
        await t.close()
      }
    })

    it('runs concurrently from two connections without harm', async () => {
      const t = await openTestStore(dialect)
      try {
        const [a, b] = await Promise.all([t.reopen(), t.reopen()])
        const r = await Promise.all([migrateToLatest(a), migrateToLatest(b)])
        assert.deepEqual(
          r.map((x) => x.applied),
          [[], []],
        )
        const n = await sql<{ n: number }>`select count(*) as n from kysely_migration`.execute(t.store.db)
        assert.equal(Number(n.rows[0]?.n), Object.keys(migrations).length)
      } finally {
        await t.close()
      }
    })
  })
}
