import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createLogger } from '../../src/log/logger.ts'
import { ServiceError } from '../../src/services/errors.ts'
import { createJobRunner } from '../../src/services/jobs/runner.ts'
import { manualClock } from '../../src/time/clock.ts'
import { runChild } from '../helpers/child.ts'
import { DIALECTS, testDatabase } from '../helpers/dialects.ts'
import { openTestStore } from '../helpers/store.ts'

const log = createLogger({ level: 'silent' })

for (const dialect of DIALECTS) {
  describe(`job runner (${dialect})`, () => {
    it('runs a job when due, schedules the next run from its end, and lists it', async () => {
      const t = await openTestStore(dialect)
      try {
        const clock = manualClock()
        const runner = createJobRunner({ store: t.store, clock, log, tickMs: 1000, leaseMs: 60_000 })
        let runs = 0
        runner.register({
          name: 'count',
          description: 'counts',
          intervalMs: 10_000,
          firstRunDelayMs: 5_000,
          run: async () => {
            runs++
            clock.advance(250) // the run takes time
            return { runs }
          },
        })
        runner.register({
          name: 'broken',
          description: 'fails',
          intervalMs: 10_000,
          run: async () => {
            throw new Error('disk on fire')
          },
        })
        await runner.tick()
        assert.equal(runs, 0, 'first run waits for firstRunDelayMs')
        clock.advance(5_000)
        await runner.tick()
        assert.equal(runs, 1)
        await runner.tick()
        assert.equal(runs, 1, 'not due again yet')
        clock.advance(10_000)
        await runner.tick()
        assert.equal(runs, 2)
        const list = await runner.list()
        const count = list.find((j) => j.name === 'count')
        assert.equal(count?.run_count, 2)
        assert.equal(count?.last_status, 'ok')
        assert.equal(count?.last_duration_ms, 250)
        assert.equal(count?.next_run_at, (count?.last_finished_at ?? 0) + 10_000)
        const broken = list.find((j) => j.name === 'broken')
        assert.equal(broken?.last_status, 'error')
        assert.equal(broken?.last_error, 'disk on fire')
        // Run now ignores the schedule.
        const now = await runner.runNow('count')
        assert.equal(now.run_count, 3)
        await assert.rejects(
          runner.runNow('nope'),
          (e: unknown) => e instanceof ServiceError && e.kind === 'not_found',
        )
      } finally {
        await t.close()
      }
    })

    it('takes over a job whose holder died once its lease expired', async () => {
      const t = await openTestStore(dialect)
      try {
        const clock = manualClock()
        const a = createJobRunner({
          store: t.store,
          clock,
          log,
          tickMs: 1000,
          leaseMs: 60_000,
          owner: 'dead',
        })
        const b = createJobRunner({
          store: t.store,
          clock,
          log,
          tickMs: 1000,
          leaseMs: 60_000,
          owner: 'alive',
        })
        const ran: string[] = []
        let release: () => void = () => {}
        a.register({
          name: 'j',
          description: '',
          intervalMs: 1000,
          run: () => new Promise<undefined>((r) => (release = () => r(undefined))),
        })
        b.register({ name: 'j', description: '', intervalMs: 1000, run: async () => void ran.push('b') })
        const hung = a.tick() // a claims the job and never finishes (a crashed holder)
        await new Promise((r) => setTimeout(r, 50))
        await b.tick()
        assert.deepEqual(ran, [], 'a live lease is respected')
        await assert.rejects(
          b.runNow('j'),
          (e: unknown) => e instanceof ServiceError && e.kind === 'conflict',
        )
        clock.advance(60_001)
        await b.tick()
        assert.deepEqual(ran, ['b'], 'an expired lease is taken over')
        release()
        await hung
      } finally {
        await t.close()
      }
    })

    it('runs each job once across two processes', async () => {
      const tdb = testDatabase(dialect)
      const t = await openTestStore(dialect, tdb.env) // creates and migrates the shared database
      try {
        const env = { ...tdb.env, POSTERN_LOG_LEVEL: 'silent' }
        const fixture = new URL('../fixtures/job-worker.ts', import.meta.url)
        // Phase 1: a long interval, both processes ticking hard: exactly one run.
        let workers = [runChild(fixture, ['3600000', '800'], env), runChild(fixture, ['3600000', '800'], env)]
        await Promise.all(workers.map((w) => w.waitFor(/ready/)))
        for (const w of workers) w.proc.stdin?.end('go\n')
        for (const w of workers) assert.equal(await w.exited, 0, w.stderr())
        for (const w of workers)
          assert.ok(Number(w.stdout().match(/ticks (\d+)/)?.[1]) > 10, 'both processes were ticking')
        const runs = async () =>
          (
            await t.store.db
              .selectFrom('events')
              .select(['actor', 'payload'])
              .where('type', '=', 'test.job.ran')
              .execute()
          ).map((r) => ({
            pid: r.actor,
            ...(JSON.parse(r.payload) as { start: number; end: number }),
          }))
        assert.equal((await runs()).length, 1)
        // Phase 2: a short interval: many runs, never two at once.
        await t.store.db.deleteFrom('jobs').execute()
        await t.store.db.deleteFrom('events').execute()
        workers = [runChild(fixture, ['20', '1500'], env), runChild(fixture, ['20', '1500'], env)]
        await Promise.all(workers.map((w) => w.waitFor(/ready/)))
        for (const w of workers) w.proc.stdin?.end('go\n')
        for (const w of workers) assert.equal(await w.exited, 0, w.stderr())
        const all = (await runs()).sort((x, y) => x.start - y.start)
        assert.ok(all.length >= 3, `expected several runs, got ${all.length}`)
        for (let i = 1; i < all.length; i++)
          assert.ok((all[i]?.start ?? 0) >= (all[i - 1]?.end ?? 0), `runs ${i - 1} and ${i} overlapped`)
      } finally {
        await t.close()
        await tdb.drop()
      }
    })
  })
}
