import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { sql } from 'kysely'
import { statementNames } from '../../src/store/dialect/postgres.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { openTestStore } from '../helpers/store.ts'

describe('PostgreSQL statement names', () => {
  it('names data statements once each, never DDL, and stops at the cap', () => {
    const nameOf = statementNames(2)
    const a = nameOf('select 1 where $1 = 1')
    assert.ok(a)
    assert.equal(nameOf('select 1 where $1 = 1'), a)
    assert.equal(nameOf('CREATE TABLE x (id int)'), undefined)
    const b = nameOf('  insert into t values ($1)')
    assert.ok(b && b !== a)
    assert.equal(nameOf('update t set x = $1'), undefined, 'over the cap')
    assert.equal(nameOf('select 1 where $1 = 1'), a, 'names already given stay')
  })
})

for (const dialect of DIALECTS.filter((d) => d === 'postgres'))
  describe(`prepared statements (${dialect})`, () => {
    it('runs a named statement again on the same and on other connections, also after a failing one', async () => {
      const t = await openTestStore(dialect)
      try {
        const db = t.store.db
        const q = (n: number) => sql<{ v: number }>`select ${n}::int + 1 as v`.execute(db)
        const rounds = await Promise.all([1, 2, 3, 4, 5, 6].map(q))
        assert.deepEqual(
          rounds.map((r) => r.rows[0]?.v),
          [2, 3, 4, 5, 6, 7],
        )
        // A statement failing at execution (not at parse) leaves the name usable.
        const bad = (s: string) => sql<{ v: number }>`select ${s}::int as v`.execute(db)
        await assert.rejects(bad('x'))
        assert.equal((await bad('41')).rows[0]?.v, 41)
        // Failing inside a transaction that rolls back: the prepared statement survives.
        await assert.rejects(
          db.transaction().execute(async (tx) => {
            await sql`select ${'y'}::int as v`.execute(tx)
          }),
        )
        assert.equal((await q(9)).rows[0]?.v, 10)
      } finally {
        await t.close()
      }
    })
  })
