import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createLogger } from '../../src/log/logger.ts'
import { type ChangeEvent, createChangeBus } from '../../src/store/change-bus.ts'
import { runChild } from '../helpers/child.ts'
import { DIALECTS, testDatabase } from '../helpers/dialects.ts'
import { openTestStore } from '../helpers/store.ts'

const log = createLogger({ level: 'silent' })

function waitForEvents(events: ChangeEvent[], n: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const check = () => {
      if (events.length >= n) resolve()
      else if (Date.now() > until) reject(new Error(`got ${events.length} of ${n} events`))
      else setTimeout(check, 10)
    }
    check()
  })
}

for (const dialect of DIALECTS) {
  describe(`change bus (${dialect})`, () => {
    it('delivers a change written by another process', async () => {
      const tdb = testDatabase(dialect)
      const t = await openTestStore(dialect, tdb.env)
      const bus = createChangeBus({ store: t.store, log, pollMs: 20, now: Date.now })
      await bus.start()
      try {
        const got: ChangeEvent[] = []
        bus.subscribe('test.ping', (e) => got.push(e))
        const child = runChild(new URL('../fixtures/publish-change.ts', import.meta.url), ['7'], {
          ...tdb.env,
          POSTERN_LOG_LEVEL: 'silent',
        })
        assert.equal(await child.exited, 0, child.stderr())
        await waitForEvents(got, 1)
        assert.equal(got[0]?.topic, 'test.ping')
        assert.equal(got[0]?.data.n, 7)
        assert.notEqual(got[0]?.data.from, process.pid)
      } finally {
        await bus.close()
        await t.close()
        await tdb.drop()
      }
    })

    it('delivers in commit order, never a rolled-back change, and filters by topic', async () => {
      const t = await openTestStore(dialect)
      const bus = createChangeBus({ store: t.store, log, pollMs: 20, now: Date.now })
      await bus.start()
      try {
        const all: ChangeEvent[] = []
        const pings: ChangeEvent[] = []
        bus.subscribe('*', (e) => all.push(e))
        bus.subscribe('test.ping', (e) => pings.push(e))
        await bus.publish(t.store.db, { topic: 'test.ping', org_id: null, data: { n: 1 } })
        await t.store.db
          .transaction()
          .execute(async (tx) => {
            await bus.publish(tx, { topic: 'test.ping', org_id: null, data: { n: 2 } })
            throw new Error('roll back')
          })
          .catch(() => {})
        await bus.publish(t.store.db, { topic: 'test.other', org_id: 'org_x', data: { n: 3 } })
        await bus.publish(t.store.db, { topic: 'test.ping', org_id: null, data: { n: 4 } })
        await waitForEvents(all, 3)
        await new Promise((r) => setTimeout(r, 100))
        assert.deepEqual(
          all.map((e) => e.data.n),
          [1, 3, 4],
        )
        assert.deepEqual(
          pings.map((e) => e.data.n),
          [1, 4],
        )
        assert.equal(all[1]?.org_id, 'org_x')
      } finally {
        await bus.close()
        await t.close()
      }
    })
  })
}
