// The SQLite driver's durability rule (dialect/sqlite.ts, wal-sync.ts): every write resolves
// only after an fdatasync of the WAL that started after it, reads wait for none, concurrent
// writers share syncs, and the connection serves others while a sync runs.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { Kysely, sql } from 'kysely'
import { NodeSqliteDialect, openSqlite } from '../../src/store/dialect/sqlite.ts'
import { createWalSync, type WalSync } from '../../src/store/dialect/wal-sync.ts'

const dirs: string[] = []
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** A database whose syncer records, per sync, whether the row count it was asked after had been written. */
function open(wrap?: (w: WalSync) => WalSync) {
  const dir = mkdtempSync(join(tmpdir(), 'postern-wal-'))
  dirs.push(dir)
  const path = join(dir, 'db.sqlite')
  const raw = openSqlite({ path, busyTimeoutMs: 1000 })
  raw.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)')
  const real = createWalSync(path)
  const wal = wrap ? wrap(real) : real
  const db = new Kysely<{ t: { id: number; v: string } }>({
    dialect: new NodeSqliteDialect(raw, { wal, busyTimeoutMs: 1000 }),
  })
  return { db, raw, wal: real, path }
}

test('synchronous is NORMAL: durability comes from the WAL sync', async () => {
  const { db, raw } = open()
  const row = raw.prepare('PRAGMA synchronous').get() as { synchronous: number }
  assert.equal(row.synchronous, 1) // NORMAL
  assert.equal((raw.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal')
  await db.destroy()
})

test('a write outside a transaction and a commit each wait for a sync; reads do not', async () => {
  const { db, wal } = open()
  await db.insertInto('t').values({ id: 1, v: 'a' }).execute()
  assert.equal(wal.stats.requests, 1)
  assert.ok(wal.stats.syncs >= 1)
  await db.selectFrom('t').selectAll().execute()
  await sql`PRAGMA data_version`.execute(db)
  assert.equal(wal.stats.requests, 1, 'reads wait for no sync')
  await db.transaction().execute(async (tx) => {
    await tx.insertInto('t').values({ id: 2, v: 'b' }).execute()
    await tx.updateTable('t').set({ v: 'c' }).where('id', '=', 1).execute()
    assert.equal(wal.stats.requests, 1, 'statements inside a transaction wait for no sync')
  })
  assert.equal(wal.stats.requests, 2, 'the commit waits for one')
  // INSERT ... RETURNING is read like a query but is a write.
  await db.insertInto('t').values({ id: 3, v: 'd' }).returning('id').execute()
  assert.equal(wal.stats.requests, 3)
  await db.destroy()
})

test('a write resolves only after a sync that started after it finished', async () => {
  // The syncer is slowed: each sync notes the rows present when it started.
  const started: number[] = []
  let probe: () => number = () => 0
  const { db, raw } = open((real) => ({
    stats: real.stats,
    close: () => real.close(),
    sync: async () => {
      started.push(probe())
      await new Promise((r) => setTimeout(r, 20))
      return real.sync()
    },
  }))
  probe = () => (raw.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n
  await db.insertInto('t').values({ id: 1, v: 'a' }).execute()
  assert.deepEqual(started, [1], 'the sync began after the row was written')
  await db.destroy()
})

test('concurrent writers share syncs and the connection serves reads during one', async () => {
  const { db, wal } = open()
  await db.insertInto('t').values({ id: 0, v: 'x' }).execute()
  const before = { ...wal.stats }
  const writes = Array.from({ length: 50 }, (_, i) =>
    db
      .insertInto('t')
      .values({ id: i + 1, v: 'y' })
      .execute(),
  )
  await Promise.all(writes)
  const requests = wal.stats.requests - before.requests
  const syncs = wal.stats.syncs - before.syncs
  assert.equal(requests, 50)
  assert.ok(syncs < 50, `50 writes shared syncs (${syncs})`)
  const n = await db
    .selectFrom('t')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow()
  assert.equal(Number(n.n), 51)
  await db.destroy()
})

test('a rolled-back transaction loses nothing else and leaves the connection usable', async () => {
  const { db } = open()
  await assert.rejects(
    db.transaction().execute(async (tx) => {
      await tx.insertInto('t').values({ id: 1, v: 'a' }).execute()
      throw new Error('boom')
    }),
    /boom/,
  )
  await db.insertInto('t').values({ id: 2, v: 'b' }).execute()
  const rows = await db.selectFrom('t').select('id').execute()
  assert.deepEqual(
    rows.map((r) => r.id),
    [2],
  )
  await db.destroy()
})

test('a write waits off the event loop while another connection holds the write lock', async () => {
  const { db, path } = open()
  const other = openSqlite({ path, busyTimeoutMs: 0 })
  other.exec('BEGIN IMMEDIATE')
  let ticks = 0
  const ticker = setInterval(() => ticks++, 5)
  setTimeout(() => other.exec('COMMIT'), 80)
  const t0 = Date.now()
  await db.insertInto('t').values({ id: 1, v: 'a' }).execute()
  clearInterval(ticker)
  assert.ok(Date.now() - t0 >= 70, 'it waited for the lock')
  assert.ok(ticks >= 5, `timers ran while it waited (${ticks})`)
  // A transaction waits the same way at BEGIN IMMEDIATE.
  other.exec('BEGIN IMMEDIATE')
  setTimeout(() => other.exec('COMMIT'), 30)
  await db.transaction().execute((tx) => tx.insertInto('t').values({ id: 2, v: 'b' }).execute())
  other.close()
  await db.destroy()
})

test('past busyTimeoutMs the write fails with "database is locked" and changes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-wal-'))
  dirs.push(dir)
  const path = join(dir, 'db.sqlite')
  const raw = openSqlite({ path, busyTimeoutMs: 0 })
  raw.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)')
  const db = new Kysely<{ t: { id: number; v: string } }>({
    dialect: new NodeSqliteDialect(raw, { wal: createWalSync(path), busyTimeoutMs: 40 }),
  })
  const other = openSqlite({ path, busyTimeoutMs: 0 })
  other.exec('BEGIN IMMEDIATE')
  await assert.rejects(db.insertInto('t').values({ id: 1, v: 'a' }).execute(), /database is locked/)
  await assert.rejects(
    db.transaction().execute(async () => {}),
    /database is locked/,
  )
  other.exec('COMMIT')
  other.close()
  // The connection is free again for the next caller.
  await db.insertInto('t').values({ id: 2, v: 'b' }).execute()
  const rows = await db.selectFrom('t').select('id').execute()
  assert.deepEqual(
    rows.map((r) => r.id),
    [2],
  )
  await db.destroy()
})
