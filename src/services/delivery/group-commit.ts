// Group commit: database work of messages that finished DATA at about the same moment runs in
// one transaction, so one fsync (SQLite synchronous=FULL, or PostgreSQL's commit) covers them
// all. Each caller's promise settles only when its batch has committed. If a batch fails, every
// job of it is retried alone in its own transaction, so one bad message never fails others.
// Invariant: a job's writes are visible and durable when its promise resolves, never before.

import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../../store/schema.ts'

type Job<T> = {
  run: (tx: Transaction<Database>) => Promise<T>
  resolve: (v: T) => void
  reject: (e: unknown) => void
}

export interface GroupCommitter {
  run<T>(job: (tx: Transaction<Database>) => Promise<T>): Promise<T>
  /** Waits for queued work to commit (shutdown). */
  drain(): Promise<void>
  readonly stats: { batches: number; jobs: number; maxBatch: number }
}

export function createGroupCommitter(
  db: Kysely<Database>,
  opts: {
    maxBatch?: number /** Called after each transaction commits (durability tests). */
    onCommit?: (jobs: number) => void
  } = {},
): GroupCommitter {
  const maxBatch = opts.maxBatch ?? 64
  const queue: Job<unknown>[] = []
  let running: Promise<void> | null = null
  const stats = { batches: 0, jobs: 0, maxBatch: 0 }

  async function flush(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.splice(0, maxBatch)
      stats.batches++
      stats.jobs += batch.length
      stats.maxBatch = Math.max(stats.maxBatch, batch.length)
      let results: unknown[] | null = null
      try {
        // The jobs run concurrently: their statements still go one at a time through the
        // transaction's connection, but their file work (renames, directory fsyncs) overlaps.
        // Wait for every job to settle before failing the batch: a rollback issued while other
        // jobs still have statements queued would let those run outside the transaction.
        results = await db.transaction().execute(async (tx) => {
          const settled = await Promise.allSettled(batch.map((job) => job.run(tx)))
          const failed = settled.find((r) => r.status === 'rejected')
          if (failed) throw (failed as PromiseRejectedResult).reason
          return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value)
        })
      } catch {
        results = null
      }
      if (results) {
        opts.onCommit?.(batch.length)
        for (const [i, job] of batch.entries()) job.resolve(results[i])
        continue
      }
      for (const job of batch) {
        try {
          const value = await db.transaction().execute((tx) => job.run(tx))
          opts.onCommit?.(1)
          job.resolve(value)
        } catch (err) {
          job.reject(err)
        }
      }
    }
  }

  function kick() {
    running ??= new Promise<void>((r) => setImmediate(r)).then(flush).finally(() => {
      running = null
      if (queue.length) kick()
    })
  }

  return {
    stats,
    run<T>(run: (tx: Transaction<Database>) => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ run, resolve, reject } as Job<unknown>)
        kick()
      })
    },
    async drain() {
      while (running || queue.length) await (running ?? Promise.resolve())
    },
  }
}
