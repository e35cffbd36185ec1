// Test mode, end to end: mail sent with a test key is composed, DKIM-signed and stored like
// live mail but reaches no SMTP server (a loopback sink that would accept it receives nothing);
// magic recipients on postern.test produce delivered, bounced, complained and deferred
// outcomes with plausible SMTP replies; every event of it carries payload.test; it counts
// against no org cap or warm-up ramp and suppresses nothing; and a test key sees only test
// mail while live callers see it only when they ask (?test=true).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import { fakeHandler, startSmtp, type TestSmtp } from '../smtp/helpers.ts'
import { type Sender, startSender, waitForEmail } from './helpers.ts'

const REMOTE = 'remote.example'
const msg = (to: string | string[], subject = 'Hi') => ({
  from: 'alice@a.example',
  to,
  subject,
  text: 'Hello',
})
const done = (e: { status: string }) => e.status === 'sent' || e.status === 'failed'
const types = (e: { events: { type: string }[] }) => e.events.map((x) => x.type)

for (const dialect of DIALECTS) {
  describe(`test mode (${dialect})`, () => {
    let dns: DnsServer
    let sink: TestSmtp
    let a: Sender
    let admin: Api
    let testSend: Api
    let testRead: Api
    let testKeyBody: Record<string, unknown>

    before(async () => {
      dns = await startDnsServer({})
      sink = await startSmtp({ handler: fakeHandler() })
      // Every address the tests use resolves to the sink, so a leak would be received there.
      for (const d of [REMOTE, 'postern.test']) {
        dns.set(d, 'MX', [{ priority: 10, exchange: `mx.${REMOTE}` }])
      }
      dns.set(`mx.${REMOTE}`, 'A', ['127.0.0.1'])
      a = await startSender(dialect, dns, sink.port, {
        env: { POSTERN_OUTBOUND_ORG_HOURLY_CAP: '3' },
      })
      const adminKey = await a.api.post('/v1/api-keys', { name: 'admin', scope: 'admin' })
      admin = a.api.withKey(adminKey.body.key)
      const t = await a.api.post('/v1/api-keys', { name: 'ci', scope: 'send', test: true })
      assert.equal(t.status, 201, t.text)
      testKeyBody = t.body
      testSend = a.api.withKey(t.body.key)
      const r = await a.api.post('/v1/api-keys', { name: 'ci read', scope: 'read', test: true })
      assert.equal(r.status, 201, r.text)
      testRead = a.api.withKey(r.body.key)
    })
    after(async () => {
      await a?.server.close()
      await sink?.close()
      await dns?.close()
    })

    it('makes test keys that look different from live ones', async () => {
      assert.match(testKeyBody.key as string, /^pst_test_[A-Za-z0-9_-]{30,}$/)
      assert.equal(testKeyBody.test, true)
      assert.match(testKeyBody.prefix as string, /^pst_test_.{8}$/)
      const live = await a.api.post('/v1/api-keys', { name: 'live', scope: 'send' })
      assert.equal(live.body.test, false)
      assert.doesNotMatch(live.body.key, /^pst_test_/)
      const listed = (await a.api.get('/v1/api-keys')).body.data
      assert.equal(listed.find((k: { id: string }) => k.id === testKeyBody.id).test, true)
      assert.equal(listed.find((k: { id: string }) => k.id === live.body.id).test, false)
      const bad = await a.api.post('/v1/api-keys', { name: 'x', scope: 'send', test: 'yes' })
      assert.ok(bad.status === 400 || bad.status === 422, bad.text)
      // A test key has its scope's rights and no more.
      const noAdmin = await testSend.get('/v1/api-keys')
      assert.equal(noAdmin.status, 403, noAdmin.text)
      assert.equal(noAdmin.body.code, 'MISSING_SCOPE')
      const noSend = await testRead.post('/v1/emails', msg('delivered@postern.test'))
      assert.equal(noSend.status, 403, noSend.text)
      assert.equal((await testSend.get('/v1/emails')).status, 403, 'a send key does not read')
      // Revoked, it authenticates as nothing.
      const gone = await a.api.post('/v1/api-keys', { name: 'gone', scope: 'send', test: true })
      assert.equal((await a.api.delete(`/v1/api-keys/${gone.body.id}`)).status, 204)
      const dead = await a.api.withKey(gone.body.key).post('/v1/emails', msg('delivered@postern.test'))
      assert.equal(dead.status, 401, dead.text)
    })

    it('simulates magic recipients and sends nothing to the network', async () => {
      const sends = {
        delivered: 'delivered@postern.test',
        bounced: 'bounced+order-17@postern.test',
        complained: 'complained@postern.test',
        deferred: 'deferred@postern.test',
        other: `someone@${REMOTE}`,
      }
      const ids: Record<string, string> = {}
      for (const [k, to] of Object.entries(sends)) {
        const r = await testSend.post('/v1/emails', msg(to, `test ${k}`))
        assert.equal(r.status, 202, r.text)
        ids[k] = r.body.id
      }
      const get = (k: string) => waitForEmail(testRead, ids[k] as string, done)

      const delivered = await get('delivered')
      assert.equal(delivered.status, 'sent')
      assert.equal(delivered.test, true)
      assert.deepEqual(types(delivered), ['email.queued', 'email.sent', 'email.delivered'])
      assert.equal(delivered.recipients[0].last_code, 250)
      assert.equal(delivered.recipients[0].remote_mta, 'simulator.postern.test')
      assert.match(delivered.recipients[0].last_response, /simulated/)

      const bounced = await get('bounced')
      assert.equal(bounced.status, 'failed')
      assert.equal(bounced.recipients[0].state, 'bounced')
      const b = bounced.events.find((e: { type: string }) => e.type === 'email.bounced')
      assert.deepEqual([b.data.code, b.data.enhanced, b.data.hard], [550, '5.1.1', true])
      assert.match(b.data.response, /User unknown/)

      const complained = await get('complained')
      assert.deepEqual(types(complained), [
        'email.queued',
        'email.sent',
        'email.delivered',
        'email.complained',
      ])
      assert.equal(complained.events[3].recipient, 'complained@postern.test')

      const deferred = await get('deferred')
      assert.equal(deferred.status, 'sent')
      assert.deepEqual(types(deferred), ['email.queued', 'email.sent', 'email.deferred', 'email.delivered'])
      const d = deferred.events[2]
      assert.deepEqual([d.data.code, d.data.enhanced], [451, '4.7.1'])
      assert.equal(deferred.recipients[0].attempts, 2)

      const other = await get('other')
      assert.equal(other.status, 'sent', 'any other recipient is simulated as delivered')
      const trace = await testRead.get(`/v1/emails/${ids.other}/trace`)
      assert.equal(trace.status, 200, trace.text)
      const kinds = trace.body.steps.map((s: { kind: string }) => s.kind)
      assert.ok(kinds.includes('simulated'), kinds.join(','))
      assert.ok(!kinds.some((k: string) => k === 'dns' || k === 'connect'), kinds.join(','))

      // Nothing reached the sink: not a connection, let alone a message.
      assert.deepEqual(
        sink.handler.calls.map((c) => c.kind),
        [],
      )

      // Composed, signed and stored exactly as live mail.
      const db = a.server.postern.store.db
      const row = await db
        .selectFrom('outbound_messages')
        .selectAll()
        .where('id', '=', ids.delivered as string)
        .executeTakeFirstOrThrow()
      assert.equal(Number(row.test), 1)
      const raw = await a.server.postern.blobs.get(row.org_id, row.blob_sha256 as string)
      assert.match(raw.toString(), /^DKIM-Signature:[\s\S]*d=a\.example/m)
      assert.match(raw.toString(), /^Subject: test delivered/m)

      // Every event of test mail says so; the bounce suppressed nothing.
      const events = await db
        .selectFrom('events')
        .select(['type', 'payload'])
        .where('subject_id', 'in', Object.values(ids))
        .execute()
      assert.ok(events.length >= 15, `${events.length} events`)
      for (const e of events) assert.equal(JSON.parse(e.payload).test, true, `${e.type} lacks payload.test`)
      const sup = await admin.get('/v1/suppressions')
      assert.deepEqual(sup.body.data, [], 'a simulated bounce or complaint suppresses nobody')
    })

    it('keeps test and live mail apart in GET /v1/emails', async () => {
      const live = await a.send.post('/v1/emails', msg(`live@${REMOTE}`, 'live one'))
      assert.equal(live.status, 202, live.text)
      const liveDone = await waitForEmail(admin, live.body.id, done)
      assert.equal(liveDone.test, false)
      const test = await testSend.post('/v1/emails', msg('delivered@postern.test', 'test one'))
      await waitForEmail(testRead, test.body.id, done)

      const ids = (r: { body: { data: { id: string }[] } }) => r.body.data.map((e) => e.id)
      // A test key sees test mail only, whatever it asks for.
      const asTest = await testRead.get('/v1/emails')
      assert.ok(ids(asTest).includes(test.body.id))
      assert.ok(!ids(asTest).includes(live.body.id))
      assert.ok(asTest.body.data.every((e: { test: boolean }) => e.test))
      assert.ok(!ids(await testRead.get('/v1/emails?test=false')).includes(live.body.id))
      const hidden = await testRead.get(`/v1/emails/${live.body.id}`)
      assert.equal(hidden.status, 404, hidden.text)
      assert.equal(hidden.body.code, 'EMAIL_NOT_FOUND')
      assert.equal((await testRead.get(`/v1/emails/${live.body.id}/trace`)).status, 404)
      assert.equal((await testSend.post(`/v1/emails/${live.body.id}/cancel`)).status, 404)

      // Live callers see live mail, and test mail only when they ask for it.
      for (const api of [admin, a.api]) {
        const plain = await api.get('/v1/emails')
        assert.ok(ids(plain).includes(live.body.id))
        assert.ok(!ids(plain).includes(test.body.id))
        const asked = await api.get('/v1/emails?test=true')
        assert.ok(ids(asked).includes(test.body.id))
        assert.ok(!ids(asked).includes(live.body.id))
        const byId = await api.get(`/v1/emails/${test.body.id}`)
        assert.equal(byId.status, 404, byId.text)
        assert.match(byId.body.detail, /test=true/)
        assert.equal((await api.get(`/v1/emails/${test.body.id}?test=true`)).status, 200)
      }
      const badFlag = await admin.get('/v1/emails?test=maybe')
      assert.ok(badFlag.status === 400 || badFlag.status === 422, badFlag.text)
    })

    it('counts test mail against no org cap, and an Idempotency-Key never crosses modes', async () => {
      // The org may reach 3 recipients an hour; test mail to 8 goes anyway.
      for (let i = 0; i < 4; i++) {
        const r = await testSend.post('/v1/emails', msg([`c${i}a@postern.test`, `c${i}b@postern.test`]))
        assert.equal(r.status, 202, r.text)
        const e = await waitForEmail(testRead, r.body.id, done)
        assert.equal(e.status, 'sent')
      }
      // Live mail still has its whole window (the live sends of earlier tests used 1).
      const two = await a.send.post('/v1/emails', msg([`l1@${REMOTE}`, `l2@${REMOTE}`]))
      assert.equal(two.status, 202, two.text)
      await waitForEmail(admin, two.body.id, (e) => e.status === 'sent')
      const over = await a.send.post('/v1/emails', msg(`l3@${REMOTE}`))
      assert.equal(over.status, 429, over.text)
      assert.equal(over.body.code, 'ORG_SEND_CAP')
      // Test mail still goes with the live window full.
      const still = await testSend.post('/v1/emails', msg('delivered@postern.test'))
      assert.equal(still.status, 202, still.text)

      const headers = { 'idempotency-key': 'order-42' }
      const first = await testSend.req('POST', '/v1/emails', msg('delivered@postern.test'), headers)
      assert.equal(first.status, 202, first.text)
      const again = await testSend.req('POST', '/v1/emails', msg('delivered@postern.test'), headers)
      assert.equal(again.headers.get('idempotency-replayed'), 'true')
      assert.equal(again.body.id, first.body.id)
      const liveKey = (await a.api.post('/v1/api-keys', { name: 'live 2', scope: 'send' })).body.key
      const crossed = await a.api
        .withKey(liveKey)
        .req('POST', '/v1/emails', msg('delivered@postern.test'), headers)
      // The same key from a live key is another request, never a replay of the test send.
      assert.equal(crossed.status, 409, crossed.text)
      assert.equal(crossed.body.code, 'IDEMPOTENCY_KEY_REUSED')
      assert.notEqual(crossed.headers.get('idempotency-replayed'), 'true')
      assert.notEqual(crossed.body.id, first.body.id)
    })

    it('counts test mail against no warm-up ramp', async () => {
      const ramp = await admin.post('/v1/alias-warmups', { address: 'alice@a.example', schedule: [1, 1] })
      assert.equal(ramp.status, 201, ramp.text)
      for (let i = 0; i < 3; i++) {
        const r = await testSend.post('/v1/emails', msg(`w${i}@postern.test`))
        const e = await waitForEmail(testRead, r.body.id, done)
        assert.equal(e.status, 'sent')
      }
      const after = (await admin.get(`/v1/alias-warmups/${ramp.body.id}`)).body
      assert.equal(after.used_today, 0)
      assert.deepEqual(
        sink.handler.calls.filter((c) => c.kind === 'rcpt' && c.to.address.endsWith('postern.test')),
        [],
      )
    })

    it('files a test mailbox key’s send in Sent, delivers nothing locally, and sends batches in test mode', async () => {
      const me = (await a.api.get('/v1/me')).body.id as string
      const carol = await a.api.post('/v1/mailboxes', {
        domain: a.domain,
        local_part: 'carol',
        owner_user_id: me,
      })
      const dave = await a.api.post('/v1/mailboxes', {
        domain: a.domain,
        local_part: 'dave',
        owner_user_id: me,
      })
      assert.equal(carol.status, 201, carol.text)
      assert.equal(dave.status, 201, dave.text)
      const k = await a.api.post('/v1/api-keys', {
        name: 'carol test',
        scope: 'mailbox',
        mailbox_id: carol.body.mailbox.id,
        test: true,
      })
      assert.equal(k.status, 201, k.text)
      const carolTest = a.api.withKey(k.body.key)
      const r = await carolTest.post('/v1/emails', {
        from: `carol@${a.domain}`,
        to: `dave@${a.domain}`,
        subject: 'Lunch? (test)',
        text: 'Noon.',
      })
      assert.equal(r.status, 202, r.text)
      const e = await waitForEmail(carolTest, r.body.id, done)
      assert.equal(e.status, 'sent')
      assert.equal(e.recipients[0].remote_mta, 'simulator.postern.test', 'not delivered locally')
      const inbox = await a.api.get(`/v1/messages?mailbox=${dave.body.mailbox.id}`)
      assert.equal(inbox.status, 200, inbox.text)
      assert.deepEqual(inbox.body.data, [], 'nothing reached the local mailbox')
      const sent = await carolTest.get(`/v1/messages?mailbox=${carol.body.mailbox.id}&folder=sent`)
      assert.ok(
        sent.body.data.some((m: { subject: string }) => m.subject === 'Lunch? (test)'),
        sent.text,
      )
      const filed = await a.server.postern.store.db
        .selectFrom('events')
        .select('payload')
        .where('type', '=', 'email.filed')
        .execute()
      const ours = filed.map((f) => JSON.parse(f.payload)).filter((pl) => pl.email_id === r.body.id)
      assert.equal(ours.length, 1)
      assert.equal(ours[0].test, true)

      // The dry run knows the magic domain needs no mail server, for test keys only.
      const dry = await testSend.post('/v1/emails/validate', msg(['bounced@postern.test', `x@${REMOTE}`]))
      assert.equal(dry.status, 200, dry.text)
      assert.equal(dry.body.valid, true, dry.text)
      assert.deepEqual(dry.body.recipients[0].mx, ['simulator.postern.test'])
      assert.deepEqual(dry.body.recipients[1].mx, [`mx.${REMOTE}`])
      const liveDry = await a.send.post('/v1/emails/validate', msg('bounced@postern.test'))
      assert.notDeepEqual(liveDry.body.recipients[0].mx, ['simulator.postern.test'])

      const batch = await testSend.post('/v1/emails/batch', [
        msg('delivered@postern.test'),
        msg('bounced@postern.test'),
      ])
      assert.equal(batch.status, 202, batch.text)
      const outcomes = await Promise.all(
        batch.body.data.map((x: { id: string }) => waitForEmail(testRead, x.id, done)),
      )
      assert.deepEqual(
        outcomes.map((o) => [o.test, o.origin, o.status]),
        [
          [true, 'batch', 'sent'],
          [true, 'batch', 'failed'],
        ],
      )
    })
  })
}
