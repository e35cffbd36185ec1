// Webhooks end to end over real sockets: a receiver on loopback checks every signature with the
// standardwebhooks package; the verification challenge (echoed, posted back, resent); event-type
// filters; secret rotation (both signatures during the grace period); retries against a
// receiver that fails then recovers, with the delivery log; auto-disable with its event and the
// mail to the admins; redelivery; SSRF refusals (private and link-local targets, redirects).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { setupOwner } from '../accounts/helpers.ts'
import type { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { type Received, signedBy, startReceiver, type TestReceiver, verifyWith } from './receiver.ts'

let domains = 0
const newDomain = (admin: Api) => admin.post('/v1/domains', { name: `d${++domains}.hooks.test` })

async function waitUntil<T>(
  what: string,
  f: () => Promise<T | null | undefined | false>,
  ms = 20_000,
): Promise<T> {
  const until = Date.now() + ms
  for (;;) {
    const v = await f()
    if (v) return v
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

for (const dialect of DIALECTS) {
  describe(`webhooks (${dialect})`, () => {
    let s: TestServer
    let owner: Api
    let admin: Api
    let ownerEmail: string
    const receivers: TestReceiver[] = []
    const receiver = async (...a: Parameters<typeof startReceiver>) => {
      const r = await startReceiver(...a)
      receivers.push(r)
      return r
    }

    before(async () => {
      s = await startTestServer(dialect, {
        env: {
          POSTERN_WEBHOOKS_POLL_MS: '20',
          POSTERN_WEBHOOKS_RETRY_BASE_MS: '40',
          POSTERN_WEBHOOKS_DISABLE_AFTER_FAILURES: '4',
          POSTERN_WEBHOOKS_TIMEOUT_MS: '3000',
        },
        zone: { 'internal.hooks.test': { A: ['10.0.0.5'] } },
      })
      ownerEmail = 'owner@hooks.example'
      owner = await setupOwner(s, ownerEmail, 'Hooks')
      const key = await owner.post('/v1/api-keys', { name: 'admin', scope: 'admin' })
      assert.equal(key.status, 201, key.text)
      admin = owner.withKey(key.body.key)
    })
    after(async () => {
      for (const r of receivers) await r.close()
      await s.close()
    })

    it('verifies an endpoint with a signed challenge, then delivers the events it asked for, signed, once', async () => {
      const rx = await receiver()
      const created = await admin.post('/v1/webhooks', {
        url: rx.url,
        event_types: ['domain.created', 'mailbox.*'],
        description: 'main',
      })
      assert.equal(created.status, 201, created.text)
      const { webhook, secret, verification } = created.body
      assert.match(secret, /^whsec_[A-Za-z0-9+/]+=*$/)
      assert.deepEqual(verification, { ok: true, status_code: 200, error: null })
      assert.equal(webhook.status, 'active')
      assert.deepEqual(webhook.event_types, ['domain.created', 'mailbox.*'])
      // The challenge itself was a signed Standard Webhooks message.
      const challenge = rx.received[0] as Received
      assert.equal(challenge.json.type, 'webhook.verification')
      assert.equal(challenge.json.data.webhook_id, webhook.id)
      verifyWith(secret, challenge)
      // The secret is shown once: never in reads.
      const read = await admin.get(`/v1/webhooks/${webhook.id}`)
      assert.equal(read.status, 200)
      assert.ok(!read.text.includes(secret) && !('secret' in read.body))
      const listed = await admin.get('/v1/webhooks')
      assert.ok(!listed.text.includes(secret))
      assert.ok(listed.body.data.some((w: { id: string }) => w.id === webhook.id))

      const d = await newDomain(admin)
      assert.equal(d.status, 201, d.text)
      const patched = await admin.patch(`/v1/domains/${d.body.id}`, { description: 'not for this hook' })
      assert.equal(patched.status, 200, patched.text)
      const mb = await admin.post('/v1/mailboxes', { domain: d.body.name, local_part: 'ann' })
      assert.equal(mb.status, 201, mb.text)
      await rx.waitFor(() => rx.messages().length >= 2, 20_000, 'domain.created and mailbox.created')

      const [first, second] = rx.messages()
      assert.equal(first?.json.type, 'domain.created')
      assert.equal(first?.json.data.domain_id, d.body.id)
      assert.equal(second?.json.type, 'mailbox.created')
      for (const m of rx.messages()) {
        const parsed = verifyWith(secret, m) as { type: string; timestamp: string; data: object }
        assert.deepEqual(Object.keys(parsed).sort(), ['data', 'timestamp', 'type'])
        assert.ok(!Number.isNaN(Date.parse(parsed.timestamp)))
        assert.match(m.headers['webhook-id'] ?? '', /^wdl_/)
        assert.equal(m.headers['content-type'], 'application/json')
        assert.ok(!m.body.includes(secret))
      }
      const log = await admin.get(`/v1/webhooks/${webhook.id}/deliveries`)
      assert.equal(log.status, 200, log.text)
      // domain.updated is not in the filter: no delivery exists for it at all.
      assert.deepEqual(log.body.data.map((x: { event_type: string }) => x.event_type).sort(), [
        'domain.created',
        'mailbox.created',
      ])
      for (const x of log.body.data) {
        assert.equal(x.status, 'succeeded')
        assert.equal(x.attempts, 1)
        assert.equal(x.log.length, 1)
        assert.equal(x.log[0].status_code, 200)
        assert.equal(x.log[0].response_excerpt, 'ok')
        assert.ok(x.log[0].latency_ms >= 0)
        assert.ok(rx.messages().some((m) => m.headers['webhook-id'] === x.id))
      }
      assert.equal(new Set(rx.messages().map((m) => m.headers['webhook-id'])).size, rx.messages().length)

      // Rotation: the new secret signs, and the old one too until the grace period ends.
      const rotated = await admin.post(`/v1/webhooks/${webhook.id}/rotate-secret`)
      assert.equal(rotated.status, 200, rotated.text)
      const next: string = rotated.body.secret
      assert.notEqual(next, secret)
      const graceEnds = Date.parse(rotated.body.webhook.old_secret_until)
      assert.ok(Math.abs(graceEnds - Date.now() - 24 * 3_600_000) < 60_000, 'grace period of 24 hours')
      const t1 = await admin.post(`/v1/webhooks/${webhook.id}/test`)
      assert.equal(t1.status, 202, t1.text)
      await rx.waitFor(() => rx.messages('webhook.test').length === 1)
      const during = rx.messages('webhook.test')[0] as Received
      assert.equal(during.headers['webhook-id'], t1.body.id)
      assert.equal((during.headers['webhook-signature'] ?? '').split(' ').length, 2)
      assert.ok(signedBy(next, during), 'signed with the new secret')
      assert.ok(signedBy(secret, during), 'still signed with the old secret during the grace period')
      assert.ok(!signedBy('whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', during))

      // Once the grace period is over only the new secret signs.
      await s.postern.store.db
        .updateTable('webhooks')
        .set({ old_secret_until: Date.now() - 1000 })
        .where('id', '=', webhook.id)
        .execute()
      const t2 = await admin.post(`/v1/webhooks/${webhook.id}/test`)
      assert.equal(t2.status, 202)
      await rx.waitFor(() => rx.messages('webhook.test').length === 2)
      const later = rx.messages('webhook.test')[1] as Received
      assert.equal((later.headers['webhook-signature'] ?? '').split(' ').length, 1)
      assert.ok(signedBy(next, later))
      assert.ok(!signedBy(secret, later), 'the old secret no longer signs')

      // A new URL is challenged again before it gets traffic.
      const challengesBefore = rx.received.filter((m) => m.json.type === 'webhook.verification').length
      const moved = await admin.patch(`/v1/webhooks/${webhook.id}`, { url: `${rx.url}?v=2` })
      assert.equal(moved.status, 200, moved.text)
      assert.equal(moved.body.webhook.url, `${rx.url}?v=2`)
      assert.equal(moved.body.verification.ok, true)
      assert.equal(moved.body.webhook.status, 'active')
      const challenges = rx.received.filter((m) => m.json.type === 'webhook.verification')
      assert.equal(challenges.length, challengesBefore + 1)
      assert.equal(challenges.at(-1)?.path, '/hook?v=2')
      const refused = await admin.patch(`/v1/webhooks/${webhook.id}`, { url: 'http://10.1.1.1/' })
      assert.equal(refused.status, 422)
      assert.equal(refused.body.code, 'WEBHOOK_URL_REFUSED')

      // The rotation and the creation are events of the org.
      const ev = await admin.get(`/v1/events?type=webhook.*`)
      const types = ev.body.data.map((e: { type: string }) => e.type)
      for (const t of ['webhook.created', 'webhook.verified', 'webhook.secret_rotated'])
        assert.ok(types.includes(t), `${t} in ${types}`)
    })

    it('keeps an endpoint that does not echo pending (no traffic) until the challenge is posted back', async () => {
      const rx = await receiver(() => ({ status: 200, body: 'I ignore challenges' }))
      const created = await admin.post('/v1/webhooks', { url: rx.url, event_types: ['domain.created'] })
      assert.equal(created.status, 201, created.text)
      const id = created.body.webhook.id
      assert.equal(created.body.webhook.status, 'pending')
      assert.equal(created.body.verification.ok, false)
      assert.match(created.body.verification.error, /did not echo/)
      const first = (rx.received[0] as Received).json.data.challenge as string
      verifyWith(created.body.secret, rx.received[0] as Received)

      assert.equal((await newDomain(admin)).status, 201)
      const none = await admin.get(`/v1/webhooks/${id}/deliveries`)
      assert.deepEqual(none.body.data, [], 'a pending endpoint gets no deliveries')
      const test = await admin.post(`/v1/webhooks/${id}/test`)
      assert.equal(test.status, 409)
      assert.equal(test.body.code, 'WEBHOOK_NOT_VERIFIED')

      const wrong = await admin.post(`/v1/webhooks/${id}/verify`, { challenge: 'not-the-challenge' })
      assert.equal(wrong.status, 422, wrong.text)
      assert.equal(wrong.body.code, 'INVALID_CHALLENGE')

      // A resend makes a fresh challenge; the first one stops counting.
      const resent = await admin.post(`/v1/webhooks/${id}/resend-verification`)
      assert.equal(resent.status, 200, resent.text)
      assert.equal(resent.body.webhook.status, 'pending')
      assert.equal(rx.received.length, 2)
      const fresh = (rx.received[1] as Received).json.data.challenge as string
      assert.notEqual(fresh, first)
      const stale = await admin.post(`/v1/webhooks/${id}/verify`, { challenge: first })
      assert.equal(stale.status, 422)

      const ok = await admin.post(`/v1/webhooks/${id}/verify`, { challenge: fresh })
      assert.equal(ok.status, 200, ok.text)
      assert.equal(ok.body.webhook.status, 'active')
      assert.ok(ok.body.webhook.verified_at)
      const again = await admin.post(`/v1/webhooks/${id}/resend-verification`)
      assert.equal(again.status, 409)
      assert.equal(again.body.code, 'WEBHOOK_ALREADY_VERIFIED')
      // The same challenge cannot be used twice.
      assert.equal((await admin.post(`/v1/webhooks/${id}/verify`, { challenge: fresh })).status, 422)

      assert.equal((await admin.post(`/v1/webhooks/${id}/test`)).status, 202)
      await rx.waitFor(() => rx.messages('webhook.test').length === 1)

      // A verify without a body sends a challenge now; this receiver still does not echo.
      const inline = await admin.post(`/v1/webhooks/${id}/verify`)
      assert.equal(inline.status, 200)
      assert.equal(inline.body.verification.ok, false)
    })

    it('retries a receiver that fails, then recovers; the log keeps each attempt', async () => {
      let failures = 0
      const rx = await receiver((r) => {
        if (r.json.type === 'webhook.verification') return { status: 200, body: r.json.data.challenge }
        if (failures < 2) {
          failures++
          // The second answer has a NUL and two-byte characters across the 1 KB cut.
          return {
            status: 503,
            body:
              failures === 1 ? `down for maintenance ${'x'.repeat(5000)}` : `\u0000nul ${'é'.repeat(700)}`,
          }
        }
        return { status: 204 }
      })
      const created = await admin.post('/v1/webhooks', { url: rx.url, event_types: ['domain.created'] })
      assert.equal(created.body.webhook.status, 'active', created.text)
      const id = created.body.webhook.id
      const d = await newDomain(admin)
      await rx.waitFor(() => rx.messages().length === 3, 20_000, 'two failures and the success')
      const ids = new Set(rx.messages().map((m) => m.headers['webhook-id']))
      assert.equal(ids.size, 1, 'every retry carries the same webhook-id')
      assert.equal(new Set(rx.messages().map((m) => m.body)).size, 1, 'and the same body')
      assert.equal(rx.messages()[0]?.json.data.domain_id, d.body.id)

      const log = await waitUntil('the delivery to succeed', async () => {
        const r = await admin.get(`/v1/webhooks/${id}/deliveries`)
        return r.body.data[0]?.status === 'succeeded' ? r.body.data[0] : null
      })
      assert.equal(log.attempts, 3)
      assert.deepEqual(
        log.log.map((a: { status_code: number }) => a.status_code),
        [503, 503, 204],
      )
      assert.equal(log.log[0].error, 'answered 503')
      assert.ok(log.log[0].response_excerpt.startsWith('down for maintenance'))
      assert.equal(Buffer.byteLength(log.log[0].response_excerpt), 1024, 'the excerpt is cut at 1 KB')
      assert.ok(log.log[1].response_excerpt.startsWith('nul éé'))
      assert.ok(Buffer.byteLength(log.log[1].response_excerpt) <= 1024)
      assert.ok(!log.log[1].response_excerpt.includes('\uFFFD'), 'no broken character at the cut')
      assert.ok(Date.parse(log.log[1].at) >= Date.parse(log.log[0].at))
      assert.equal(log.log[2].error, null)
      const hook = await admin.get(`/v1/webhooks/${id}`)
      assert.equal(hook.body.consecutive_failures, 0)
      assert.equal(hook.body.failing_since, null)
      const succeeded = await admin.get(`/v1/webhooks/${id}/deliveries?status=failed`)
      assert.deepEqual(succeeded.body.data, [])

      // A manual redelivery sends the same message again.
      const again = await admin.post(`/v1/webhooks/${id}/deliveries/${log.id}/redeliver`)
      assert.equal(again.status, 202, again.text)
      await rx.waitFor(() => rx.messages().length === 4)
      assert.equal(rx.messages()[3]?.headers['webhook-id'], log.id)
      const unknown = await admin.post(`/v1/webhooks/${id}/deliveries/wdl_nope/redeliver`)
      assert.equal(unknown.status, 404)
      assert.equal(unknown.body.code, 'DELIVERY_NOT_FOUND')
    })

    it('disables an endpoint after persistent failure, with an event and a mail to the admins', async () => {
      let healthy = false
      const rx = await receiver((r) => {
        if (r.json.type === 'webhook.verification') return { status: 200, body: r.json.data.challenge }
        return healthy ? { status: 200, body: 'ok' } : { status: 500, body: 'broken' }
      })
      const created = await admin.post('/v1/webhooks', { url: rx.url, event_types: ['domain.created'] })
      const id = created.body.webhook.id
      assert.equal(created.body.webhook.status, 'active')
      await newDomain(admin)
      const disabled = await waitUntil('the endpoint to be disabled', async () => {
        const r = await admin.get(`/v1/webhooks/${id}`)
        return r.body.status === 'disabled' ? r.body : null
      })
      assert.match(disabled.disabled_reason, /4 attempts in a row failed/)
      assert.equal(rx.messages().length, 4)
      const ev = await admin.get('/v1/events?type=webhook.disabled')
      const mine = ev.body.data.find((e: { subject_id: string }) => e.subject_id === id)
      assert.ok(mine, 'a webhook.disabled event')
      assert.equal(mine.actor, 'webhooks')
      const mail = await s.postern.store.db
        .selectFrom('system_mail')
        .selectAll()
        .where('to_address', '=', ownerEmail)
        .where('subject', '=', 'A webhook endpoint was disabled')
        .execute()
      assert.equal(mail.length, 1)
      assert.ok(mail[0]?.text.includes(id) && mail[0]?.text.includes('answered 500'))

      // A disabled endpoint gets nothing more; its pending delivery waits.
      assert.equal((await admin.post(`/v1/webhooks/${id}/test`)).status, 409)
      const pending = await admin.get(`/v1/webhooks/${id}/deliveries?status=pending`)
      assert.equal(pending.body.data.length, 1)
      assert.equal(pending.body.data[0].attempts, 4)

      // Re-enabled: a new challenge, then what was pending is delivered.
      healthy = true
      const on = await admin.patch(`/v1/webhooks/${id}`, { enabled: true })
      assert.equal(on.status, 200, on.text)
      assert.equal(on.body.webhook.status, 'active')
      assert.equal(on.body.verification.ok, true)
      await rx.waitFor(() => rx.messages().length === 5)
      await waitUntil('the pending delivery to succeed', async () => {
        const r = await admin.get(`/v1/webhooks/${id}/deliveries?status=succeeded`)
        return r.body.data.length === 1
      })
      // An admin can disable it too.
      const off = await admin.patch(`/v1/webhooks/${id}`, { enabled: false })
      assert.equal(off.body.webhook.status, 'disabled')
      assert.equal(off.body.webhook.disabled_reason, 'disabled by an admin')
    })

    it('gives a delivery up after the retry window, and disables an endpoint failing for 3 days', async () => {
      // The first attempt is held at the receiver until the test has aged its delivery.
      let release = () => {}
      const held = new Promise<void>((r) => {
        release = r
      })
      let n = 0
      const rx = await receiver(async (r) => {
        if (r.json.type === 'webhook.verification') return { status: 200, body: r.json.data.challenge }
        if (++n === 1) await held
        return { status: 502 }
      })
      const created = await admin.post('/v1/webhooks', { url: rx.url, event_types: ['domain.created'] })
      const id = created.body.webhook.id
      const db = s.postern.store.db
      await newDomain(admin)
      await rx.waitFor(() => rx.messages().length === 1)
      // The delivery is 73 hours old: its next failure is its last.
      await db
        .updateTable('webhook_deliveries')
        .set({ created_at: Date.now() - 73 * 3_600_000 })
        .where('webhook_id', '=', id)
        .execute()
      release()
      const failed = await waitUntil('the delivery to be given up', async () => {
        const r = await admin.get(`/v1/webhooks/${id}/deliveries?status=failed`)
        return r.body.data[0]
      })
      assert.equal(failed.attempts, 2)
      assert.equal(failed.next_attempt_at, null)
      assert.equal(rx.messages().length, 2, 'no attempt after giving up')
      assert.equal(
        (await admin.get(`/v1/webhooks/${id}`)).body.status,
        'active',
        'two failures do not disable',
      )

      // Failing since 73 hours ago: the next failure disables the endpoint.
      await db
        .updateTable('webhooks')
        .set({ failing_since: Date.now() - 73 * 3_600_000, consecutive_failures: 0 })
        .where('id', '=', id)
        .execute()
      await newDomain(admin)
      const off = await waitUntil('the endpoint to be disabled', async () => {
        const r = await admin.get(`/v1/webhooks/${id}`)
        return r.body.status === 'disabled' ? r.body : null
      })
      assert.match(off.disabled_reason, /every attempt failed for 73 hours/)
    })

    it('refuses private, loopback and link-local targets that are not allowed, and follows no redirect', async () => {
      for (const url of [
        'http://10.0.0.1/hook',
        'http://169.254.169.254/latest/meta-data/',
        'http://[fe80::1]/x',
      ]) {
        const r = await admin.post('/v1/webhooks', { url })
        assert.equal(r.status, 422, `${url}: ${r.text}`)
        assert.equal(r.body.code, 'WEBHOOK_URL_REFUSED')
      }
      for (const url of ['ftp://127.0.0.1/x', 'http://user:pw@127.0.0.1/x', 'not a url', '/relative']) {
        const r = await admin.post('/v1/webhooks', { url })
        assert.equal(r.status, 422, `${url}: ${r.text}`)
        assert.equal(r.body.code, 'INVALID_WEBHOOK_URL')
      }
      // A name resolving to a private address is refused at connect time, before any packet.
      const internal = await admin.post('/v1/webhooks', { url: 'http://internal.hooks.test/hook' })
      assert.equal(internal.status, 201, internal.text)
      assert.equal(internal.body.webhook.status, 'pending')
      assert.match(internal.body.verification.error, /^REFUSED: .*10\.0\.0\.5/)

      // A redirect to loopback is not followed: not for the challenge, not for a message.
      const target = await receiver()
      let redirect = true
      const rx = await receiver((r) => {
        if (redirect) return { status: 307, headers: { location: `${target.url}?stolen=1` } }
        return { status: 200, body: r.json.type === 'webhook.verification' ? r.json.data.challenge : 'ok' }
      })
      const created = await admin.post('/v1/webhooks', { url: rx.url, event_types: ['domain.created'] })
      assert.equal(created.body.webhook.status, 'pending')
      assert.match(created.body.verification.error, /redirect/)
      redirect = false
      const verified = await admin.post(`/v1/webhooks/${created.body.webhook.id}/verify`)
      assert.equal(verified.body.webhook.status, 'active', verified.text)
      redirect = true
      await newDomain(admin)
      const failed = await waitUntil('a logged redirect', async () => {
        const r = await admin.get(`/v1/webhooks/${created.body.webhook.id}/deliveries`)
        return r.body.data[0]?.log.length ? r.body.data[0] : null
      })
      assert.equal(failed.log[0].status_code, 307)
      assert.match(failed.log[0].error, /redirect not followed/)
      assert.equal(target.received.length, 0, 'the redirect target got nothing')
    })

    it('validates input and answers 404 for unknown endpoints', async () => {
      const bad = await admin.post('/v1/webhooks', {
        url: 'http://127.0.0.1:9/x',
        event_types: ['email.nope'],
      })
      assert.equal(bad.status, 422, bad.text)
      assert.equal(bad.body.code, 'INVALID_EVENT_TYPE')
      const extra = await admin.post('/v1/webhooks', { url: 'http://127.0.0.1:9/x', secret: 'mine' })
      assert.equal(extra.status, 400, extra.text)
      for (const [method, path] of [
        ['GET', '/v1/webhooks/whk_missing'],
        ['PATCH', '/v1/webhooks/whk_missing'],
        ['DELETE', '/v1/webhooks/whk_missing'],
        ['POST', '/v1/webhooks/whk_missing/rotate-secret'],
        ['GET', '/v1/webhooks/whk_missing/deliveries'],
      ] as const) {
        const r = await admin.req(method, path, method === 'GET' || method === 'DELETE' ? undefined : {})
        assert.equal(r.status, 404, `${method} ${path}: ${r.text}`)
        assert.equal(r.body.code, 'WEBHOOK_NOT_FOUND')
      }
      // Deleting removes the endpoint and its log.
      const rx = await receiver()
      const created = await admin.post('/v1/webhooks', { url: rx.url })
      const id = created.body.webhook.id
      assert.equal((await admin.post(`/v1/webhooks/${id}/test`)).status, 202)
      await rx.waitFor(() => rx.messages('webhook.test').length === 1)
      assert.equal((await admin.delete(`/v1/webhooks/${id}`)).status, 204)
      assert.equal((await admin.get(`/v1/webhooks/${id}`)).status, 404)
      const rows = await s.postern.store.db
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('webhook_id', '=', id)
        .execute()
      assert.deepEqual(rows, [])
    })

    it('needs the admin scope', async () => {
      for (const scope of ['read', 'send', 'write'] as const) {
        const k = await owner.post('/v1/api-keys', { name: scope, scope })
        const api = owner.withKey(k.body.key)
        assert.equal((await api.get('/v1/webhooks')).status, 403)
        assert.equal((await api.post('/v1/webhooks', { url: 'http://127.0.0.1:9/' })).status, 403)
      }
    })
  })
}
