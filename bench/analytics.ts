// Benchmark `analytics`: deliverability summary and time-series latency over 10 million
// events' worth of rollups, and the fold's own throughput.
// How the rollup is fed here is how it is fed in production, in two parts: `--real` events
// (default 200,000) are written as the queue writes them (outbound messages, recipients,
// events with the worker's payloads, across one day) and folded by the real fold
// (services/analytics/fold.ts), timed; the rest of `--events` (default 10,000,000) over 30
// days is added as the rollup rows the fold would have made for such traffic, through the
// fold's own upsert; and `--tail` events (default 2,000) are left unfolded, as if the job
// were a few seconds behind, so every summary also tallies a live tail. Then each query runs
// `--runs` times (default 50, after 5 warm-ups) and p50/p99 are printed.
// Options: --events N, --real N, --tail N, --runs N, --recipient-domains N (default 500, Zipf),
// --pg (PostgreSQL at POSTERN_DATABASE_URL
// or postgres://postgres@127.0.0.1:5432/test, in a fresh schema dropped afterwards).

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import pg from 'pg'
import { loadConfig } from '../src/config/load.ts'
import { openMigratedStore } from '../src/main.ts'
import { COUNTERS, type Counts, zeroCounts } from '../src/services/analytics/counters.ts'
import { foldAll, withDayRows } from '../src/services/analytics/fold.ts'
import { deliverabilitySummary, deliverabilityTimeseries } from '../src/services/analytics/query.ts'
import type { AnalyticsScope } from '../src/services/analytics/scope.ts'
import { ALL_DOMAINS, type RollupDelta } from '../src/services/analytics/tally.ts'
import type { Store } from '../src/store/db.ts'
import { newId } from '../src/store/ids.ts'
import { manualClock } from '../src/time/clock.ts'
import { addDomain, addOrg } from '../test/analytics/fixtures.ts'
import { intOption } from './lib/args.ts'

const HOUR = 3_600_000
/** How far behind the clock the fold is when the queries run. */
const TAIL_MS = 10 * 60_000
const DAYS = 30
const SENDING = ['news.shop.example', 'mail.shop.example', 'shop.example']
/** Recipient domains: a few big providers and a long tail (`--recipient-domains`). */
let RECIPIENT: string[] = []
/** Share of mail per recipient domain (Zipf: the n-th domain gets 1/n of the first's). */
let WEIGHT: number[] = []
let WSUM = 1
function setRecipientDomains(n: number) {
  const big = ['gmail.com', 'outlook.com', 'yahoo.com', 'icloud.com']
  RECIPIENT = Array.from({ length: n }, (_, i) => big[i] ?? `isp${i}.example`)
  WEIGHT = RECIPIENT.map((_, i) => 1 / (i + 1))
  WSUM = WEIGHT.reduce((x, y) => x + y, 0)
}
const TAGS = ['camp:spring', 'camp:summer', 'camp:welcome', 'kind:receipt', 'kind:digest']

let seed = 42
const rand = () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
  return seed / 2_147_483_648
}
const pickWeighted = () => {
  let x = rand() * WSUM
  for (let i = 0; i < WEIGHT.length; i++) {
    x -= WEIGHT[i] as number
    if (x <= 0) return RECIPIENT[i] as string
  }
  return RECIPIENT[0] as string
}

/** Rounds up with the probability of the fraction, so rare outcomes (complaints) still show. */
const roundRandom = (x: number) => Math.floor(x) + (rand() < x - Math.floor(x) ? 1 : 0)

/** Per recipient sent: how many events of each counter follow (realistic marketing mail). */
const MIX: Counts = {
  sent: 1,
  delivered: 0.95,
  deferred: 0.06,
  bounced_hard: 0.025,
  bounced_soft: 0.01,
  complained: 0.001,
  opened: 0.35,
  clicked: 0.05,
  unsubscribed: 0.002,
  suppressed: 0.01,
}
const EVENTS_PER_SENT = COUNTERS.reduce((n, c) => n + MIX[c], 0)

async function openBenchStore(usePg: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-analytics-'))
  const url = process.env.POSTERN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
  const schema = `bench_analytics_${randomBytes(4).toString('hex')}`
  const env: Record<string, string> = { POSTERN_DATA_DIR: dir, POSTERN_LOG_LEVEL: 'silent' }
  if (usePg) Object.assign(env, { POSTERN_DATABASE_URL: url, POSTERN_DATABASE_SCHEMA: schema })
  else delete process.env.POSTERN_DATABASE_URL
  const { config } = loadConfig({ env, args: [] })
  const store = await openMigratedStore(config)
  return {
    store,
    async close() {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
      if (usePg) {
        const c = new pg.Client({ connectionString: url })
        await c.connect()
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
        await c.end()
      }
    },
  }
}

/** Rollup rows the fold would have made for `events` events spread over the 30 days before `end`. */
async function fillRollups(store: Store, org: string, end: number, events: number): Promise<number> {
  const hours = DAYS * 24
  const sentPerHour = events / EVENTS_PER_SENT / hours
  let rows = 0
  let represented = 0
  let pending: RollupDelta[] = []
  for (let h = 0; h < hours; h++) {
    const hour = Math.floor(end / HOUR) * HOUR - (hours - h) * HOUR
    // Daily rhythm: twice the mail at midday as at night.
    const load =
      (sentPerHour * (0.6 + 0.8 * Math.sin(((hour / HOUR) % 24) * (Math.PI / 24)))) / (0.6 + 1.6 / Math.PI)
    const deltas: RollupDelta[] = []
    // The rows counting every recipient domain ('*'), summed as the fold sums them.
    const all = new Map<string, RollupDelta>()
    const addAll = (d: RollupDelta) => {
      const k = `${d.tag} ${d.sending_domain}`
      const row = all.get(k) ?? { ...d, recipient_domain: ALL_DOMAINS, ...zeroCounts() }
      for (const c of COUNTERS) row[c] += d[c]
      all.set(k, row)
    }
    for (const sending_domain of SENDING)
      for (let i = 0; i < RECIPIENT.length; i++) {
        const share = (load / SENDING.length) * ((WEIGHT[i] as number) / WSUM)
        const c = zeroCounts()
        for (const k of COUNTERS) c[k] = roundRandom(share * MIX[k] * (0.8 + 0.4 * rand()))
        if (c.sent === 0) continue
        represented += COUNTERS.reduce((n, k) => n + c[k], 0)
        const key = {
          org_id: org,
          grain: 'hour' as const,
          start: hour,
          sending_domain,
          recipient_domain: RECIPIENT[i] as string,
          mailbox_id: '',
        }
        deltas.push({ ...key, tag: '', ...c })
        addAll({ ...key, tag: '', ...c })
        // Most mail carries one tag: its share goes to that tag's row as well.
        const tag = TAGS[(i + h) % TAGS.length] as string
        const tagged = zeroCounts()
        for (const k of COUNTERS) tagged[k] = roundRandom(c[k] * 0.7)
        deltas.push({ ...key, tag, ...tagged })
        addAll({ ...key, tag, ...tagged })
      }
    deltas.push(...all.values())
    pending.push(...deltas)
    // A whole UTC day at a time: its hour rows and the day rows that sum them, each new here,
    // so plain inserts make what the fold's upserts would.
    if (h % 24 === 23 || h === hours - 1) {
      const day = withDayRows(pending)
      await store.db.transaction().execute(async (tx) => {
        for (let i = 0; i < day.length; i += 1000)
          await tx
            .insertInto('analytics_counts')
            .values(day.slice(i, i + 1000))
            .execute()
      })
      rows += day.length
      pending = []
    }
  }
  console.log(
    `  rollup rows added for ${represented.toLocaleString()} events over ${DAYS} days: ${rows.toLocaleString()}`,
  )
  return represented
}

/** Messages, recipients and their events as the queue writes them, `count` events in all. */
async function writeEvents(
  store: Store,
  org: string,
  domains: Record<string, string>,
  from: number,
  span: number,
  count: number,
): Promise<number> {
  let written = 0
  while (written < count) {
    const msgs: Record<string, unknown>[] = []
    const rcpts: Record<string, unknown>[] = []
    const evs: Record<string, unknown>[] = []
    for (let m = 0; m < 200 && written + evs.length < count; m++) {
      const at = from + Math.floor(((written + evs.length) / count) * span)
      const id = newId('eml', at)
      const sd = SENDING[Math.floor(rand() * SENDING.length)] as string
      const tags =
        rand() < 0.7
          ? { [TAGS[m % TAGS.length]?.split(':')[0] as string]: TAGS[m % TAGS.length]?.split(':')[1] }
          : {}
      msgs.push({
        id,
        org_id: org,
        domain_id: domains[sd],
        mailbox_id: null,
        mail_from: `bounces+${id}@${sd}`,
        from_header: `shop@${sd}`,
        status: 'sent',
        tags: JSON.stringify(tags),
        created_at: at,
        updated_at: at,
      })
      const ev = (type: string, t: number, payload: Record<string, unknown>) =>
        evs.push({
          id: newId('evt', t),
          org_id: org,
          type,
          subject_id: id,
          actor: 'queue',
          ip: null,
          payload: JSON.stringify({ email_id: id, ...payload }),
          created_at: t,
        })
      ev('email.queued', at, { recipients: 1 })
      ev('email.sent', at + 1, {})
      const n = 1 + Math.floor(rand() * 2)
      for (let r = 0; r < n; r++) {
        const address = `u${written + evs.length}@${pickWeighted()}`
        rcpts.push({
          id: newId('rcp', at),
          org_id: org,
          outbound_id: id,
          address,
          domain: address.split('@')[1],
          state: 'delivered',
          created_at: at,
          updated_at: at,
        })
        const x = rand()
        if (x < 0.03)
          ev('email.bounced', at + 2, {
            recipient: address,
            code: 550,
            enhanced: '5.1.1',
            response: '5.1.1 No such user',
            hard: true,
            source: 'smtp',
          })
        else {
          if (x < 0.08)
            ev('email.deferred', at + 2, {
              recipient: address,
              code: 451,
              response: '4.7.1 Try later',
              attempt: 1,
            })
          ev('email.delivered', at + 3, {
            recipient: address,
            code: 250,
            response: '250 2.0.0 OK',
            mta: 'mx',
          })
          if (rand() < 0.35) ev('email.opened', at + 60_000, { recipient: address })
          if (rand() < 0.05)
            ev('email.clicked', at + 90_000, { recipient: address, url: 'https://shop.example/' })
        }
      }
    }
    await store.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('outbound_messages')
        .values(msgs as never)
        .execute()
      await tx
        .insertInto('outbound_recipients')
        .values(rcpts as never)
        .execute()
      for (let i = 0; i < evs.length; i += 500)
        await tx
          .insertInto('events')
          .values(evs.slice(i, i + 500) as never)
          .execute()
    })
    written += evs.length
  }
  return written
}

function percentiles(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b)
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] as number
  return {
    p50: Math.round(at(0.5) * 10) / 10,
    p99: Math.round(at(0.99) * 10) / 10,
    max: Math.round(at(1) * 10) / 10,
  }
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      events: { type: 'string' },
      real: { type: 'string' },
      tail: { type: 'string' },
      runs: { type: 'string' },
      pg: { type: 'boolean' },
      'recipient-domains': { type: 'string' },
    },
  })
  const total = intOption(values.events, 10_000_000, 'events', 1)
  const real = Math.min(total, intOption(values.real, 200_000, 'real'))
  const tail = intOption(values.tail, 2_000, 'tail')
  const runs = intOption(values.runs, 50, 'runs', 1)
  setRecipientDomains(intOption(values['recipient-domains'], 500, 'recipient-domains', 1))
  const db = values.pg ? 'postgres' : 'sqlite'
  const end = Date.UTC(2026, 11, 1)
  const clock = manualClock(end)
  const b = await openBenchStore(values.pg ?? false)
  try {
    const store = b.store
    const org = await addOrg(store.db, 'Shop', end - DAYS * 24 * HOUR)
    const other = await addOrg(store.db, 'Neighbour', end - DAYS * 24 * HOUR)
    const domains: Record<string, string> = {}
    for (const d of SENDING) domains[d] = await addDomain(store.db, org, d, end - DAYS * 24 * HOUR)
    console.log(
      `analytics benchmark: ${db}, ${total.toLocaleString()} events (${real.toLocaleString()} folded for real), ${RECIPIENT.length} recipient domains`,
    )

    let t0 = performance.now()
    const filled = await fillRollups(store, org, end - 24 * HOUR, total - real)
    await fillRollups(store, other, end - 24 * HOUR, Math.min(200_000, total / 50))
    console.log(`  fill: ${((performance.now() - t0) / 1000).toFixed(1)} s`)

    t0 = performance.now()
    const written = await writeEvents(store, org, domains, end - 24 * HOUR, 23 * HOUR, real)
    const writeS = (performance.now() - t0) / 1000
    t0 = performance.now()
    const folded = await foldAll(store, end - TAIL_MS, { settleMs: 0, batch: 5000, maxBatches: 1_000_000 })
    const foldS = (performance.now() - t0) / 1000
    const foldRate = Math.round(folded.events / foldS)
    console.log(
      `  events written: ${written.toLocaleString()} in ${writeS.toFixed(1)} s; folded ${folded.events.toLocaleString()} counted events in ${foldS.toFixed(1)} s (${foldRate.toLocaleString()} events/s, ${folded.batches} batches)`,
    )
    // The live tail: events the job has not reached yet (written after the cursor's time).
    const tailWritten = tail
      ? await writeEvents(store, org, domains, end - TAIL_MS + 1, TAIL_MS - 120_000, tail)
      : 0
    // Table statistics, as autovacuum (PostgreSQL) or a periodic ANALYZE (SQLite) keep them.
    await sql`analyze`.execute(store.db)
    const rollupRows = await store.db
      .selectFrom('analytics_counts')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    console.log(
      `  rollup rows: ${Number(rollupRows.n).toLocaleString()}; unfolded tail: ${tailWritten.toLocaleString()} events; events represented: ${(filled + written + tailWritten).toLocaleString()}`,
    )

    const ctx = { store, clock }
    const scope = (s: Partial<AnalyticsScope>): AnalyticsScope => ({
      org_id: org,
      mailbox_ids: null,
      sending_domain: null,
      recipient_domain: null,
      tag: null,
      test: false,
      from: Math.floor(end / HOUR) * HOUR - DAYS * 24 * HOUR,
      to: Math.ceil(end / HOUR) * HOUR + HOUR,
      ...s,
    })
    const queries: [string, () => Promise<unknown>][] = [
      ['summary, 30 days', () => deliverabilitySummary(ctx, scope({}))],
      ['summary, 30 days, tag', () => deliverabilitySummary(ctx, scope({ tag: 'camp:spring' }))],
      [
        'summary, 30 days, recipient domain',
        () => deliverabilitySummary(ctx, scope({ recipient_domain: 'gmail.com' })),
      ],
      [
        'summary, 30 days, sending domain',
        () => deliverabilitySummary(ctx, scope({ sending_domain: SENDING[0] as string })),
      ],
      [
        'timeseries day, 30 days',
        () => deliverabilityTimeseries(ctx, scope({}), { interval: 'day', group_by: 'none', limit: 10 }),
      ],
      [
        'timeseries hour, 7 days, by recipient domain',
        () =>
          deliverabilityTimeseries(ctx, scope({ from: Math.floor(end / HOUR) * HOUR - 7 * 24 * HOUR }), {
            interval: 'hour',
            group_by: 'recipient_domain',
            limit: 10,
          }),
      ],
      [
        'timeseries day, 30 days, by tag',
        () => deliverabilityTimeseries(ctx, scope({}), { interval: 'day', group_by: 'tag', limit: 10 }),
      ],
    ]
    const results: Record<string, ReturnType<typeof percentiles>> = {}
    console.log('query                                          p50 ms   p99 ms   max ms')
    for (const [name, q] of queries) {
      for (let i = 0; i < 5; i++) await q()
      const times: number[] = []
      for (let i = 0; i < runs; i++) {
        const s = performance.now()
        await q()
        times.push(performance.now() - s)
      }
      const p = percentiles(times)
      results[name] = p
      console.log(
        `${name.padEnd(46)} ${String(p.p50).padStart(6)} ${String(p.p99).padStart(8)} ${String(p.max).padStart(8)}`,
      )
    }
    const check = await deliverabilitySummary(ctx, scope({}))
    console.log(`  summary counts: ${JSON.stringify(check.counts)}`)
    console.log(
      JSON.stringify({
        bench: 'analytics',
        db,
        events: filled + written + tailWritten,
        folded_events_per_s: foldRate,
        rollup_rows: Number(rollupRows.n),
        tail_events: tailWritten,
        runs,
        queries: results,
      }),
    )
  } finally {
    await b.close()
  }
}
