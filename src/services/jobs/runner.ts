// The job runner: one place for scheduled and background work (DNS re-checks, purges,
// scheduled sends, key retirement, blob collection). Each job has a row in `jobs`; a process
// runs a job only after claiming it with one conditional UPDATE (due, and not leased or the
// lease expired), which is atomic on both dialects, so each run happens once across processes.
// The clock is injected; `tick()` is public so tests step the runner instead of waiting.
// Invariant: a job's next run is scheduled from when its run finished, never stacked.

import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import type { Logger } from '../../log/logger.ts'
import type { Store } from '../../store/db.ts'
import type { Job } from '../../store/schema.ts'
import type { Clock } from '../../time/clock.ts'
import { ServiceError } from '../errors.ts'

export interface JobContext {
  log: Logger
  now: number
  signal: AbortSignal
}

export interface JobDef {
  name: string
  description: string
  intervalMs: number
  /** Delay of the very first run after the job is first registered (default: run soon). */
  firstRunDelayMs?: number
  /** Returns an optional summary that is logged. */
  run(ctx: JobContext): Promise<Record<string, unknown> | undefined>
}

export interface JobStatus {
  name: string
  description: string
  interval_ms: number
  running: boolean
  last_started_at: number | null
  last_finished_at: number | null
  last_status: 'ok' | 'error' | null
  last_error: string | null
  last_duration_ms: number | null
  next_run_at: number
  run_count: number
}

export interface JobRunner {
  register(def: JobDef): void
  start(): Promise<void>
  /** Stops ticking, aborts running jobs' signals and waits for them to finish. */
  stop(): Promise<void>
  /** Runs every due job this process can claim; resolves when they finished. */
  tick(): Promise<void>
  /** Runs one job now (admin "run now"); 409 when another process holds it. */
  runNow(name: string): Promise<JobStatus>
  list(): Promise<JobStatus[]>
}

export interface JobRunnerOptions {
  store: Store
  clock: Clock
  log: Logger
  tickMs: number
  leaseMs: number
  /** Identifies this process in leases. */
  owner?: string
}

export function createJobRunner(opts: JobRunnerOptions): JobRunner {
  const { store, clock, log } = opts
  const db = store.db
  const owner = opts.owner ?? `${process.pid}-${randomBytes(4).toString('hex')}`
  const defs = new Map<string, JobDef>()
  const running = new Map<string, Promise<void>>()
  const abort = new AbortController()
  let timer: NodeJS.Timeout | null = null
  let ticking: Promise<void> | null = null

  async function ensureRow(def: JobDef) {
    await db
      .insertInto('jobs')
      .values({ name: def.name, next_run_at: clock.now() + (def.firstRunDelayMs ?? 0) })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute()
  }

  /** The atomic claim. `force` ignores next_run_at (run now) but never a live lease. */
  async function claim(name: string, force: boolean): Promise<boolean> {
    const now = clock.now()
    let q = db
      .updateTable('jobs')
      .set({ lease_owner: owner, lease_until: now + opts.leaseMs, last_started_at: now })
      .where('name', '=', name)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
    if (!force) q = q.where('next_run_at', '<=', now)
    const r = await q.executeTakeFirst()
    return Number(r.numUpdatedRows) === 1
  }

  async function execute(def: JobDef): Promise<void> {
    const started = clock.now()
    const jlog = log.child({ job: def.name })
    let status: 'ok' | 'error' = 'ok'
    let error: string | null = null
    try {
      const summary = await def.run({ log: jlog, now: started, signal: abort.signal })
      jlog.info({ ...(summary ?? {}), duration_ms: clock.now() - started }, 'job finished')
    } catch (err) {
      status = 'error'
      error = (err as Error).message ?? String(err)
      jlog.error({ err }, 'job failed')
    }
    const finished = clock.now()
    await db
      .updateTable('jobs')
      .set({
        lease_owner: null,
        lease_until: null,
        last_finished_at: finished,
        last_status: status,
        last_error: error,
        last_duration_ms: finished - started,
        run_count: sql`run_count + 1`,
        next_run_at: finished + def.intervalMs,
      })
      .where('name', '=', def.name)
      .where('lease_owner', '=', owner)
      .execute()
  }

  function launch(def: JobDef): Promise<void> {
    const p = execute(def).finally(() => running.delete(def.name))
    running.set(def.name, p)
    return p
  }

  async function tickOnce() {
    const started: Promise<void>[] = []
    for (const def of defs.values()) {
      if (running.has(def.name) || abort.signal.aborted) continue
      try {
        if (await claim(def.name, false)) started.push(launch(def))
      } catch (err) {
        log.warn({ err, job: def.name }, 'job claim failed')
      }
    }
    await Promise.all(started)
  }

  function toStatus(row: Job, def: JobDef): JobStatus {
    return {
      name: row.name,
      description: def.description,
      interval_ms: def.intervalMs,
      running: running.has(row.name) || (row.lease_until !== null && row.lease_until >= clock.now()),
      last_started_at: row.last_started_at,
      last_finished_at: row.last_finished_at,
      last_status: row.last_status,
      last_error: row.last_error,
      last_duration_ms: row.last_duration_ms,
      next_run_at: row.next_run_at,
      run_count: row.run_count,
    }
  }

  return {
    register(def) {
      if (defs.has(def.name)) throw new Error(`job ${def.name} registered twice`)
      defs.set(def.name, def)
    },
    async start() {
      for (const def of defs.values()) await ensureRow(def)
      timer = setInterval(() => {
        ticking ??= tickOnce().finally(() => {
          ticking = null
        })
      }, opts.tickMs)
      timer.unref()
    },
    async stop() {
      if (timer) clearInterval(timer)
      abort.abort()
      await ticking
      await Promise.allSettled(running.values())
    },
    async tick() {
      for (const def of defs.values()) await ensureRow(def)
      await tickOnce()
    },
    async runNow(name) {
      const def = defs.get(name)
      if (!def) throw new ServiceError('not_found', 'JOB_NOT_FOUND', `no job named ${name}`)
      await ensureRow(def)
      if (running.has(name) || !(await claim(name, true)))
        throw new ServiceError(
          'conflict',
          'JOB_RUNNING',
          `job ${name} is running; try again when it has finished`,
        )
      await launch(def)
      const row = await db.selectFrom('jobs').selectAll().where('name', '=', name).executeTakeFirstOrThrow()
      return toStatus(row, def)
    },
    async list() {
      const rows = await db.selectFrom('jobs').selectAll().orderBy('name').execute()
      return rows.filter((r) => defs.has(r.name)).map((r) => toStatus(r, defs.get(r.name) as JobDef))
    },
  }
}
