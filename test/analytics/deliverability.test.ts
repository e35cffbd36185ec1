// Deliverability analytics over a real send flow: the send API, the queue, a scripted remote
// MX on loopback (found through the loopback DNS server) that accepts, defers and refuses, a
// complaint (ARF) posted to the signed return path over SMTP, plus opened and clicked events
// and test-mode traffic written through the event writer (tracking and test mode are other
// modules). Then the summary, the time series, the recent outcomes and the debug report over
// HTTP, with their filters, scopes and bad parameters, before and after the fold job ran.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import nodemailer from 'nodemailer'
import { writeEvent } from '../../src/services/events/write.ts'
import type { RcptTo } from '../../src/smtp/handler.ts'
import type { Api, ApiResponse } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import { mxPort, type Sender, startSender, waitForEmail } from '../outbound/helpers.ts'
import { assertProblem, inviteAndClaim } from '../security/orgs.ts'
import { fakeHandler, startSmtp, type TestSmtp } from '../smtp/helpers.ts'

const REMOTE = 'remote.example'
const OTHER = 'other.example'
const SUMMARY = '/v1/analytics/deliverability/summary'

/** `temp-x` is deferred with 451 (retried an hour later), `gone-x` refused with 550 5.1.1. */
const remoteHandler = () =>
  fakeHandler({
    rcpt: async (to: RcptTo) => {
      const local = to.address.split('@')[0] as string
      if (local.startsWith('temp-')) return { code: 451, enhanced: '4.2.0', message: 'Greylisted, try later' }
      if (local.startsWith('gone-')) return { code: 550, enhanced: '5.1.1', message: 'No such user here' }
      return null
    },
  })

const arfFor = (rcpt: string) =>
  [
    'From: fbl@remote.example',
    'To: postmaster@a.example',
    'Subject: Abuse report',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=feedback-report; boundary="fb"',
    '',
    '--fb',
    'Content-Type: text/plain',
    '',
    'Marked as spam by the recipient.',
    '--fb',
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: abuse',
    'User-Agent: RemoteLoop/2.0',
    'Version: 1',
    `Original-Rcpt-To: ${rcpt}`,
    '',
    '--fb',
    'Content-Type: text/rfc822-headers',
    '',
    'Subject: Spring sale',
    '',
    '--fb--',
    '',
  ].join('\r\n')

const counts = async (api: Api, query = '') => {
  const r = await api.get(`${SUMMARY}${query}`)
  assert.equal(r.status, 200, r.text)
  return r.body.counts as Record<string, number>
}

for (const dialect of DIALECTS) {
  describe(`deliverability analytics over a send flow (${dialect})`, () => {
    let dns: DnsServer
    let remote: TestSmtp
    let a: Sender
    let read: Api
    let mailboxKey: Api
    let mailboxId: string
    let spring: string
    let fall: string
    let testRead: Api
    let testEmail: string

    before(async () => {
      dns = await startDnsServer({})
      remote = await startSmtp({ handler: remoteHandler() })
      for (const d of [REMOTE, OTHER]) {
        dns.set(d, 'MX', [{ priority: 10, exchange: `mx.${REMOTE}` }])
      }
      dns.set(`mx.${REMOTE}`, 'A', ['127.0.0.1'])
      a = await startSender(dialect, dns, remote.port, {
        env: { POSTERN_OUTBOUND_RETRY_INTERVALS: '1h', POSTERN_ANALYTICS_FOLD_SETTLE_MS: '0' },
      })
      const key = await a.api.post('/v1/api-keys', { name: 'dashboards', scope: 'read' })
      assert.equal(key.status, 201, key.text)
      read = a.api.withKey(key.body.key)
      const mb = await a.api.post('/v1/mailboxes', { domain: 'a.example', local_part: 'alice' })
      assert.equal(mb.status, 201, mb.text)
      mailboxId = mb.body.mailbox.id
      mailboxKey = a.api.withKey(mb.body.api_key.key)

      // Send 1 (org send key, tag camp:spring): delivered, deferred, bounced, and delivered elsewhere.
      const s1 = await a.send.post('/v1/emails', {
        from: 'news@a.example',
        to: [`ok-1@${REMOTE}`, `temp-1@${REMOTE}`, `gone-1@${REMOTE}`, `ok-2@${OTHER}`],
        subject: 'Spring sale',
        text: 'Hello',
        tags: { camp: 'spring' },
      })
      assert.equal(s1.status, 202, s1.text)
      spring = s1.body.id
      const e1 = await waitForEmail(a.api, spring, (x) =>
        x.recipients.every((r: { state: string }) => r.state !== 'queued'),
      )
      const states = Object.fromEntries(
        e1.recipients.map((r: { address: string; state: string }) => [r.address, r.state]),
      )
      assert.deepEqual(states, {
        [`ok-1@${REMOTE}`]: 'delivered',
        [`temp-1@${REMOTE}`]: 'deferred',
        [`gone-1@${REMOTE}`]: 'bounced',
        [`ok-2@${OTHER}`]: 'delivered',
      })

      // Send 2 (the mailbox's own key, tag camp:fall): the bounced address is now suppressed.
      const s2 = await mailboxKey.post('/v1/emails', {
        from: 'alice@a.example',
        to: [`gone-1@${REMOTE}`, `ok-3@${REMOTE}`],
        subject: 'Fall sale',
        text: 'Hello again',
        tags: { camp: 'fall' },
      })
      assert.equal(s2.status, 202, s2.text)
      fall = s2.body.id
      await waitForEmail(a.api, fall, (x) => x.status === 'sent')

      // A complaint about send 1 from ok-1, through the MX to the signed return path.
      const rp = remote.handler.calls.flatMap((c) =>
        c.kind === 'mail' && c.from.address.includes(spring) ? [c.from.address] : [],
      )[0] as string
      const mx = nodemailer.createTransport({
        host: '127.0.0.1',
        port: mxPort(a.server),
        secure: false,
        tls: { rejectUnauthorized: false },
      })
      await mx.sendMail({ envelope: { from: '', to: [rp] }, raw: arfFor(`ok-1@${REMOTE}`) })
      await waitForEmail(a.api, spring, (x) =>
        x.events.some((e: { type: string }) => e.type === 'email.complained'),
      )

      // Test mode: a test key's send is simulated; its events carry test: true.
      const ts = await a.api.post('/v1/api-keys', { name: 'ci', scope: 'send', test: true })
      assert.equal(ts.status, 201, ts.text)
      const tr = await a.api.post('/v1/api-keys', { name: 'ci read', scope: 'read', test: true })
      testRead = a.api.withKey(tr.body.key)
      const t1 = await a.api.withKey(ts.body.key).post('/v1/emails', {
        from: 'news@a.example',
        to: ['delivered@postern.test', 'bounced@postern.test'],
        subject: 'Test mode',
        text: 'Hello',
        tags: { camp: 'spring' },
      })
      assert.equal(t1.status, 202, t1.text)
      testEmail = t1.body.id
      await waitForEmail(testRead, testEmail, (x) => x.status === 'failed' || x.status === 'sent')

      // Engagement (the tracking module writes these) and test-mode traffic (never counted).
      const db = a.server.postern.store.db
      const org = (await a.api.get('/v1/org')).body.id as string
      const ev = (
        type: 'email.opened' | 'email.clicked' | 'email.delivered' | 'email.unsubscribed',
        email: string,
        payload: Record<string, unknown>,
      ) =>
        writeEvent(db, Date.now(), {
          org_id: org,
          type,
          actor: 'tracking',
          ip: null,
          subject_id: email,
          payload: { email_id: email, ...payload },
        })
      await ev('email.opened', spring, { recipient: `ok-1@${REMOTE}` })
      await ev('email.opened', spring, { recipient: `ok-2@${OTHER}` })
      await ev('email.clicked', spring, { recipient: `ok-2@${OTHER}`, url: 'https://a.example/sale' })
      // A proxy's open (Apple Mail Privacy Protection), flagged by tracking: no person's open.
      await ev('email.opened', spring, { recipient: `ok-1@${REMOTE}`, bot: true, bot_reason: 'apple_mpp' })
      await ev('email.unsubscribed', fall, { recipient: `ok-3@${REMOTE}` })
      // Engagement with the test send is test traffic too.
      await ev('email.opened', testEmail, { recipient: 'delivered@postern.test', test: true })
      await ev('email.clicked', testEmail, { recipient: 'delivered@postern.test', test: true })
    })
    after(async () => {
      await a?.server.close()
      await remote?.close()
      await dns?.close()
    })

    const all = {
      sent: 5,
      delivered: 3,
      deferred: 1,
      bounced_hard: 1,
      bounced_soft: 0,
      bounced: 1,
      complained: 1,
      opened: 2,
      clicked: 1,
      unsubscribed: 1,
      suppressed: 1,
    }

    it('counts and rates every outcome of the flow (test traffic left out), before and after the fold', async () => {
      const r = await read.get(SUMMARY)
      assert.equal(r.status, 200, r.text)
      assert.deepEqual(r.body.counts, all)
      assert.equal(r.body.rates.delivery_rate, 0.6)
      assert.equal(r.body.rates.bounce_rate, 0.2)
      assert.equal(r.body.rates.complaint_rate, 0.3333)
      assert.equal(r.body.rates.open_rate, 0.6667)
      assert.equal(r.body.rates.click_to_open_rate, 0.5)
      assert.equal(r.body.rates.soft_bounce_rate, 0)
      assert.ok(Date.parse(r.body.from) < Date.parse(r.body.to))

      const before = await a.server.postern.store.db.selectFrom('analytics_counts').select('org_id').execute()
      assert.equal(before.length, 0, 'nothing folded yet: the summary came from the live tail')
      const run = await a.api.post('/v1/admin/jobs/analytics-fold/run')
      assert.equal(run.status, 200, run.text)
      const rows = await a.server.postern.store.db.selectFrom('analytics_counts').select('org_id').execute()
      assert.ok(rows.length > 0, 'the fold wrote rollups')
      assert.deepEqual(await counts(read), all, 'the same after folding')
    })

    it('filters by tag, sending domain, recipient domain and mailbox', async () => {
      assert.deepEqual(await counts(read, '?tag=camp:spring'), {
        ...all,
        sent: 4,
        delivered: 2,
        unsubscribed: 0,
        suppressed: 0,
      })
      const fallCounts = await counts(read, `?tag=${encodeURIComponent('camp:fall')}`)
      assert.equal(fallCounts.sent, 1)
      assert.equal(fallCounts.suppressed, 1)
      assert.equal(fallCounts.complained, 0)
      assert.equal((await counts(read, '?tag=camp:winter')).sent, 0)
      const other = await counts(read, `?recipient_domain=${OTHER}`)
      assert.deepEqual(
        [other.sent, other.delivered, other.opened, other.clicked, other.bounced],
        [1, 1, 1, 1, 0],
      )
      assert.deepEqual(await counts(read, '?domain=a.example'), all)
      assert.equal((await counts(read, `?mailbox=${mailboxId}`)).sent, 1)
      assert.equal((await counts(read, '?mailbox=alice@a.example')).suppressed, 1)
      // A mailbox key sees its own mailbox's sends only.
      const own = await counts(mailboxKey)
      assert.deepEqual([own.sent, own.delivered, own.suppressed, own.complained], [1, 1, 1, 0])
    })

    it('gives hourly and daily series, per recipient domain, that add up to the summary', async () => {
      const now = Date.now()
      const from = new Date(now - 3 * 3_600_000).toISOString()
      const hourly = await read.get(
        `/v1/analytics/deliverability/timeseries?interval=hour&from=${from}&group_by=recipient_domain`,
      )
      assert.equal(hourly.status, 200, hourly.text)
      assert.equal(hourly.body.interval, 'hour')
      const groups = hourly.body.series.map((s: { group: string }) => s.group)
      assert.deepEqual(groups, [REMOTE, OTHER], 'ordered by sent')
      for (const s of hourly.body.series) {
        assert.equal(s.points.length, 4, 'three hours back plus the current one')
        assert.equal(
          s.points.reduce((n: number, p: { sent: number }) => n + p.sent, 0),
          s.totals.sent,
        )
      }
      assert.equal(hourly.body.series[0].totals.sent, 4)
      assert.equal(hourly.body.series[0].totals.bounced_hard, 1)
      const starts = hourly.body.series[0].points.map((p: { start: string }) => Date.parse(p.start))
      assert.equal(
        starts.at(-1),
        Math.floor(now / 3_600_000) * 3_600_000,
        'the last bucket is the current hour',
      )
      assert.equal(
        hourly.body.series[0].points.reduce((n: number, p: { delivered: number }) => n + p.delivered, 0),
        2,
      )

      const daily = await read.get('/v1/analytics/deliverability/timeseries?interval=day')
      assert.equal(daily.status, 200, daily.text)
      assert.equal(daily.body.series.length, 1)
      assert.equal(daily.body.series[0].group, null)
      assert.equal(daily.body.series[0].points.length, 8, 'seven days back, rounded out to whole days')
      assert.equal(
        daily.body.series[0].points.reduce((n: number, p: { sent: number }) => n + p.sent, 0),
        5,
      )
      const byTag = await read.get('/v1/analytics/deliverability/timeseries?group_by=tag')
      assert.deepEqual(
        byTag.body.series.map((s: { group: string; totals: { sent: number } }) => [s.group, s.totals.sent]),
        [
          ['camp:spring', 4],
          ['camp:fall', 1],
        ],
      )
    })

    it('lists recent bounces and complaints with the remote answer, newest first, paged', async () => {
      const b = await read.get('/v1/analytics/deliverability/recent?type=bounced')
      assert.equal(b.status, 200, b.text)
      assert.equal(b.body.data.length, 1)
      const bounce = b.body.data[0]
      assert.equal(bounce.email_id, spring)
      assert.equal(bounce.recipient, `gone-1@${REMOTE}`)
      assert.equal(bounce.code, 550)
      assert.equal(bounce.enhanced_code, '5.1.1')
      assert.match(bounce.response, /No such user here/)
      assert.equal(bounce.hard, true)
      const c = await read.get('/v1/analytics/deliverability/recent?type=complained&type=deferred')
      assert.deepEqual(c.body.data.map((x: { type: string }) => x.type).sort(), ['complained', 'deferred'])
      assert.equal(c.body.data.find((x: { type: string }) => x.type === 'deferred').code, 451)
      assert.equal(c.body.data.find((x: { type: string }) => x.type === 'complained').source, 'arf')

      const seen: string[] = []
      let cursor: string | null = null
      do {
        const page: ApiResponse = await read.get(
          `/v1/analytics/deliverability/recent?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        )
        assert.equal(page.status, 200, page.text)
        seen.push(...page.body.data.map((x: { id: string }) => x.id))
        cursor = page.body.next_cursor
      } while (cursor)
      // delivered 3, deferred 1, bounced 1, complained 1, suppressed 1; the test-mode delivery is not there.
      assert.equal(seen.length, 7)
      assert.deepEqual([...seen].sort().reverse(), seen, 'newest first')
      const mine = await mailboxKey.get('/v1/analytics/deliverability/recent')
      assert.ok(mine.body.data.every((x: { email_id: string }) => x.email_id === fall))
      const tagged = await read.get('/v1/analytics/deliverability/recent?tag=camp:fall')
      assert.ok(tagged.body.data.length > 0)
      assert.ok(tagged.body.data.every((x: { email_id: string }) => x.email_id === fall))
    })

    it('answers the seed 004 debug report from the same service', async () => {
      const r = await read.get('/v1/debug/deliverability/report')
      assert.equal(r.status, 200, r.text)
      assert.deepEqual(r.body.summary.counts, all)
      assert.deepEqual(
        r.body.recipient_domains.map((d: { domain: string; counts: { sent: number } }) => [
          d.domain,
          d.counts.sent,
        ]),
        [
          [REMOTE, 4],
          [OTHER, 1],
        ],
      )
      assert.equal(r.body.sending_domains[0].domain, 'a.example')
      assert.ok(
        r.body.recent_problems.some(
          (p: { type: string; code: number }) => p.type === 'bounced' && p.code === 550,
        ),
      )
    })

    it('refuses bad parameters with problem details', async () => {
      const bad = async (query: string, code: string | null, field?: string) => {
        const r = await read.get(query)
        assertProblem(r, code === 'INVALID_CURSOR' ? 422 : 400, code ?? 'VALIDATION_FAILED', query)
        if (field)
          assert.ok(
            r.body.errors.some((e: { field: string }) => e.field === field),
            `${query}: errors name ${field}: ${r.text}`,
          )
      }
      await bad('/v1/analytics/deliverability/timeseries?interval=week', null, 'querystring.interval')
      await bad(`${SUMMARY}?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z`, null, 'querystring.to')
      await bad(`${SUMMARY}?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z`, null, 'querystring.to')
      await bad(`${SUMMARY}?from=yesterday`, null, 'querystring.from')
      await bad(`${SUMMARY}?tag=nocolon`, null, 'querystring.tag')
      await bad(
        '/v1/analytics/deliverability/timeseries?interval=hour&from=2025-01-01T00:00:00Z',
        null,
        'querystring.from',
      )
      await bad('/v1/analytics/deliverability/timeseries?group_by=planet', null)
      await bad('/v1/analytics/deliverability/recent?type=opened', null)
      await bad('/v1/analytics/deliverability/recent?cursor=garbage', 'INVALID_CURSOR')
      await bad('/v1/analytics/deliverability/recent?limit=0', null)
      assertProblem(
        await read.get(`${SUMMARY}?domain=elsewhere.example`),
        404,
        'DOMAIN_NOT_FOUND',
        'unknown domain',
      )
      assertProblem(
        await read.get(`${SUMMARY}?mailbox=mbx_nope`),
        404,
        'MAILBOX_NOT_FOUND',
        'unknown mailbox',
      )
    })

    it('needs the read scope', async () => {
      for (const path of [
        SUMMARY,
        '/v1/analytics/deliverability/timeseries',
        '/v1/analytics/deliverability/recent',
        '/v1/debug/deliverability/report',
      ]) {
        assertProblem(await a.send.get(path), 403, null, `${path} with a send key`)
        const anon = await fetch(a.server.url + path)
        assert.equal(anon.status, 401, `${path} without credentials`)
        assert.equal((await read.get(path)).status, 200)
      }
    })

    it('keeps test-mode traffic out of live analytics and shows it to test keys', async () => {
      // Live numbers (the first test) already leave the test send out; the test view has it.
      const want = { sent: 2, delivered: 1, bounced_hard: 1, opened: 1, clicked: 1 }
      for (const [who, api, q] of [
        ['a test read key', testRead, ''],
        ['a live key asking for test=true', read, '?test=true'],
      ] as const) {
        const c = await counts(api, q)
        assert.deepEqual(
          {
            sent: c.sent,
            delivered: c.delivered,
            bounced_hard: c.bounced_hard,
            opened: c.opened,
            clicked: c.clicked,
          },
          want,
          who,
        )
        const tagged = await counts(api, `${q ? `${q}&` : '?'}tag=camp:spring`)
        assert.equal(tagged.sent, 2, `${who}, by tag`)
        const r = await api.get(`/v1/analytics/deliverability/recent${q}`)
        assert.ok(r.body.data.length >= 2, r.text)
        assert.ok(
          r.body.data.every((x: { email_id: string }) => x.email_id === testEmail),
          `${who}: ${r.text}`,
        )
      }
      assert.deepEqual(await counts(read), all, 'live numbers unchanged')
      const live = await read.get('/v1/analytics/deliverability/recent?limit=200')
      assert.ok(!live.text.includes(testEmail), 'live outcomes do not list the test send')
      const series = await testRead.get('/v1/analytics/deliverability/timeseries?group_by=recipient_domain')
      assert.deepEqual(
        series.body.series.map((x: { group: string; totals: { sent: number } }) => [x.group, x.totals.sent]),
        [['postern.test', 2]],
      )
    })

    // Last: the invitations go out through the queue and would add to the org's counts.
    it('shows a member only the mailboxes granted to them', async () => {
      const granted = await inviteAndClaim(a.server, a.api, 'member-1@a.example', 'member')
      const plain = await inviteAndClaim(a.server, a.api, 'member-2@a.example', 'member')
      const g = await a.api.post(`/v1/mailboxes/${mailboxId}/grants`, { user_id: granted.userId })
      assert.ok(g.status === 200 || g.status === 201, g.text)
      const mine = await counts(granted.api)
      assert.deepEqual([mine.sent, mine.delivered, mine.suppressed, mine.complained], [1, 1, 1, 0])
      const none = await counts(plain.api)
      assert.equal(
        Object.values(none).reduce((n, x) => n + x, 0),
        0,
        JSON.stringify(none),
      )
      assertProblem(
        await plain.api.get(`${SUMMARY}?mailbox=${mailboxId}`),
        404,
        'MAILBOX_NOT_FOUND',
        'ungranted mailbox',
      )
      const recent = await plain.api.get('/v1/analytics/deliverability/recent')
      assert.deepEqual(recent.body.data, [])
    })
  })
}
