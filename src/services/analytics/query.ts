// Deliverability summaries and time series over analytics_counts, plus the live tail: the
// events past the fold's cursor, tallied on the fly with the same code the fold uses, so an
// answer counts every event committed so far, folded or not.
// Invariants: rows are read only for the scope's org (scope.ts), one tag row set ('' unless a
// tag is asked for or the series is grouped by tag) and one recipient-domain row set (the
// ALL_DOMAINS rows unless one domain is asked for or the series is grouped by domain); a summary is the sum of its hours, a
// series' points sum to the same totals as the summary over the same range.

import { sql } from 'kysely'
import type { Store } from '../../store/db.ts'
import { timeOfId } from '../../store/ids.ts'
import type { Clock } from '../../time/clock.ts'
import type { Tx } from '../messages/context.ts'
import { addCounts, COUNTED_TYPES, COUNTERS, type Counts, ratesOf, zeroCounts } from './counters.ts'
import { readCursor } from './fold.ts'
import type { AnalyticsScope } from './scope.ts'
import { ALL_DOMAINS, HOUR_MS, type RollupDelta, tallyEvents } from './tally.ts'

const DAY_MS = 24 * HOUR_MS

export interface AnalyticsContext {
  store: Store
  clock: Clock
}

export type GroupBy = 'none' | 'sending_domain' | 'recipient_domain' | 'tag'

interface Bucketed extends Counts {
  /** Start of the bucket: an hour, or a day when read from day rows. */
  start: number
  group: string
}

interface Part {
  grain: 'hour' | 'day'
  from: number
  to: number
}

/** The scope's range as the rows to read: whole days from day rows (unless hours are wanted), the rest from hour rows. */
function partsOf(s: AnalyticsScope, fine: boolean): Part[] {
  const d0 = Math.ceil(s.from / DAY_MS) * DAY_MS
  const d1 = Math.floor(s.to / DAY_MS) * DAY_MS
  if (fine || d0 >= d1) return [{ grain: 'hour', from: s.from, to: s.to }]
  const out: Part[] = [{ grain: 'day', from: d0, to: d1 }]
  if (s.from < d0) out.push({ grain: 'hour', from: s.from, to: d0 })
  if (d1 < s.to) out.push({ grain: 'hour', from: d1, to: s.to })
  return out
}

/** The scope's rollup rows (tag rows only for group 'tag', domain rows only for its group). */
function scopedRows(db: Tx, s: AnalyticsScope, group: GroupBy, fine: boolean) {
  const parts = partsOf(s, fine)
  let q = db
    .selectFrom('analytics_counts')
    .where('org_id', '=', s.org_id)
    .where((eb) =>
      eb.or(
        parts.map((p) =>
          eb.and([eb('grain', '=', p.grain), eb('start', '>=', p.from), eb('start', '<', p.to)]),
        ),
      ),
    )
  if (s.tag !== null) q = q.where('tag', '=', s.tag)
  else q = group === 'tag' ? q.where('tag', '>', '') : q.where('tag', '=', '')
  if (s.mailbox_ids !== null) q = q.where('mailbox_id', 'in', s.mailbox_ids)
  if (s.sending_domain !== null) q = q.where('sending_domain', '=', s.sending_domain)
  if (s.recipient_domain !== null) q = q.where('recipient_domain', '=', s.recipient_domain)
  else q = q.where('recipient_domain', group === 'recipient_domain' ? '!=' : '=', ALL_DOMAINS)
  return q
}

/** Rollup rows of the scope summed per bucket and group (hour buckets when `fine`); only `only` groups when given. */
async function rollupRows(
  db: Tx,
  s: AnalyticsScope,
  group: GroupBy,
  o: { fine: boolean; only?: string[] },
): Promise<Bucketed[]> {
  if (s.mailbox_ids !== null && s.mailbox_ids.length === 0) return []
  if (o.only !== undefined && o.only.length === 0) return []
  const groupCol = group === 'none' ? null : group
  let q = scopedRows(db, s, group, o.fine)
    .select('start')
    .select(groupCol ? sql<string>`${sql.ref(groupCol)}`.as('grp') : sql<string>`''`.as('grp'))
    .select(COUNTERS.map((c) => sql<number>`sum(${sql.ref(c)})`.as(c)))
  if (groupCol && o.only) q = q.where(groupCol, 'in', o.only)
  q = q.groupBy('start')
  if (groupCol) q = q.groupBy(groupCol)
  const rows = await q.execute()
  return rows.map((r) => {
    const out = { start: Number(r.start), group: String(r.grp), ...zeroCounts() }
    for (const c of COUNTERS) out[c] = Number((r as Record<string, unknown>)[c] ?? 0)
    return out
  })
}

const matches = (s: AnalyticsScope, group: GroupBy, d: RollupDelta) =>
  d.org_id === s.org_id &&
  d.start >= s.from &&
  d.start < s.to &&
  (s.tag !== null ? d.tag === s.tag : group === 'tag' ? d.tag !== '' : d.tag === '') &&
  (s.mailbox_ids === null || s.mailbox_ids.includes(d.mailbox_id)) &&
  (s.sending_domain === null || d.sending_domain === s.sending_domain) &&
  (s.recipient_domain !== null
    ? d.recipient_domain === s.recipient_domain
    : group === 'recipient_domain'
      ? d.recipient_domain !== ALL_DOMAINS
      : d.recipient_domain === ALL_DOMAINS)

/** The scope's events not folded yet, tallied as the fold would. */
async function tailRows(db: Tx, s: AnalyticsScope, group: GroupBy): Promise<Bucketed[]> {
  // Test traffic is never folded: the test view tallies all of its range from the events.
  const cursor = s.test ? '' : await readCursor(db)
  const since = Math.max(s.from, cursor ? timeOfId(cursor) : 0)
  if (since >= s.to) return []
  const events = await db
    .selectFrom('events')
    .select(['id', 'org_id', 'type', 'subject_id', 'payload', 'created_at'])
    .where('org_id', '=', s.org_id)
    .where('created_at', '>=', since)
    .where('created_at', '<', s.to)
    .where('id', '>', cursor)
    .where('type', 'in', [...COUNTED_TYPES])
    .where('payload', s.test ? 'like' : 'not like', '%"test":true%')
    .execute()
  if (events.length === 0) return []
  const out: Bucketed[] = []
  for (const d of (await tallyEvents(db, events, s.test)).values())
    if (matches(s, group, d)) {
      const row: Bucketed = { start: d.start, group: group === 'none' ? '' : d[group], ...zeroCounts() }
      for (const c of COUNTERS) row[c] = d[c]
      out.push(row)
    }
  return out
}

/**
 * The groups with most mail sent: the rollups' leaders plus the tail's groups, ranked by
 * their sum. (A group outside the rollups' first limit + 50 that the tail lifts into the
 * first `limit` is the only way this differs from ranking everything.)
 */
async function topGroups(db: Tx, s: AnalyticsScope, group: GroupBy, limit: number, tail: Bucketed[]) {
  const sent = new Map<string, number>()
  if (!s.test && (s.mailbox_ids === null || s.mailbox_ids.length > 0)) {
    const rows = await scopedRows(db, s, group, false)
      .select(sql<string>`${sql.ref(group)}`.as('grp'))
      .select(sql<number>`sum(sent)`.as('sent'))
      .groupBy(group as 'tag')
      .orderBy('sent', 'desc')
      .orderBy('grp')
      .limit(limit + 50)
      .execute()
    for (const r of rows) sent.set(String(r.grp), Number(r.sent))
  }
  for (const r of tail) sent.set(r.group, (sent.get(r.group) ?? 0) + r.sent)
  return [...sent]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, limit)
    .map(([g]) => g)
}

/** Hourly rows of the scope (the first `limit` groups by sent), rollups and tail alike. */
async function allRows(
  ctx: AnalyticsContext,
  s: AnalyticsScope,
  group: GroupBy,
  o: { fine: boolean; limit?: number },
): Promise<Bucketed[]> {
  const limit = o.limit ?? 0
  // One snapshot for the rollups, the cursor and the tail: a fold committing between them
  // would otherwise count its batch twice or not at all. (SQLite transactions hold the write
  // lock, so no fold commits meanwhile; PostgreSQL needs REPEATABLE READ for one snapshot.)
  const t = ctx.store.db.transaction()
  return (ctx.store.dialect === 'postgres' ? t.setIsolationLevel('repeatable read') : t).execute(
    async (tx) => {
      const tail = await tailRows(tx, s, group)
      if (s.test) {
        const only = new Set(await topGroups(tx, s, group, limit || 1, tail))
        return group === 'none' ? tail : tail.filter((r) => only.has(r.group))
      }
      if (group === 'none') return [...(await rollupRows(tx, s, group, { fine: o.fine })), ...tail]
      const only = await topGroups(tx, s, group, limit, tail)
      return [
        ...(await rollupRows(tx, s, group, { fine: o.fine, only })),
        ...tail.filter((r) => only.includes(r.group)),
      ]
    },
  )
}

export interface Summary {
  object: 'deliverability_summary'
  from: string
  to: string
  counts: Counts & { bounced: number }
  rates: ReturnType<typeof ratesOf>
}

const withTotal = (c: Counts) => ({ ...c, bounced: c.bounced_hard + c.bounced_soft })

export async function deliverabilitySummary(ctx: AnalyticsContext, s: AnalyticsScope): Promise<Summary> {
  const total = zeroCounts()
  for (const r of await allRows(ctx, s, 'none', { fine: false })) addCounts(total, r)
  return {
    object: 'deliverability_summary',
    from: new Date(s.from).toISOString(),
    to: new Date(s.to).toISOString(),
    counts: withTotal(total),
    rates: ratesOf(total),
  }
}

export interface SeriesPoint extends Counts {
  start: string
}

export interface Series {
  /** The domain or tag of this series; null when not grouped. */
  group: string | null
  totals: Counts & { bounced: number }
  rates: ReturnType<typeof ratesOf>
  points: SeriesPoint[]
}

export interface Timeseries {
  object: 'deliverability_timeseries'
  interval: 'hour' | 'day'
  group_by: GroupBy
  from: string
  to: string
  series: Series[]
}

export async function deliverabilityTimeseries(
  ctx: AnalyticsContext,
  s: AnalyticsScope,
  o: { interval: 'hour' | 'day'; group_by: GroupBy; limit: number },
): Promise<Timeseries> {
  const step = o.interval === 'day' ? 24 * HOUR_MS : HOUR_MS
  const groups = new Map<string, Map<number, Counts>>()
  for (const r of await allRows(ctx, s, o.group_by, { fine: o.interval === 'hour', limit: o.limit })) {
    const g = groups.get(r.group) ?? new Map<number, Counts>()
    const at = Math.floor(r.start / step) * step
    g.set(at, addCounts(g.get(at) ?? zeroCounts(), r))
    groups.set(r.group, g)
  }
  if (o.group_by === 'none' && groups.size === 0) groups.set('', new Map())
  const series = [...groups].map(([group, points]) => {
    const totals = zeroCounts()
    for (const c of points.values()) addCounts(totals, c)
    const list: SeriesPoint[] = []
    for (let t = s.from; t < s.to; t += step)
      list.push({ start: new Date(t).toISOString(), ...(points.get(t) ?? zeroCounts()) })
    return {
      group: o.group_by === 'none' ? null : group,
      totals: withTotal(totals),
      rates: ratesOf(totals),
      points: list,
    }
  })
  series.sort((a, b) => b.totals.sent - a.totals.sent || (a.group ?? '').localeCompare(b.group ?? ''))
  return {
    object: 'deliverability_timeseries',
    interval: o.interval,
    group_by: o.group_by,
    from: new Date(s.from).toISOString(),
    to: new Date(s.to).toISOString(),
    series: series.slice(0, o.limit),
  }
}
