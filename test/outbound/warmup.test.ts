// Warm-up ramps of sender addresses, end to end: a ramp caps how many recipients mail from one
// address reaches per day; what does not fit is held (never dropped) and released when the
// day window ends, which the test reaches by moving the injected clock, not by sleeping. Also
// the routes' answers (day n of N, today's cap, used today), the alias token route, and bad
// input: duplicates, foreign domains, mixed schedule forms, out-of-range caps.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { reserveWarmup } from '../../src/services/warmup/reserve.ts'
import { manualClock } from '../../src/time/clock.ts'
import type { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import { fakeHandler, startSmtp, type TestSmtp } from '../smtp/helpers.ts'
import { type Sender, startSender, waitForEmail } from './helpers.ts'

const REMOTE = 'remote.example'
const DAY = 86_400_000
const msg = (to: string | string[], from = 'alice@a.example') => ({ from, to, subject: 'Hi', text: 'Hello' })

for (const dialect of DIALECTS) {
  describe(`alias warm-up (${dialect})`, () => {
    let dns: DnsServer
    let remote: TestSmtp
    let a: Sender
    let admin: Api
    const clock = manualClock(Date.now())
    const delivered = () =>
      remote.handler.calls.flatMap((c) => (c.kind === 'rcpt' ? [c.to.address] : [])).sort()

    before(async () => {
      dns = await startDnsServer({})
      remote = await startSmtp({ handler: fakeHandler() })
      dns.set(REMOTE, 'MX', [{ priority: 10, exchange: `mx.${REMOTE}` }])
      dns.set(`mx.${REMOTE}`, 'A', ['127.0.0.1'])
      a = await startSender(dialect, dns, remote.port, { clock })
      // A key, not the owner's session: sessions would expire while the clock moves days ahead.
      const key = await a.api.post('/v1/api-keys', { name: 'admin', scope: 'admin' })
      assert.equal(key.status, 201, key.text)
      admin = a.api.withKey(key.body.key)
    })
    after(async () => {
      await a?.server.close()
      await remote?.close()
      await dns?.close()
    })

    it('holds mail over today’s cap, releases it the next day, and shows day n of N', async () => {
      const made = await admin.post('/v1/alias-warmups', { address: 'Alice@a.example', schedule: [2, 4] })
      assert.equal(made.status, 201, made.text)
      const ramp = made.body
      assert.match(ramp.id, /^wup_/)
      assert.match(ramp.token, /^wmt_/)
      assert.equal(ramp.address, 'alice@a.example')
      assert.equal(ramp.curve, 'custom')
      assert.deepEqual(
        [ramp.day, ramp.days, ramp.today_cap, ramp.used_today, ramp.remaining_today, ramp.status],
        [1, 2, 2, 0, 2, 'warming'],
      )
      assert.equal(Date.parse(ramp.resets_at), Date.parse(ramp.started_at) + DAY)

      await admin.post('/v1/queue/pause')
      const ids: string[] = []
      for (const n of [1, 2, 3]) {
        const r = await a.send.post('/v1/emails', msg(`w${n}@${REMOTE}`))
        assert.equal(r.status, 202, r.text)
        ids.push(r.body.id)
      }
      // Another sender of the org has no ramp and is not capped by alice's.
      const other = await a.send.post('/v1/emails', msg(`o1@${REMOTE}`, 'bob@a.example'))
      assert.equal(other.status, 202, other.text)
      await admin.post('/v1/queue/resume')

      const settled = await Promise.all(
        ids.map((id) => waitForEmail(admin, id, (e) => e.status === 'sent' || e.status === 'held')),
      )
      assert.deepEqual(settled.map((e) => e.status).sort(), ['held', 'sent', 'sent'])
      await waitForEmail(admin, other.body.id, (e) => e.status === 'sent')
      const held = settled.find((e) => e.status === 'held')
      assert.match(held.held_reason, /warm-up cap of 2 recipients for this sender \(day 1 of 2\)/)
      assert.ok(
        held.recipients.every((r: { state: string }) => r.state === 'queued'),
        'held, not dropped',
      )
      const heldEvent = held.events.find((e: { type: string }) => e.type === 'email.held')
      assert.ok(heldEvent, 'email.held raised')
      assert.equal(heldEvent.data.warmup_id, ramp.id)
      assert.equal(Date.parse(heldEvent.data.until), Date.parse(ramp.resets_at))
      assert.equal(delivered().filter((x) => x.startsWith('w')).length, 2)

      const today = (await admin.get(`/v1/alias-warmups/${ramp.id}`)).body
      assert.deepEqual([today.day, today.used_today, today.remaining_today], [1, 2, 0])
      // The held message stays held while the day lasts.
      clock.advance(DAY - 60_000)
      await new Promise((r) => setTimeout(r, 300))
      assert.equal((await admin.get(`/v1/emails/${held.id}`)).body.status, 'held')

      // Day 2: the window reset; the held message goes, and counts against day 2's cap of 4.
      clock.advance(60_000)
      await waitForEmail(admin, held.id, (e) => e.status === 'sent')
      const day2 = (await admin.get(`/v1/alias-warmups/${ramp.token}`)).body
      assert.deepEqual([day2.day, day2.today_cap, day2.used_today, day2.remaining_today], [2, 4, 1, 3])
      assert.equal(delivered().filter((x) => x.startsWith('w')).length, 3)

      // A message with more recipients than remain today: those that fit go, the rest wait.
      const big = await a.send.post(
        '/v1/emails',
        msg([`p1@${REMOTE}`, `p2@${REMOTE}`, `p3@${REMOTE}`, `p4@${REMOTE}`]),
      )
      assert.equal(big.status, 202, big.text)
      const part = await waitForEmail(admin, big.body.id, (e) => e.status === 'held')
      const states = part.recipients.map((r: { state: string }) => r.state).sort()
      assert.deepEqual(states, ['delivered', 'delivered', 'delivered', 'queued'])
      assert.match(part.held_reason, /day 2 of 2/)

      // After the last day the ramp is complete and caps nothing.
      clock.advance(DAY)
      const done = await waitForEmail(admin, big.body.id, (e) => e.status === 'sent')
      assert.ok(done.recipients.every((r: { state: string }) => r.state === 'delivered'))
      const finished = (await admin.get(`/v1/alias-warmups/${ramp.id}`)).body
      assert.deepEqual([finished.status, finished.day, finished.today_cap], ['completed', null, null])
      assert.equal(delivered().filter((x) => x.startsWith('p')).length, 4)

      const types = (
        await a.server.postern.store.db
          .selectFrom('events')
          .select('type')
          .where('subject_id', '=', ramp.id)
          .execute()
      ).map((e) => e.type)
      assert.deepEqual(types, ['warmup.created'])
    })

    it('restarting a ramp releases the mail it held once the new cap allows it', async () => {
      const made = await admin.post('/v1/alias-warmups', { address: 'carol@a.example', schedule: [1, 1, 1] })
      assert.equal(made.status, 201, made.text)
      const first = await a.send.post('/v1/emails', msg(`r1@${REMOTE}`, 'carol@a.example'))
      assert.equal(first.status, 202, first.text)
      await waitForEmail(admin, first.body.id, (e) => e.status === 'sent')
      const second = await a.send.post('/v1/emails', msg(`r2@${REMOTE}`, 'carol@a.example'))
      assert.equal(second.status, 202, second.text)
      await waitForEmail(admin, second.body.id, (e) => e.status === 'held')
      // A larger day 1, starting now: the held message goes without waiting for tomorrow.
      const changed = await admin.patch(`/v1/alias-warmups/${made.body.id}`, {
        schedule: [5, 10],
        restart: true,
      })
      assert.equal(changed.status, 200, changed.text)
      assert.deepEqual([changed.body.day, changed.body.today_cap, changed.body.used_today], [1, 5, 0])
      await waitForEmail(admin, second.body.id, (e) => e.status === 'sent')
      const after = (await admin.get(`/v1/alias-warmups/${made.body.id}`)).body
      assert.equal(after.used_today, 1)
      // Deleting it: the address sends uncapped.
      assert.equal((await admin.delete(`/v1/alias-warmups/${made.body.id}`)).status, 204)
      assert.equal((await admin.get(`/v1/alias-warmups/${made.body.id}`)).status, 404)
      const burst = await Promise.all(
        [1, 2, 3, 4, 5, 6].map((n) => a.send.post('/v1/emails', msg(`u${n}@${REMOTE}`, 'carol@a.example'))),
      )
      for (const r of burst) {
        assert.equal(r.status, 202, r.text)
        await waitForEmail(admin, r.body.id, (e) => e.status === 'sent')
      }
    })

    it('makes the default curve, lists ramps, and issues alias tokens', async () => {
      const curve = await admin.post('/v1/alias-warmups', { address: 'dave@a.example' })
      assert.equal(curve.status, 201, curve.text)
      const s = curve.body.schedule as number[]
      assert.equal(s.length, 30)
      assert.equal(s[0], 20)
      assert.equal(s[29], 1000)
      assert.ok(
        s.every((v, i) => i === 0 || v >= (s[i - 1] as number)),
        'the default curve never shrinks',
      )
      const short = await admin.post('/v1/alias-warmups', {
        address: 'erin@a.example',
        days: 3,
        start_cap: 10,
        target_cap: 40,
      })
      assert.equal(short.status, 201, short.text)
      assert.deepEqual(short.body.schedule, [10, 20, 40])

      const listed = await admin.get('/v1/alias-warmups?limit=1')
      assert.equal(listed.status, 200, listed.text)
      assert.equal(listed.body.data.length, 1)
      assert.ok(listed.body.next_cursor)
      const next = await admin.get(`/v1/alias-warmups?limit=1&cursor=${listed.body.next_cursor}`)
      assert.notEqual(next.body.data[0].id, listed.body.data[0].id)
      const byAddress = await admin.get('/v1/alias-warmups?address=DAVE@a.example')
      assert.deepEqual(
        byAddress.body.data.map((r: { id: string }) => r.id),
        [curve.body.id],
      )

      const alias = await admin.post('/v1/aliases', {
        address: 'sales@a.example',
        targets: ['x@remote.example'],
      })
      assert.equal(alias.status, 201, alias.text)
      const issued = await admin.post(`/v1/aliases/${alias.body.id}/warmup-token`)
      assert.equal(issued.status, 201, issued.text)
      assert.equal(issued.body.alias_id, alias.body.id)
      assert.equal(issued.body.address, 'sales@a.example')
      assert.equal(issued.body.curve, 'default')
      const rotated = await admin.post(`/v1/aliases/${alias.body.id}/warmup-token`)
      assert.equal(rotated.status, 200, rotated.text)
      assert.equal(rotated.body.id, issued.body.id)
      assert.notEqual(rotated.body.token, issued.body.token)
      assert.equal(
        (await admin.get(`/v1/alias-warmups/${issued.body.token}`)).status,
        404,
        'old token retired',
      )
      assert.equal((await admin.get(`/v1/alias-warmups/${rotated.body.token}`)).body.id, issued.body.id)
      // A ramp by alias id names the alias's address.
      const dup = await admin.post('/v1/alias-warmups', { alias_id: alias.body.id })
      assert.equal(dup.status, 409, dup.text)
      assert.equal(dup.body.code, 'WARMUP_EXISTS')
      const catchAll = await admin.post('/v1/aliases', {
        address: '@a.example',
        targets: ['x@remote.example'],
      })
      assert.equal(catchAll.status, 201, catchAll.text)
      const noOne = await admin.post(`/v1/aliases/${catchAll.body.id}/warmup-token`)
      assert.equal(noOne.status, 422, noOne.text)
    })

    it('refuses bad ramps with problem details', async () => {
      const cases: [unknown, number, string | null][] = [
        [{ address: 'dave@a.example', schedule: [1] }, 409, 'WARMUP_EXISTS'],
        [{ address: 'someone@not-ours.example' }, 404, 'DOMAIN_NOT_FOUND'],
        [{ address: 'not an address' }, 422, 'INVALID_ADDRESS'],
        [{}, 422, 'INVALID_WARMUP'],
        [{ address: 'f@a.example', alias_id: 'als_x' }, 422, 'INVALID_WARMUP'],
        [{ address: 'f@a.example', schedule: [5], days: 3 }, 422, 'INVALID_WARMUP'],
        [{ address: 'f@a.example', start_cap: 50, target_cap: 10 }, 422, 'INVALID_WARMUP'],
        [{ address: 'f@a.example', schedule: [] }, 400, null],
        [{ address: 'f@a.example', schedule: [0, 5] }, 400, null],
        [{ address: 'f@a.example', days: 400 }, 400, null],
        [{ address: 'f@a.example', extra: 1 }, 400, null],
        [{ alias_id: 'als_00000000000000000000000000' }, 404, 'ALIAS_NOT_FOUND'],
      ]
      for (const [body, status, code] of cases) {
        const r = await admin.post('/v1/alias-warmups', body)
        assert.ok(
          r.status === status || (status === 400 && r.status === 422),
          `${JSON.stringify(body)}: ${r.status} ${r.text}`,
        )
        assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/)
        if (code) assert.equal(r.body.code, code, r.text)
      }
      const ramp = (await admin.get('/v1/alias-warmups?address=dave@a.example')).body.data[0]
      const empty = await admin.patch(`/v1/alias-warmups/${ramp.id}`, {})
      assert.equal(empty.status, 422, empty.text)
      assert.equal(
        (await admin.patch('/v1/alias-warmups/wup_00000000000000000000000000', { restart: true })).status,
        404,
      )
      assert.equal((await admin.delete('/v1/alias-warmups/wmt_unknown')).status, 404)
      // Only admins manage ramps: a send key may not.
      const bySend = await a.send.post('/v1/alias-warmups', { address: 'g@a.example' })
      assert.equal(bySend.status, 403, bySend.text)
    })

    describe(`warm-up with the org cap (${dialect})`, () => {
      let dns: DnsServer
      let remote: TestSmtp
      let a: Sender
      let admin: Api
      before(async () => {
        dns = await startDnsServer({})
        remote = await startSmtp({ handler: fakeHandler() })
        dns.set(REMOTE, 'MX', [{ priority: 10, exchange: `mx.${REMOTE}` }])
        dns.set(`mx.${REMOTE}`, 'A', ['127.0.0.1'])
        a = await startSender(dialect, dns, remote.port, { env: { POSTERN_OUTBOUND_ORG_HOURLY_CAP: '2' } })
        const key = await a.api.post('/v1/api-keys', { name: 'admin', scope: 'admin' })
        admin = a.api.withKey(key.body.key)
      })
      after(async () => {
        await a?.server.close()
        await remote?.close()
        await dns?.close()
      })

      it('gives back what the ramp granted when the org cap holds the message instead', async () => {
        const ramp = await admin.post('/v1/alias-warmups', { address: 'alice@a.example', schedule: [10] })
        assert.equal(ramp.status, 201, ramp.text)
        await admin.post('/v1/queue/pause')
        const first = await a.send.post('/v1/emails', msg([`k1@${REMOTE}`, `k2@${REMOTE}`]))
        const second = await a.send.post('/v1/emails', msg([`k3@${REMOTE}`, `k4@${REMOTE}`]))
        assert.equal(first.status, 202, first.text)
        assert.equal(second.status, 202, second.text)
        await admin.post('/v1/queue/resume')
        const settled = await Promise.all(
          [first.body.id, second.body.id].map((id) =>
            waitForEmail(admin, id, (e) => e.status === 'sent' || e.status === 'held'),
          ),
        )
        assert.deepEqual(settled.map((e) => e.status).sort(), ['held', 'sent'])
        const held = settled.find((e) => e.status === 'held')
        assert.match(held.held_reason, /organisation's hourly cap of 2/)
        // Only the two recipients that went count against the ramp.
        const now = (await admin.get(`/v1/alias-warmups/${ramp.body.id}`)).body
        assert.deepEqual([now.used_today, now.remaining_today], [2, 8])
      })

      it('never grants more than the day’s cap to concurrent reservations', async () => {
        const ramp = await admin.post('/v1/alias-warmups', { address: 'race@a.example', schedule: [7] })
        assert.equal(ramp.status, 201, ramp.text)
        const p = a.server.postern
        const ctx = { store: p.store, clock: p.delivery.clock, committer: p.delivery.committer }
        const orgId = (
          await p.store.db
            .selectFrom('alias_warmups')
            .select('org_id')
            .where('id', '=', ramp.body.id)
            .executeTakeFirstOrThrow()
        ).org_id
        // Twelve reservations of one at once (separate connections on PostgreSQL): seven win.
        const real = await Promise.all(
          Array.from({ length: 12 }, () => reserveWarmup(ctx, orgId, 'Race <race@a.example>', 1)),
        )
        assert.equal(
          real.reduce((n, g) => n + g.granted, 0),
          7,
        )
        assert.equal(real.filter((g) => g.granted === 0).length, 5)
        assert.equal((await admin.get(`/v1/alias-warmups/${ramp.body.id}`)).body.used_today, 7)
        const big = await reserveWarmup(ctx, orgId, 'race@a.example', 3)
        assert.deepEqual([big.granted, big.until !== null], [0, true])
        // Another org's sender of the same name has no ramp: nothing caps it.
        const elsewhere = await reserveWarmup(ctx, 'org_other', 'race@a.example', 3)
        assert.deepEqual([elsewhere.granted, elsewhere.ramp], [3, null])
      })
    })
  })
}
