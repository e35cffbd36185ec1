// GET /v1/events over real HTTP: the filters (type lists and prefixes, email, message, mailbox,
// recipient, time range), cursor pagination, refusals of bad filters, mailbox-scoped keys that
// see only their mailbox's events, the scopes, and the retention prune job.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { writeEvent } from '../../src/services/events/write.ts'
import { setupOwner } from '../accounts/helpers.ts'
import { verifiedDomain } from '../domains/helpers.ts'
import type { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { createMailbox, deliver, type TestMailbox, textMail } from '../messages/fixtures.ts'
import { waitForEmail } from '../outbound/helpers.ts'
import { inviteAndClaim } from '../security/orgs.ts'

const DAY = 86_400_000

interface Ev {
  id: string
  type: string
  created_at: string
  subject_id: string | null
  mailbox_id: string | null
  recipient: string | null
  data: Record<string, any>
}

for (const dialect of DIALECTS) {
  describe(`events API (${dialect})`, () => {
    let s: TestServer
    let owner: Api
    let admin: Api
    let orgId: string
    let m1: TestMailbox
    let m2: TestMailbox
    let msg1: string
    let msg2: string
    let emailId: string
    const domain = 'events.postern.test'

    const all = async (api: Api, query = ''): Promise<Ev[]> => {
      const r = await api.get(`/v1/events?limit=200${query ? `&${query}` : ''}`)
      assert.equal(r.status, 200, r.text)
      return r.body.data
    }

    before(async () => {
      s = await startTestServer(dialect, { env: { POSTERN_SMTP_VERIFY_AUTH: 'false' } })
      owner = await setupOwner(s, 'owner@events.example', 'Events')
      orgId = (await owner.get('/v1/me')).body.org_id
      const key = await owner.post('/v1/api-keys', { name: 'admin', scope: 'admin' })
      admin = owner.withKey(key.body.key)
      await verifiedDomain(owner, s.dns, domain)
      m1 = await createMailbox(s, owner, domain, 'one', null)
      m2 = await createMailbox(s, owner, domain, 'two', null)
      msg1 = await deliver(s, m1, textMail({ to: m1.address, subject: 'For one' }))
      msg2 = await deliver(s, m2, textMail({ to: m2.address, subject: 'For two' }))
      // Mailbox one sends to mailbox two (local delivery): lifecycle events of one's email.
      const sent = await owner.withKey(m1.key).post('/v1/emails', {
        from: m1.address,
        to: `Two <${m2.address.toUpperCase()}>`,
        subject: 'One to two',
        text: 'hi',
      })
      assert.equal(sent.status, 202, sent.text)
      emailId = sent.body.id
      await waitForEmail(owner, emailId, (e) => e.status === 'sent')
    })
    after(() => s.close())

    it('lists every event of the org newest first, and filters by type, list and prefix', async () => {
      const every = await all(admin)
      assert.ok(every.length > 10)
      const times = every.map((e) => Date.parse(e.created_at))
      assert.deepEqual(
        times,
        [...times].sort((a, b) => b - a),
        'newest first',
      )
      const created = await all(admin, 'type=domain.created')
      assert.equal(created.length, 1)
      assert.equal(created[0]?.data.name, domain)
      const list = await all(admin, 'type=mailbox.created,domain.verified')
      assert.deepEqual([...new Set(list.map((e) => e.type))].sort(), ['domain.verified', 'mailbox.created'])
      assert.equal(list.filter((e) => e.type === 'mailbox.created').length, 2)
      const emails = await all(admin, 'type=email.*')
      assert.ok(emails.length >= 4)
      assert.ok(emails.every((e) => e.type.startsWith('email.')))
      for (const t of ['email.received', 'email.queued', 'email.delivered', 'email.sent'])
        assert.ok(
          emails.some((e) => e.type === t),
          t,
        )
    })

    it('filters by email, message, mailbox and recipient', async () => {
      const ofEmail = await all(admin, `email_id=${emailId}`)
      assert.deepEqual(ofEmail.map((e) => e.type).sort(), ['email.delivered', 'email.queued', 'email.sent'])
      const delivered = ofEmail.find((e) => e.type === 'email.delivered') as Ev
      assert.equal(delivered.recipient, m2.address)
      const ofMessage = await all(admin, `message_id=${msg1}`)
      assert.deepEqual(
        ofMessage.map((e) => e.type),
        ['email.received'],
      )
      assert.equal(ofMessage[0]?.mailbox_id, m1.id)

      const ofOne = await all(admin, `mailbox_id=${m1.id}`)
      const types = ofOne.map((e) => e.type).sort()
      assert.deepEqual(types, [
        'api_key.created', // its mailbox-scoped key
        'email.delivered',
        'email.filed', // the copy in its Sent folder
        'email.queued',
        'email.received',
        'email.sent',
        'mailbox.created',
      ])
      assert.ok(!ofOne.some((e) => e.subject_id === msg2))

      const byRecipient = await all(admin, `recipient=${encodeURIComponent(m2.address.toUpperCase())}`)
      assert.deepEqual(
        byRecipient.map((e) => e.type),
        ['email.delivered'],
      )
      assert.deepEqual(await all(admin, 'recipient=nobody@nowhere.example'), [])
      // Filters combine.
      assert.deepEqual(await all(admin, `email_id=${emailId}&type=email.received`), [])
    })

    it('filters by time range and pages with a cursor', async () => {
      const now = Date.now()
      const db = s.postern.store.db
      for (const [i, t] of [now - 10 * DAY, now - 5 * DAY, now - 5 * DAY, now - 2 * DAY].entries())
        await writeEvent(db, t, {
          org_id: orgId,
          type: 'org.updated',
          actor: 'test',
          ip: null,
          subject_id: orgId,
          payload: { n: i },
        })
      const iso = (t: number) => new Date(t).toISOString()
      const window = await all(
        admin,
        `type=org.updated&since=${iso(now - 6 * DAY)}&until=${iso(now - 3 * DAY)}`,
      )
      assert.deepEqual(window.map((e) => e.data.n).sort(), [1, 2])
      const since = await all(admin, `type=org.updated&since=${iso(now - 5 * DAY)}`)
      assert.deepEqual(since.map((e) => e.data.n).sort(), [1, 2, 3], 'since is inclusive')
      const until = await all(admin, `type=org.updated&until=${iso(now - 5 * DAY)}`)
      assert.deepEqual(
        until.map((e) => e.data.n),
        [0],
        'until is exclusive',
      )

      const every = await all(admin)
      const paged: Ev[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const r: { status: number; text: string; body: { data: Ev[]; next_cursor: string | null } } =
          await admin.get(`/v1/events?limit=3${cursor ? `&cursor=${cursor}` : ''}`)
        assert.equal(r.status, 200, r.text)
        assert.ok(r.body.data.length <= 3)
        paged.push(...r.body.data)
        cursor = r.body.next_cursor
        pages++
      } while (cursor && pages < 100)
      assert.deepEqual(
        paged.map((e) => e.id),
        every.map((e) => e.id),
        'pages add up to the whole list, in order, without repeats',
      )
      assert.ok(pages > 2)
    })

    it('refuses bad filters with a problem naming the field', async () => {
      for (const [q, code] of [
        ['type=email.nope', 'INVALID_EVENT_TYPE'],
        ['type=nothing.*', 'INVALID_EVENT_TYPE'],
        ['type=,', 'INVALID_EVENT_TYPE'],
        ['since=yesterday', 'INVALID_FILTER'],
        ['until=2026-13-45T00:00:00Z', 'INVALID_FILTER'],
        ['since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z', 'INVALID_FILTER'],
        ['cursor=not-a-cursor', 'INVALID_CURSOR'],
      ] as const) {
        const r = await admin.get(`/v1/events?${q}`)
        assert.ok(r.status === 400 || r.status === 422, `${q}: ${r.status} ${r.text}`)
        assert.equal(r.body.code, code, q)
        assert.ok(r.body.errors?.length > 0, `${q} names the field`)
      }
      assert.equal((await admin.get('/v1/events?limit=0')).status, 400)
      assert.equal((await admin.get('/v1/events?limit=201')).status, 400)
    })

    it("shows a mailbox-scoped key only its mailbox's events", async () => {
      const one = owner.withKey(m1.key)
      const seen = await all(one)
      assert.ok(seen.length > 0)
      const ids = new Set(seen.map((e) => e.subject_id))
      assert.ok(ids.has(msg1), 'its own inbound mail')
      assert.ok(ids.has(emailId), 'the mail it sent')
      assert.ok(!ids.has(msg2), "not the other mailbox's mail")
      assert.ok(
        !seen.some(
          (e) => e.type === 'domain.created' || e.type === 'org.updated' || e.type.startsWith('auth.'),
        ),
      )
      assert.ok(
        seen.every((e) => e.mailbox_id === m1.id || e.subject_id === emailId),
        JSON.stringify(seen),
      )
      assert.deepEqual(await all(one, `mailbox_id=${m2.id}`), [])
      assert.deepEqual(await all(one, `message_id=${msg2}`), [])
      const two = await all(owner.withKey(m2.key))
      assert.ok(two.some((e) => e.subject_id === msg2))
      assert.ok(!two.some((e) => e.subject_id === emailId || e.subject_id === msg1))
    })

    it("shows a member's session only the events of the mailboxes granted to them", async () => {
      const member = await inviteAndClaim(s, owner, 'member@events.example', 'member')
      assert.equal(
        (await owner.post(`/v1/mailboxes/${m1.id}/grants`, { user_id: member.userId })).status,
        200,
      )
      const seen = await all(member.api)
      const ids = new Set(seen.map((e) => e.subject_id))
      assert.ok(ids.has(msg1) && ids.has(emailId), 'the granted mailbox: its mail in and out')
      assert.ok(!ids.has(msg2), 'not the other mailbox')
      assert.ok(
        !seen.some((e) => e.type.startsWith('user.') || e.type.startsWith('domain.')),
        'no org-wide events',
      )
    })

    it('needs the read scope', async () => {
      const send = await owner.post('/v1/api-keys', { name: 'send', scope: 'send' })
      assert.equal((await owner.withKey(send.body.key).get('/v1/events')).status, 403)
      const read = await owner.post('/v1/api-keys', { name: 'read', scope: 'read' })
      assert.equal((await owner.withKey(read.body.key).get('/v1/events')).status, 200)
      assert.equal((await owner.get('/v1/events')).status, 200, 'the owner session')
    })

    it('prunes events older than events.retention_days', async () => {
      const now = Date.now()
      const db = s.postern.store.db
      await writeEvent(db, now - 31 * DAY, {
        org_id: orgId,
        type: 'org.updated',
        actor: 'test',
        ip: null,
        subject_id: orgId,
        payload: { old: true },
      })
      const before = await all(admin, 'type=org.updated')
      assert.ok(before.some((e) => e.data.old))
      // Finished webhook deliveries as old go with their log; a pending one stays.
      const t = now - 31 * DAY
      await db
        .insertInto('webhooks')
        .values({
          id: 'whk_prune',
          org_id: orgId,
          url: 'http://127.0.0.1:9/',
          status: 'active',
          secret_enc: 'v1.x.y',
          old_secret_enc: null,
          old_secret_until: null,
          challenge_hash: null,
          challenge_expires_at: null,
          verified_at: t,
          failing_since: null,
          disabled_at: null,
          disabled_reason: null,
          created_at: t,
          updated_at: t,
        })
        .execute()
      for (const [id, status] of [
        ['wdl_old_done', 'succeeded'],
        ['wdl_old_failed', 'failed'],
        ['wdl_old_pending', 'pending'],
      ] as const)
        await db
          .insertInto('webhook_deliveries')
          .values({
            id,
            org_id: orgId,
            webhook_id: 'whk_prune',
            event_id: null,
            event_type: 'webhook.test',
            body: '{}',
            status,
            next_attempt_at: now + DAY,
            lease_owner: null,
            lease_until: null,
            last_status_code: null,
            last_error: null,
            delivered_at: null,
            created_at: t,
            updated_at: t,
          })
          .execute()
      await db
        .insertInto('webhook_attempts')
        .values({
          id: 'wat_old',
          org_id: orgId,
          delivery_id: 'wdl_old_done',
          attempt: 1,
          status_code: 200,
          latency_ms: 1,
          error: null,
          at: t,
        })
        .execute()
      const run = await s.postern.jobs.runNow('events-prune')
      assert.equal(run.last_status, 'ok')
      const afterPrune = await all(admin, 'type=org.updated')
      assert.ok(!afterPrune.some((e) => e.data.old), 'the 31-day-old event is gone')
      assert.equal(afterPrune.length, before.length - 1, 'younger events stay')
      const left = await db
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('webhook_id', '=', 'whk_prune')
        .execute()
      assert.deepEqual(
        left.map((r) => r.id),
        ['wdl_old_pending'],
      )
      assert.deepEqual(
        await db.selectFrom('webhook_attempts').select('id').where('id', '=', 'wat_old').execute(),
        [],
      )
    })
  })
}
