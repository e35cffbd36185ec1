// Tenant isolation, generic over /v1/openapi.json: org A, holding org B's ids, reaches nothing
// of B's. Every route with a {param} must be in TARGETS (how to get B's value for each
// parameter, or why the parameter is not tenant data); a new route missing from it fails the
// test, so later work extends the table, not the mechanism. Every call answers 404 (never 403,
// which would confirm the id exists), and afterwards B's objects are all there, unchanged.
// Then every parameterless GET, as A, must not mention any of B's ids or addresses.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { isEventType } from '../../src/services/events/types.ts'
import { writeEvent } from '../../src/services/events/write.ts'
import type { Api, ApiResponse } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import {
  assertProblem,
  createOrg,
  expectStatus,
  fetchOperations,
  fillPath,
  keyMayCall,
  type Operation,
  type Org,
} from './orgs.ts'

type Target =
  | { global: string }
  | {
      /** Org B's value for each path parameter. */
      params: Record<string, (b: Org) => string>
      /** Bodies by method that would do damage if isolation failed (default: the schema's minimal body). */
      bodies?: Record<string, unknown>
    }

/** Every templated path of the API. Add new routes here. */
const TARGETS: Record<string, Target> = {
  '/v1/users/{id}': {
    params: { id: (b) => b.invitedUserId },
    bodies: { PATCH: { role: 'admin', disabled: true } },
  },
  '/v1/api-keys/{id}': { params: { id: (b) => b.adminKeyId } },
  '/v1/me/sessions/{id}': { params: { id: (b) => b.sessionId } },
  '/v1/me/app-passwords/{id}': { params: { id: (b) => b.appPasswordId } },
  '/v1/admin/jobs/{name}/run': { global: 'job names are installation-wide, not tenant data' },
  '/v1/domains/{id}': {
    params: { id: (b) => b.domainId },
    bodies: { PATCH: { active: false, description: 'taken' } },
  },
  '/v1/domains/{id}/dns-records': { params: { id: (b) => b.domainId } },
  '/v1/domains/{id}/dns-status': { params: { id: (b) => b.domainId } },
  '/v1/domains/{id}/verify': { params: { id: (b) => b.domainId } },
  '/v1/domains/{id}/dkim-keys': { params: { id: (b) => b.domainId } },
  '/v1/mailboxes/{id}': {
    params: { id: (b) => b.mailboxId },
    bodies: { PATCH: { active: false, password: 'taken-over-Password-1' } },
  },
  '/v1/mailboxes/{id}/grants': { params: { id: (b) => b.mailboxId } },
  '/v1/mailboxes/{id}/reset-uids': { params: { id: (b) => b.mailboxId } },
  '/v1/mailboxes/{id}/grants/{user_id}': { params: { id: (b) => b.mailboxId, user_id: (b) => b.ownerId } },
  '/v1/aliases/{id}': { params: { id: (b) => b.aliasId }, bodies: { PATCH: { active: false } } },
  '/v1/aliases/{id}/default': { params: { id: (b) => b.aliasId } },
  '/v1/messages/{id}': {
    params: { id: (b) => b.messageId },
    bodies: { PATCH: { seen: true, folders: ['trash'], labels: { add: ['x'] } } },
  },
  '/v1/messages/{id}/raw': { params: { id: (b) => b.messageId } },
  '/v1/messages/{id}/attachments/{n}': { params: { id: (b) => b.messageId, n: () => '0' } },
  '/v1/threads/{id}': { params: { id: (b) => b.threadId }, bodies: { PATCH: { trash: true, read: true } } },
  '/v1/mailboxes/{id}/folders': { params: { id: (b) => b.mailboxId }, bodies: { POST: { name: 'Stolen' } } },
  '/v1/mailboxes/{id}/folders/{folder_id}': {
    params: { id: (b) => b.mailboxId, folder_id: (b) => b.labelId },
    bodies: { PATCH: { name: 'Taken' } },
  },
  '/v1/labels/{id}': { params: { id: (b) => b.labelId }, bodies: { PATCH: { name: 'Taken' } } },
  '/v1/emails/{id}': { params: { id: (b) => b.emailId }, bodies: { PATCH: { scheduled_at: null } } },
  '/v1/emails/{id}/trace': { params: { id: (b) => b.emailId } },
  '/v1/emails/{id}/cancel': { params: { id: (b) => b.emailId } },
  '/v1/queue/messages/{id}': {
    params: { id: (b) => b.emailId },
    bodies: { PATCH: { next_attempt_at: null } },
  },
  '/v1/suppressions/{id}': { params: { id: (b) => b.suppressionId } },
  '/v1/attachments/{id}': { params: { id: (b) => b.attachmentId } },
  '/v1/attachments/{id}/content': { params: { id: (b) => b.attachmentId } },
  '/v1/drafts/{id}': {
    params: { id: (b) => b.draftId },
    bodies: { PATCH: { subject: 'Taken', to: 'thief@evil.example' } },
  },
  '/v1/drafts/{id}/send': { params: { id: (b) => b.draftId } },
  '/v1/alias-warmups/{id}': {
    params: { id: (b) => b.warmupId },
    bodies: { PATCH: { schedule: [1], restart: true } },
  },
  '/v1/aliases/{id}/warmup-token': { params: { id: (b) => b.aliasId } },
  // Tracking links: the signed token is the whole capability (no org in the URL); a token that
  // does not verify answers 404 whoever asks. Real tokens are tested in test/tracking.
  '/t/o/{token}': { params: { token: (b) => `${b.emailId.slice(4)}.forged` } },
  '/t/c/{token}': { params: { token: (b) => `${b.emailId.slice(4)}.0.forged` } },
  '/t/u/{token}': { params: { token: (b) => `${b.emailId.slice(4)}.forged` } },
  '/v1/webhooks/{id}': {
    params: { id: (b) => b.webhookId },
    bodies: { PATCH: { url: 'http://127.0.0.1:9/stolen', enabled: false, event_types: ['email.*'] } },
  },
  '/v1/webhooks/{id}/verify': { params: { id: (b) => b.webhookId } },
  '/v1/webhooks/{id}/resend-verification': { params: { id: (b) => b.webhookId } },
  '/v1/webhooks/{id}/test': { params: { id: (b) => b.webhookId } },
  '/v1/webhooks/{id}/rotate-secret': { params: { id: (b) => b.webhookId } },
  '/v1/webhooks/{id}/deliveries': { params: { id: (b) => b.webhookId } },
  '/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver': {
    params: { id: (b) => b.webhookId, delivery_id: (b) => b.deliveryId },
  },
}

/** Ids in request bodies that must not reach B's objects either. */
const BODY_REFERENCES: { method: string; path: string; body: (b: Org, a: Org) => unknown; code: string }[] = [
  {
    method: 'POST',
    path: '/v1/me/app-passwords',
    body: (b) => ({ name: 'stolen', mailbox_id: b.mailboxId }),
    code: 'MAILBOX_NOT_FOUND',
  },
  {
    method: 'POST',
    path: '/v1/api-keys',
    body: (b) => ({ name: 'stolen', scope: 'mailbox', mailbox_id: b.mailboxId }),
    code: 'MAILBOX_NOT_FOUND',
  },
  {
    method: 'POST',
    path: '/v1/emails',
    body: (b, a) => ({
      from: a.mailboxAddress,
      to: 'someone@example.com',
      subject: 'stolen',
      text: 'x',
      attachments: [{ id: b.attachmentId }],
    }),
    code: 'ATTACHMENT_NOT_FOUND',
  },
  {
    method: 'POST',
    path: '/v1/drafts',
    body: (b) => ({ subject: 'stolen', attachments: [b.attachmentId] }),
    code: 'ATTACHMENT_NOT_FOUND',
  },
  {
    method: 'POST',
    path: '/v1/drafts',
    body: (b) => ({ mailbox: b.mailboxId, subject: 'stolen' }),
    code: 'MAILBOX_NOT_FOUND',
  },
  {
    method: 'POST',
    path: '/v1/alias-warmups',
    body: (b) => ({ alias_id: b.aliasId, schedule: [1] }),
    code: 'ALIAS_NOT_FOUND',
  },
  {
    method: 'POST',
    path: '/v1/alias-warmups',
    body: (b) => ({ address: `new@${b.domainName}`, schedule: [1] }),
    code: 'DOMAIN_NOT_FOUND',
  },
]

/** Query filters naming B's objects: each analytics route answers 404 with this code. */
const ANALYTICS_ROUTES = [
  '/v1/analytics/deliverability/summary',
  '/v1/analytics/deliverability/timeseries',
  '/v1/analytics/deliverability/recent',
  '/v1/debug/deliverability/report',
]
const QUERY_REFERENCES: { query: (b: Org) => string; code: string }[] = [
  { query: (b) => `mailbox=${b.mailboxId}`, code: 'MAILBOX_NOT_FOUND' },
  { query: (b) => `mailbox=${encodeURIComponent(b.mailboxAddress)}`, code: 'MAILBOX_NOT_FOUND' },
  { query: (b) => `domain=${b.domainId}`, code: 'DOMAIN_NOT_FOUND' },
  { query: (b) => `domain=${b.domainName}`, code: 'DOMAIN_NOT_FOUND' },
]

/** What B has that A must never see: label -> value. */
function markersOf(b: Org): Record<string, string> {
  return {
    'org id': b.orgId,
    'owner user id': b.ownerId,
    'invited user id': b.invitedUserId,
    'admin key id': b.adminKeyId,
    'send key id': b.sendKeyId,
    'session id': b.sessionId,
    'app password id': b.appPasswordId,
    'mailbox id': b.mailboxId,
    'domain id': b.domainId,
    'domain name': b.domainName,
    'alias id': b.aliasId,
    'message id': b.messageId,
    'thread id': b.threadId,
    'label id': b.labelId,
    'mailbox key id': b.mailboxKeyId,
    'mailbox key': b.mailboxKey,
    'owner email': b.ownerEmail,
    'invited email': b.invitedEmail,
    'mailbox address': b.mailboxAddress,
    'admin key': b.adminKey,
    'send key': b.sendKey,
    'email id': b.emailId,
    'suppression id': b.suppressionId,
    'suppressed address': b.suppressedAddress,
    'attachment id': b.attachmentId,
    'draft id': b.draftId,
    'warm-up id': b.warmupId,
    'warm-up token': b.warmupToken,
    'webhook id': b.webhookId,
    'delivery id': b.deliveryId,
  }
}

/** Markers B's own parameterless GETs show (a check that the leak scan looks for real values). */
const VISIBLE_TO_B = [
  'org id',
  'owner user id',
  'invited user id',
  'admin key id',
  'send key id',
  'session id',
  'app password id',
  'mailbox id',
  'owner email',
  'invited email',
  'draft id',
  'warm-up id',
  'warm-up token',
  'webhook id',
]

/** The clients of an org that may call a route with this scope: owner session, and admin key where keys may. */
function callersFor(o: Org, scope: string): [string, Api][] {
  const callers: [string, Api][] = [[`org ${o.tag} owner session`, o.api]]
  if (keyMayCall(scope)) callers.push([`org ${o.tag} admin key`, o.api.withKey(o.adminKey)])
  return callers
}

const strip = (rows: Record<string, unknown>[], field: string) =>
  rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => k !== field)))

/** What B can see of its own objects, minus usage stamps that reading them moves. */
async function snapshotOf(b: Org) {
  const key = b.api.withKey(b.adminKey)
  const data = async (api: Api, path: string) =>
    expectStatus(await api.get(path), 200, `org ${b.tag} GET ${path}`).body.data as Record<string, unknown>[]
  return {
    org: expectStatus(await b.api.get('/v1/org'), 200, 'GET /v1/org').body,
    me: expectStatus(await b.api.get('/v1/me'), 200, 'GET /v1/me').body,
    users: await data(b.api, '/v1/users'),
    keys: strip(await data(key, '/v1/api-keys'), 'last_used_at'),
    sessions: strip(await data(b.api, '/v1/me/sessions'), 'last_seen_at'),
    appPasswords: strip(await data(b.api, '/v1/me/app-passwords'), 'last_used_at'),
    drafts: await data(b.api, '/v1/drafts'),
    warmups: await data(key, '/v1/alias-warmups'),
    // The failure streak moves as the test delivery to the closed receiver is retried.
    webhooks: strip(strip(await data(key, '/v1/webhooks'), 'consecutive_failures'), 'failing_since'),
    attachment: expectStatus(
      await b.api.withKey(b.mailboxKey).get(`/v1/attachments/${b.attachmentId}`),
      200,
      'GET attachment',
    ).body,
  }
}

for (const dialect of DIALECTS) {
  describe(`tenant isolation (${dialect})`, () => {
    let s: TestServer
    let a: Org
    let b: Org
    let ops: Operation[]

    before(async () => {
      s = await startTestServer(dialect, { env: { POSTERN_AUTH_SIGNUP: 'open' } })
      a = await createOrg(s, 'a', 'setup')
      b = await createOrg(s, 'b', 'signup')
      ops = await fetchOperations(s.url)
    })
    after(() => s.close())

    it("answers 404 to every route given another org's ids, and changes nothing of theirs", async (t) => {
      const was = await snapshotOf(b)
      const templated = ops.filter((op) => op.params.length > 0)
      assert.ok(templated.length > 0, 'no templated routes found')

      const missing = [...new Set(templated.filter((op) => !(op.path in TARGETS)).map((op) => op.path))]
      assert.deepEqual(
        missing,
        [],
        `templated routes missing from TARGETS in ${import.meta.filename}; add them to the table: ${missing.join(', ')}`,
      )
      const stale = Object.keys(TARGETS).filter((path) => !templated.some((op) => op.path === path))
      assert.deepEqual(
        stale,
        [],
        `TARGETS lists paths the API no longer has; remove them: ${stale.join(', ')}`,
      )

      const failures: string[] = []
      let calls = 0
      for (const op of templated) {
        const target = TARGETS[op.path] as Target
        if ('global' in target) {
          t.diagnostic(`skipped ${op.method} ${op.path}: ${target.global}`)
          continue
        }
        const unknown = op.params.filter((p) => !(p in target.params))
        if (unknown.length > 0) {
          failures.push(`${op.path}: TARGETS gives no value for {${unknown.join('}, {')}}`)
          continue
        }
        const values = Object.fromEntries(Object.entries(target.params).map(([k, f]) => [k, f(b)]))
        const path = fillPath(op.path, values)
        const body = target.bodies && op.method in target.bodies ? target.bodies[op.method] : op.body
        for (const [who, api] of callersFor(a, op.scope)) {
          calls++
          const res: ApiResponse = await api.req(op.method, path, body)
          const ok =
            res.status === 404 &&
            /^application\/problem\+json/.test(res.headers.get('content-type') ?? '') &&
            res.body?.status === 404
          if (!ok) failures.push(`${op.method} ${path} as ${who}: ${res.status} ${res.text}`)
        }
      }
      assert.deepEqual(
        failures,
        [],
        `cross-org requests that did not answer a 404 problem:\n${failures.join('\n')}`,
      )
      assert.ok(calls > 0)

      // B is intact: its key and session still work, its invited member is still there as it was.
      const now = await snapshotOf(b)
      assert.deepEqual(now, was, "org B's objects changed")
      const invited = now.users.find((u) => u.id === b.invitedUserId)
      assert.ok(invited, "org B's invited user is gone")
      assert.equal(invited.role, 'member')
      assert.equal(invited.disabled, false)
      assert.ok(now.keys.some((k) => k.id === b.adminKeyId && k.revoked_at === null))
      assert.ok(now.sessions.some((x) => x.id === b.sessionId))
      assert.ok(now.appPasswords.some((x) => x.id === b.appPasswordId))
    })

    it("refuses another org's ids in request bodies", async () => {
      for (const ref of BODY_REFERENCES) {
        const op = ops.find((o) => o.method === ref.method && o.path === ref.path)
        assert.ok(op, `${ref.method} ${ref.path} is not in the OpenAPI document`)
        for (const [who, api] of callersFor(a, op.scope)) {
          const res = await api.req(ref.method, ref.path, ref.body(b, a))
          assertProblem(res, 404, ref.code, `${ref.method} ${ref.path} with org B's id as ${who}`)
        }
      }
      const keys = expectStatus(await b.api.withKey(b.adminKey).get('/v1/api-keys'), 200, 'B lists keys').body
      assert.ok(!keys.data.some((k: { name: string }) => k.name === 'stolen'))
    })

    it("keeps deliverability analytics to the caller's org and refuses another org's filters", async () => {
      for (const path of ANALYTICS_ROUTES) {
        const op = ops.find((o) => o.method === 'GET' && o.path === path)
        assert.ok(op, `GET ${path} is not in the OpenAPI document`)
        for (const ref of QUERY_REFERENCES)
          for (const [who, api] of callersFor(a, op.scope))
            assertProblem(await api.get(`${path}?${ref.query(b)}`), 404, ref.code, `GET ${path} as ${who}`)
      }
      // B's mail has outcomes (written as the queue writes them); only B's analytics show them.
      const summaryPath = ANALYTICS_ROUTES[0] as string
      const countsOf = async (api: Api, who: string) =>
        expectStatus(await api.get(summaryPath), 200, `summary as ${who}`).body.counts as Record<
          string,
          number
        >
      const bWas = await countsOf(b.api, 'B')
      const aWas = await countsOf(a.api, 'A')
      const db = s.postern.store.db
      for (const type of ['email.sent', 'email.delivered', 'email.bounced'] as const)
        await writeEvent(db, Date.now(), {
          org_id: b.orgId,
          type,
          actor: 'queue',
          ip: null,
          subject_id: b.emailId,
          payload: {
            email_id: b.emailId,
            recipient: `reader@${b.tag}-partner.example`,
            code: 550,
            hard: true,
          },
        })
      const recent = '/v1/analytics/deliverability/recent'
      const mine = expectStatus(await b.api.get(recent), 200, 'B lists its outcomes')
      assert.ok(mine.text.includes(b.emailId), "B's own outcomes list its email")
      const bNow = await countsOf(b.api, 'B')
      assert.equal(bNow.delivered, (bWas.delivered as number) + 1)
      assert.equal(bNow.bounced_hard, (bWas.bounced_hard as number) + 1)
      for (const [who, api] of callersFor(a, 'read')) {
        const theirs = expectStatus(await api.get(recent), 200, `A lists outcomes as ${who}`)
        assert.ok(!theirs.text.includes(b.emailId), `A's outcomes show B's email as ${who}`)
        assert.deepEqual(await countsOf(api, who), aWas, `A's summary moved with B's events as ${who}`)
        const report = expectStatus(await api.get(ANALYTICS_ROUTES[3] as string), 200, 'A report')
        assert.ok(!report.text.includes(`${b.tag}-partner.example`), `A's report names B's recipient domain`)
      }
    })

    it('finds no warm-up ramp of another org by its token either', async () => {
      for (const [who, api] of callersFor(a, 'admin'))
        for (const [method, body] of [
          ['GET', undefined],
          ['PATCH', { restart: true }],
          ['DELETE', undefined],
        ] as const) {
          const res = await api.req(method, `/v1/alias-warmups/${b.warmupToken}`, body)
          assertProblem(res, 404, 'WARMUP_NOT_FOUND', `${method} B's ramp by token as ${who}`)
        }
      const own = await b.api.withKey(b.adminKey).get(`/v1/alias-warmups/${b.warmupToken}`)
      expectStatus(own, 200, 'B reads its own ramp by token')
      assert.equal(own.body.id, b.warmupId)
    })

    it("shows none of another org's ids or addresses in any parameterless GET", async () => {
      const gets = ops.filter((op) => op.method === 'GET' && op.params.length === 0)
      assert.ok(gets.length > 0)
      const read = async (o: Org) => {
        const seen: { where: string; text: string }[] = []
        for (const op of gets)
          for (const [who, api] of callersFor(o, op.scope)) {
            const res = await api.get(op.path)
            assert.ok(res.status < 500, `GET ${op.path} as ${who}: ${res.status} ${res.text}`)
            seen.push({ where: `GET ${op.path} as ${who}`, text: res.text })
          }
        return seen
      }

      // The scan looks for values that do show up: B's own GETs mention them.
      const markers = markersOf(b)
      const ownText = (await read(b)).map((x) => x.text).join('\n')
      for (const label of VISIBLE_TO_B)
        assert.ok(ownText.includes(markers[label] as string), `org B's own GETs never show its ${label}`)

      const leaks: string[] = []
      for (const { where, text } of await read(a))
        for (const [label, value] of Object.entries(markers))
          if (text.includes(value)) leaks.push(`${where} shows org B's ${label} (${value})`)
      assert.deepEqual(leaks, [], leaks.join('\n'))
    })

    it('writes only events of the documented vocabulary over all of that', async () => {
      const rows = await s.postern.store.db.selectFrom('events').select('type').distinct().execute()
      assert.ok(rows.length > 10, `only ${rows.length} event types written`)
      const unknown = rows.map((r) => r.type).filter((t) => !isEventType(t))
      assert.deepEqual(unknown, [], 'event types missing from src/services/events/types.ts')
    })
  })
}
