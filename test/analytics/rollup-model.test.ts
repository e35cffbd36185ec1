// Model test of the analytics rollup: random messages and events (every counted type, test
// traffic, system mail, events of other types, two orgs, tags, domains) written through the event writer;
// the summary and the time series, before any fold, part-way through (the live tail) and
// after folds by two stores at once (two processes), must equal a direct count over the
// generated events made here without the service's code.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { foldAll, foldOnce } from '../../src/services/analytics/fold.ts'
import { deliverabilitySummary, deliverabilityTimeseries } from '../../src/services/analytics/query.ts'
import type { AnalyticsScope } from '../../src/services/analytics/scope.ts'
import type { EventType } from '../../src/services/events/types.ts'
import { manualClock } from '../../src/time/clock.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { openTestStore, type TestStore } from '../helpers/store.ts'
import { addDomain, addEvent, addMessage, addOrg, type FixtureMessage } from './fixtures.ts'

const HOUR = 3_600_000
const START = Date.UTC(2026, 5, 1)
const SPAN = 3 * 24 * HOUR

/** mulberry32: a small seeded generator, so a failing run can be repeated with its seed. */
function rng(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Gen {
  org: string
  type: EventType
  at: number
  msg: FixtureMessage | null
  payload: Record<string, unknown>
}

type Key =
  | 'sent'
  | 'delivered'
  | 'deferred'
  | 'bounced_hard'
  | 'bounced_soft'
  | 'complained'
  | 'opened'
  | 'clicked'
  | 'unsubscribed'
  | 'suppressed'

/** The reference: what each generated event counts, written out by hand. */
function expected(
  events: Gen[],
  s: { org: string; from: number; to: number; sending?: string; rdomain?: string; tag?: string },
) {
  const out: Record<Key, number> = {
    sent: 0,
    delivered: 0,
    deferred: 0,
    bounced_hard: 0,
    bounced_soft: 0,
    complained: 0,
    opened: 0,
    clicked: 0,
    unsubscribed: 0,
    suppressed: 0,
  }
  const perHour = new Map<number, number>()
  for (const e of events) {
    if (e.org !== s.org || e.at < s.from || e.at >= s.to || e.payload.test === true) continue
    if (e.msg?.origin === 'system') continue
    if (s.sending !== undefined && (e.msg?.sending_domain ?? '') !== s.sending) continue
    if (s.tag !== undefined) {
      const [n, v] = s.tag.split(':')
      if (e.msg?.tags[n as string] !== v) continue
    }
    const rdom = typeof e.payload.recipient === 'string' ? (e.payload.recipient.split('@')[1] as string) : ''
    let add: [Key, number][] = []
    if (e.type === 'email.sent') {
      const live = (e.msg?.recipients ?? []).filter((r) => !r.suppressed)
      add = live
        .filter((r) => s.rdomain === undefined || r.address.endsWith(`@${s.rdomain}`))
        .map(() => ['sent', 1])
    } else {
      if (s.rdomain !== undefined && rdom !== s.rdomain) continue
      const simple: Partial<Record<EventType, Key>> = {
        'email.delivered': 'delivered',
        'email.deferred': 'deferred',
        'email.complained': 'complained',
        'email.opened': 'opened',
        'email.clicked': 'clicked',
        'email.unsubscribed': 'unsubscribed',
        'email.suppressed': 'suppressed',
      }
      if ((e.type === 'email.opened' || e.type === 'email.clicked') && e.payload.bot === true) add = []
      else if (simple[e.type]) add = [[simple[e.type] as Key, 1]]
      else if (e.type === 'email.bounced')
        add = [[e.payload.hard === false ? 'bounced_soft' : 'bounced_hard', 1]]
      else if (e.type === 'email.failed' && e.payload.recipient) add = [['bounced_soft', 1]]
    }
    for (const [k, n] of add) {
      out[k] += n
      const h = Math.floor(e.at / HOUR) * HOUR
      if (k === 'sent') perHour.set(h, (perHour.get(h) ?? 0) + n)
    }
  }
  return { counts: out, sentPerHour: perHour }
}

for (const dialect of DIALECTS) {
  describe(`analytics rollup model (${dialect})`, () => {
    let t: TestStore
    const seed = Number(process.env.ANALYTICS_SEED ?? Math.floor(Math.random() * 2 ** 31))
    const rand = rng(seed)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
    const events: Gen[] = []
    let orgs: string[] = []

    before(async () => {
      t = await openTestStore(dialect)
      const db = t.store.db
      const o1 = await addOrg(db, 'one', START)
      const o2 = await addOrg(db, 'two', START)
      orgs = [o1, o2]
      const domains: Record<string, { id: string; name: string }[]> = {
        [o1]: [
          { id: await addDomain(db, o1, 'a.example', START), name: 'a.example' },
          { id: await addDomain(db, o1, 'b.example', START), name: 'b.example' },
        ],
        [o2]: [{ id: await addDomain(db, o2, 'c.example', START), name: 'c.example' }],
      }
      const msgs: FixtureMessage[] = []
      for (let i = 0; i < 120; i++) {
        const org = pick(orgs)
        const dom = rand() < 0.15 ? { id: null, name: 'gone.example' } : pick(domains[org] ?? [])
        const tags: Record<string, string> = {}
        if (rand() < 0.5) tags.camp = pick(['spring', 'fall'])
        if (rand() < 0.3) tags.kind = 'news'
        const n = 1 + Math.floor(rand() * 3)
        const recipients = Array.from({ length: n }, (_, j) => ({
          address: `u${i}-${j}@${pick(['gmail.test', 'yahoo.test', 'corp.test'])}`,
          suppressed: rand() < 0.15,
        }))
        msgs.push(
          await addMessage(db, {
            org_id: org,
            domain_id: dom.id,
            sending_domain: dom.name,
            tags,
            recipients,
            origin: rand() < 0.1 ? 'system' : 'api',
            now: START,
          }),
        )
      }
      const types: EventType[] = [
        'email.sent',
        'email.delivered',
        'email.deferred',
        'email.bounced',
        'email.failed',
        'email.complained',
        'email.opened',
        'email.clicked',
        'email.unsubscribed',
        'email.suppressed',
        'email.queued',
        'email.held',
      ]
      for (let i = 0; i < 1500; i++) {
        const msg = rand() < 0.95 ? pick(msgs) : null
        const org = msg?.org_id ?? pick(orgs)
        const type = pick(types)
        const rcpt = msg ? pick(msg.recipients).address : `someone@${pick(['gmail.test', 'corp.test'])}`
        const payload: Record<string, unknown> = {}
        if (type !== 'email.sent' && !(type === 'email.failed' && rand() < 0.5)) payload.recipient = rcpt
        if (type === 'email.bounced') payload.hard = rand() < 0.6 ? true : rand() < 0.5 ? false : undefined
        if (rand() < 0.07) payload.test = true
        if ((type === 'email.opened' || type === 'email.clicked') && rand() < 0.3) payload.bot = true
        const at = START + Math.floor(rand() * SPAN)
        events.push({ org, type, at, msg, payload })
      }
      // Written in time order, as a clock would; ids then sort by time.
      events.sort((a, b) => a.at - b.at)
      for (const e of events)
        await addEvent(db, {
          org_id: e.org,
          type: e.type,
          at: e.at,
          email_id: e.msg?.id ?? null,
          payload: e.payload,
        })
    })
    after(() => t?.close())

    const scopeOf = (s: Partial<AnalyticsScope> & { org_id: string }): AnalyticsScope => ({
      mailbox_ids: null,
      sending_domain: null,
      recipient_domain: null,
      tag: null,
      test: false,
      from: START,
      to: START + SPAN,
      ...s,
    })
    const ctx = () => ({ store: t.store, clock: manualClock(START + SPAN) })

    async function checkAll(label: string) {
      type Case = {
        org: string
        sending?: string
        rdomain?: string
        tag?: string
        from?: number
        to?: number
      }
      const cases: Case[] = [
        ...orgs.map((org) => ({ org })),
        { org: orgs[0] as string, sending: 'a.example' },
        { org: orgs[0] as string, sending: 'gone.example' },
        { org: orgs[0] as string, rdomain: 'gmail.test' },
        { org: orgs[0] as string, tag: 'camp:spring' },
        { org: orgs[1] as string, tag: 'kind:news', rdomain: 'corp.test' },
        { org: orgs[0] as string, from: START + 7 * HOUR, to: START + 30 * HOUR },
        // Hours, a whole day (read from day rows once folded), hours again.
        { org: orgs[0] as string, from: START + 5 * HOUR, to: START + 51 * HOUR, tag: 'camp:fall' },
        { org: orgs[1] as string, from: START + 5 * HOUR, to: START + 51 * HOUR, rdomain: 'yahoo.test' },
      ]
      for (const c of cases) {
        const from = c.from ?? START
        const to = c.to ?? START + SPAN
        const want = expected(events, { ...c, from, to })
        const s = scopeOf({
          org_id: c.org,
          from,
          to,
          ...(c.sending ? { sending_domain: c.sending } : {}),
          ...(c.rdomain ? { recipient_domain: c.rdomain } : {}),
          ...(c.tag ? { tag: c.tag } : {}),
        })
        const got = await deliverabilitySummary(ctx(), s)
        const { bounced, ...counts } = got.counts
        assert.deepEqual(counts, want.counts, `${label}: summary ${JSON.stringify(c)} (seed ${seed})`)
        assert.equal(bounced, want.counts.bounced_hard + want.counts.bounced_soft)
        const hourly = await deliverabilityTimeseries(ctx(), s, {
          interval: 'hour',
          group_by: 'none',
          limit: 10,
        })
        const series = hourly.series[0]
        assert.ok(series)
        assert.equal(series.points.length, (to - from) / HOUR)
        for (const p of series.points)
          assert.equal(
            p.sent,
            want.sentPerHour.get(Date.parse(p.start)) ?? 0,
            `${label}: hour ${p.start} (seed ${seed})`,
          )
      }
    }

    it('counts exactly what a direct count over the events gives, before, during and after folding', async () => {
      await checkAll('nothing folded')
      // Fold up to the middle of the span in small batches: the rest is the live tail.
      const mid = START + Math.floor(SPAN / 2)
      let r = await foldOnce(t.store, mid, { settleMs: 0, batch: 37 })
      assert.ok(r.events > 0)
      while (r.more) r = await foldOnce(t.store, mid, { settleMs: 0, batch: 37 })
      await checkAll('half folded')
      // Two stores (two processes' connections) fold the rest at the same time.
      const other = await t.reopen()
      const end = START + SPAN + HOUR
      const [x, y] = await Promise.allSettled([
        foldAll(t.store, end, { settleMs: 0, batch: 50 }),
        foldAll(other, end, { settleMs: 0, batch: 50 }),
      ])
      // A folder that lost the race to the cursor rolls back (no double count); fold again.
      if (x.status === 'rejected' || y.status === 'rejected') await foldAll(t.store, end, { settleMs: 0 })
      const cursor = await t.store.db.selectFrom('analytics_cursor').selectAll().executeTakeFirstOrThrow()
      const countedInSpan = events.filter((e) => !['email.queued', 'email.held'].includes(e.type)).length
      assert.equal(Number(cursor.folded), countedInSpan, 'every counted-type event folded exactly once')
      await checkAll('all folded')
      // Folding again changes nothing.
      assert.equal((await foldOnce(t.store, end, { settleMs: 0 })).events, 0)
      await checkAll('folded twice')
    })

    it('day buckets and per-group series add up to the summary', async () => {
      const org = orgs[0] as string
      const s = scopeOf({ org_id: org })
      const want = expected(events, { org, from: START, to: START + SPAN })
      const daily = await deliverabilityTimeseries(ctx(), s, { interval: 'day', group_by: 'none', limit: 10 })
      assert.equal(daily.series[0]?.points.length, 3)
      assert.equal(
        daily.series[0]?.points.reduce((n, p) => n + p.delivered, 0),
        want.counts.delivered,
      )
      for (const group_by of ['recipient_domain', 'sending_domain'] as const) {
        const g = await deliverabilityTimeseries(ctx(), s, { interval: 'day', group_by, limit: 50 })
        assert.equal(
          g.series.reduce((n, x) => n + x.totals.sent, 0),
          want.counts.sent,
          `${group_by} series sum to the total`,
        )
        for (const x of g.series) {
          const one = expected(events, {
            org,
            from: START,
            to: START + SPAN,
            ...(group_by === 'recipient_domain' ? { rdomain: x.group ?? '' } : { sending: x.group ?? '' }),
          })
          assert.equal(x.totals.bounced_hard, one.counts.bounced_hard, `${group_by} ${x.group}`)
        }
      }
      // Only the first `limit` groups by sent come back, with their full counts.
      const all = await deliverabilityTimeseries(ctx(), s, {
        interval: 'day',
        group_by: 'recipient_domain',
        limit: 50,
      })
      const top = await deliverabilityTimeseries(ctx(), s, {
        interval: 'hour',
        group_by: 'recipient_domain',
        limit: 2,
      })
      assert.deepEqual(
        top.series.map((x) => [x.group, x.totals.sent, x.totals.delivered]),
        all.series.slice(0, 2).map((x) => [x.group, x.totals.sent, x.totals.delivered]),
      )
      const tags = await deliverabilityTimeseries(ctx(), s, { interval: 'day', group_by: 'tag', limit: 50 })
      for (const x of tags.series) {
        assert.match(x.group ?? '', /^(camp|kind):/)
        const one = expected(events, { org, from: START, to: START + SPAN, tag: x.group as string })
        assert.equal(x.totals.delivered, one.counts.delivered, `tag ${x.group}`)
      }
    })

    it('folds an event only once it is settleMs old, and the summary counts it either way', async () => {
      const org = orgs[1] as string
      const msg = events.find((e) => e.org === org && e.msg)?.msg as FixtureMessage
      // After the cursor the first test left (folds ran at START + SPAN + 1h).
      const at = START + SPAN + 2 * HOUR + 60_000
      const s = scopeOf({ org_id: org, to: START + SPAN + 3 * HOUR })
      const before = (await deliverabilitySummary(ctx(), s)).counts.delivered
      await addEvent(t.store.db, {
        org_id: org,
        type: 'email.delivered',
        at,
        email_id: msg.id,
        payload: { recipient: msg.recipients[0]?.address },
      })
      assert.equal((await foldOnce(t.store, at + 4_000, { settleMs: 5_000 })).events, 0, 'too fresh to fold')
      assert.equal(
        (await deliverabilitySummary(ctx(), s)).counts.delivered,
        before + 1,
        'counted from the tail',
      )
      assert.equal((await foldOnce(t.store, at + 5_000, { settleMs: 5_000 })).events, 1, 'settled: folded')
      assert.equal(
        (await deliverabilitySummary(ctx(), s)).counts.delivered,
        before + 1,
        'counted once, folded',
      )
      assert.equal((await foldOnce(t.store, at + 60_000, { settleMs: 5_000 })).events, 0)
    })
  })
}
