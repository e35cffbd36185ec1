// The analytics fold: a job that reads the events table in id order from a cursor and adds
// what it finds to analytics_counts, in one transaction with the cursor's advance.
//
// Why a job and not an upsert in the event writer's transaction: events come from every
// service (the queue worker, DSN and ARF handling, tracking, test mode), most of them in the
// queue's group commits, and the rollup needs the message's domain, mailbox and tags, which
// the writer does not have; an upsert there would add a read and a hot-row write to every
// commit on the send path and, on PostgreSQL, serialise concurrent deliveries of one org on
// the same counter rows. The fold instead reads a batch of events with the queue idle or busy
// alike and writes each counter row once per batch.
//
// Exactly once across processes: the job runner leases the job to one process, and inside
// the fold transaction the cursor row is locked (FOR UPDATE on PostgreSQL; SQLite write
// transactions start with BEGIN IMMEDIATE, one writer) and advanced only if it still holds the
// value read (a compare-and-set), so two folders can never both add the same events.
// Events commit out of id order across processes (an id is made before its transaction
// commits), so the fold stops `settleMs` behind the clock: an event is folded only once every
// transaction that could still commit an earlier id has had that long. Summaries add the
// events past the cursor directly (query.ts), so they are exact and current all the same.
// Invariant: the hour rows of analytics_counts are exactly tallyEvents() of the events with
// id <= analytics_cursor.last_id, and each day row is the sum of its day's hour rows.

import { sql } from 'kysely'
import type { Store } from '../../store/db.ts'
import { lastIdAt } from '../../store/ids.ts'
import type { JobDef } from '../jobs/runner.ts'
import type { Tx } from '../messages/context.ts'
import { COUNTED_TYPES, COUNTERS } from './counters.ts'
import { type EventRow, HOUR_MS, keyOf, type RollupDelta, tallyEvents } from './tally.ts'

const DAY_MS = 24 * HOUR_MS

export const CURSOR_NAME = 'hourly'

export interface FoldOptions {
  /** Events read per transaction. */
  batch?: number
  /** How far behind the clock the fold stays (late commits). */
  settleMs: number
}

export interface FoldResult {
  /** Counted events folded (events of other types are passed over). */
  events: number
  rows: number
  cursor: string
  /** True when the batch was full: more is waiting. */
  more: boolean
}

const UPSERT_CHUNK = 200

/** Hour deltas plus the day deltas that sum them (the day rows of analytics_counts). */
export function withDayRows(deltas: Iterable<RollupDelta>): RollupDelta[] {
  const out: RollupDelta[] = []
  const days = new Map<string, RollupDelta>()
  for (const d of deltas) {
    out.push(d)
    if (d.grain !== 'hour') continue
    const day = { ...d, grain: 'day' as const, start: Math.floor(d.start / DAY_MS) * DAY_MS }
    const key = keyOf(day)
    const row = days.get(key)
    if (row) for (const c of COUNTERS) row[c] += d[c]
    else days.set(key, day)
  }
  return [...out, ...days.values()]
}

/** Adds hour deltas, and their day sums, to analytics_counts (insert, or add to the row). */
export async function addDeltas(tx: Tx, deltas: Iterable<RollupDelta>): Promise<number> {
  const rows = withDayRows(deltas)
  for (let i = 0; i < rows.length; i += UPSERT_CHUNK)
    await tx
      .insertInto('analytics_counts')
      .values(rows.slice(i, i + UPSERT_CHUNK))
      .onConflict((oc) =>
        oc
          .columns(['org_id', 'recipient_domain', 'tag', 'grain', 'start', 'sending_domain', 'mailbox_id'])
          .doUpdateSet(
            Object.fromEntries(
              COUNTERS.map((c) => [
                c,
                sql`${sql.ref(`analytics_counts.${c}`)} + ${sql.ref(`excluded.${c}`)}`,
              ]),
            ),
          ),
      )
      .execute()
  return rows.length
}

/** The cursor as it is now ('' before the first fold). */
export async function readCursor(db: Tx): Promise<string> {
  const row = await db
    .selectFrom('analytics_cursor')
    .select('last_id')
    .where('name', '=', CURSOR_NAME)
    .executeTakeFirst()
  return row?.last_id ?? ''
}

/** Folds one batch of events older than now - settleMs. */
export async function foldOnce(store: Store, now: number, o: FoldOptions): Promise<FoldResult> {
  const batch = o.batch ?? 5000
  await store.db
    .insertInto('analytics_cursor')
    .values({ name: CURSOR_NAME, last_id: '', folded: 0, updated_at: now })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute()
  return store.db.transaction().execute(async (tx) => {
    let q = tx.selectFrom('analytics_cursor').select('last_id').where('name', '=', CURSOR_NAME)
    if (store.dialect === 'postgres') q = q.forUpdate()
    const from = (await q.executeTakeFirstOrThrow()).last_id
    const horizon = lastIdAt('evt', now - o.settleMs)
    if (from >= horizon) return { events: 0, rows: 0, cursor: from, more: false }
    const events: EventRow[] = await tx
      .selectFrom('events')
      .select(['id', 'org_id', 'type', 'subject_id', 'payload', 'created_at'])
      .where('id', '>', from)
      .where('id', '<=', horizon)
      .where('type', 'in', [...COUNTED_TYPES])
      .orderBy('id')
      .limit(batch)
      .execute()
    const more = events.length === batch
    // A short batch read everything up to the horizon: the cursor moves there.
    const to = more ? (events.at(-1) as EventRow).id : horizon
    const rows = await addDeltas(tx, (await tallyEvents(tx, events)).values())
    const moved = await tx
      .updateTable('analytics_cursor')
      .set({ last_id: to, folded: sql`folded + ${events.length}`, updated_at: now })
      .where('name', '=', CURSOR_NAME)
      .where('last_id', '=', from)
      .executeTakeFirst()
    if (Number(moved.numUpdatedRows) !== 1)
      throw new Error('analytics cursor moved under the fold; rolled back')
    return { events: events.length, rows, cursor: to, more }
  })
}

/** Folds until caught up (or `maxBatches`). */
export async function foldAll(
  store: Store,
  now: number,
  o: FoldOptions & { maxBatches?: number; signal?: AbortSignal },
): Promise<{ events: number; rows: number; batches: number }> {
  let events = 0
  let rows = 0
  let batches = 0
  for (;;) {
    const r = await foldOnce(store, now, o)
    events += r.events
    rows += r.rows
    batches++
    if (!r.more || batches >= (o.maxBatches ?? 1000) || o.signal?.aborted) return { events, rows, batches }
  }
}

export function analyticsFoldJob(d: {
  store: Store
  now: () => number
  intervalMs: number
  settleMs: number
}): JobDef {
  return {
    name: 'analytics-fold',
    description: 'Adds new outbound events to the hourly and daily deliverability counters (analytics).',
    intervalMs: d.intervalMs,
    firstRunDelayMs: d.intervalMs,
    run: async (ctx) => foldAll(d.store, d.now(), { settleMs: d.settleMs, signal: ctx.signal }),
  }
}
