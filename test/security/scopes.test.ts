// Authentication and scopes, generic over /v1/openapi.json: every secured operation refuses
// missing, unknown and garbage credentials with 401; admin and owner routes refuse send and
// read keys, members, and (owner routes) admins with 403 MISSING_SCOPE; user routes refuse
// every key. Cookie sessions need X-Requested-With on writes, API keys do not. No response
// carries CORS headers, whatever Origin the request names.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Api, type ApiResponse } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import {
  assertProblem,
  createOrg,
  expectStatus,
  fetchOperations,
  fillPath,
  inviteAndClaim,
  type Operation,
  type Org,
} from './orgs.ts'

const EVIL_ORIGIN = 'http://evil.example'
const MADE_UP_KEY = 'pst_xxxxxxxxxxxxxxxxxxxxxxx'
/** Path parameters for routes that must refuse before looking anything up. */
const SOME_ID = 'usr_00000000000000000000000000'

const isWrite = (method: string) => method !== 'GET' && method !== 'HEAD'

function assertNoCors(res: { headers: Headers }, what: string): void {
  for (const h of ['access-control-allow-origin', 'access-control-allow-credentials'])
    assert.equal(res.headers.get(h), null, `${what} answered with ${h}: ${res.headers.get(h)}`)
}

/** A request as `api` naming a foreign Origin, checked for CORS headers. */
async function call(
  api: Api,
  op: Operation,
  headers: Record<string, string> = {},
  path = fillPath(op.path, Object.fromEntries(op.params.map((p) => [p, SOME_ID]))),
): Promise<ApiResponse> {
  const res = await api.req(op.method, path, op.body, { origin: EVIL_ORIGIN, ...headers })
  assertNoCors(res, `${op.method} ${path}`)
  return res
}

const label = (op: Operation) => `${op.method} ${op.path} (scope ${op.scope})`

for (const dialect of DIALECTS) {
  describe(`scopes and authentication (${dialect})`, () => {
    let s: TestServer
    let o: Org
    let ops: Operation[]
    let secured: Operation[]
    let readKey: string
    let member: Api
    let admin: Api

    before(async () => {
      s = await startTestServer(dialect)
      o = await createOrg(s, 'a', 'setup')
      readKey = expectStatus(
        await o.api.post('/v1/api-keys', { name: 'reader', scope: 'read' }),
        201,
        'read key',
      ).body.key
      member = (await inviteAndClaim(s, o.api, 'member@a.example', 'member')).api
      admin = (await inviteAndClaim(s, o.api, 'admin@a.example', 'admin')).api
      ops = await fetchOperations(s.url)
      secured = ops.filter((op) => op.secured)
      assert.ok(secured.length > 0, 'no secured operations in the OpenAPI document')
      for (const op of ops)
        if (
          op.path.startsWith('/v1/') &&
          !op.path.startsWith('/v1/auth/') &&
          !op.path.startsWith('/v1/setup')
        )
          assert.ok(
            op.secured || ['/v1/health', '/v1/config'].includes(op.path),
            `${op.method} ${op.path} is public; if that is meant, list it here`,
          )
    })
    after(() => s.close())

    const byScope = (...scopes: string[]) => secured.filter((op) => scopes.includes(op.scope))

    it('answers 401 to every secured operation without credentials', async () => {
      const anon = new Api(s.url)
      for (const op of secured) {
        const res = await call(anon, op)
        assertProblem(res, 401, 'AUTH_REQUIRED', `${label(op)} without credentials`)
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/, `${label(op)}: WWW-Authenticate`)
      }
    })

    it('answers 401 before reading the body, even when the body is invalid', async () => {
      const anon = new Api(s.url)
      const withBody = secured.filter((op) => op.body !== undefined)
      assert.ok(withBody.length > 0)
      for (const op of withBody) {
        const path = fillPath(op.path, Object.fromEntries(op.params.map((p) => [p, SOME_ID])))
        const res = await anon.req(op.method, path, { not_a_field: 1 })
        assertProblem(res, 401, 'AUTH_REQUIRED', `${label(op)} without credentials and with an invalid body`)
      }
    })

    it('answers 401 INVALID_API_KEY to a made-up key, as Bearer or X-API-Key', async () => {
      const bearer = new Api(s.url).withKey(MADE_UP_KEY)
      const header = new Api(s.url, { headers: { 'x-api-key': MADE_UP_KEY } })
      for (const op of secured)
        for (const api of [bearer, header])
          assertProblem(await call(api, op), 401, 'INVALID_API_KEY', `${label(op)} with a made-up key`)
    })

    it('answers 401 SESSION_EXPIRED to a garbage or forged session cookie', async () => {
      const claims = Buffer.from(JSON.stringify({ sub: 'usr_x', org: o.orgId, sid: 'x' })).toString(
        'base64url',
      )
      const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${claims}.`
      for (const cookie of ['postern_session=garbage', `postern_session=${unsigned}`]) {
        const api = new Api(s.url)
        api.cookie = cookie
        for (const op of secured)
          assertProblem(await call(api, op), 401, 'SESSION_EXPIRED', `${label(op)} with cookie ${cookie}`)
      }
    })

    it('refuses admin and owner operations to a send key, naming the scope', async () => {
      const send = o.api.withKey(o.sendKey)
      const ops = byScope('admin', 'owner')
      assert.ok(ops.length > 0)
      for (const op of ops) {
        const res = await call(send, op)
        assertProblem(res, 403, 'MISSING_SCOPE', `${label(op)} with a send key`)
        const needs = op.scope === 'owner' ? /owner|signed-in person \(a session\)/ : /\badmin\b/
        assert.match(String(res.body.detail), needs, `${label(op)}: detail names what is needed`)
      }
    })

    it('names the owner scope when a key calls an owner route', async () => {
      for (const op of byScope('owner')) {
        const res = await call(o.api.withKey(o.sendKey), op)
        assertProblem(res, 403, 'MISSING_SCOPE', `${label(op)} with a send key`)
        assert.match(String(res.body.detail), /\bowner\b/, `${label(op)}: detail names the owner scope`)
      }
    })

    it('refuses admin and owner operations to a read key', async () => {
      const read = o.api.withKey(readKey)
      expectStatus(await read.get('/v1/org'), 200, 'the read key works where read is enough')
      for (const op of byScope('admin', 'owner')) {
        const res = await call(read, op)
        assertProblem(res, 403, 'MISSING_SCOPE', `${label(op)} with a read key`)
      }
    })

    it('refuses user operations to every kind of key, asking for a session', async () => {
      const ops = byScope('user')
      assert.ok(ops.length > 0)
      for (const key of [o.adminKey, o.sendKey, readKey])
        for (const op of ops) {
          const res = await call(o.api.withKey(key), op)
          assertProblem(res, 403, 'MISSING_SCOPE', `${label(op)} with a key`)
          assert.match(String(res.body.detail), /session/, `${label(op)}: detail mentions a session`)
        }
    })

    it('refuses admin and owner operations to a member', async () => {
      expectStatus(await member.get('/v1/me'), 200, 'the member is signed in')
      for (const op of byScope('admin', 'owner')) {
        const res = await call(member, op)
        assertProblem(res, 403, 'MISSING_SCOPE', `${label(op)} as a member`)
        assert.match(
          String(res.body.detail),
          op.scope === 'owner' ? /owner/ : /admin/,
          `${label(op)}: detail`,
        )
      }
    })

    it('refuses owner operations, such as deleting the org, to an admin', async () => {
      expectStatus(await admin.get('/v1/users'), 200, 'the admin can use admin routes')
      const ops = byScope('owner')
      assert.ok(
        ops.some((op) => op.method === 'DELETE' && op.path === '/v1/org'),
        'DELETE /v1/org needs scope owner',
      )
      for (const op of ops) {
        assertProblem(await call(admin, op), 403, 'MISSING_SCOPE', `${label(op)} as an admin`)
        if (op.path === '/v1/org' && op.method === 'DELETE') {
          const hard = await call(admin, op, {}, '/v1/org?hard=true')
          assertProblem(hard, 403, 'MISSING_SCOPE', 'DELETE /v1/org?hard=true as an admin')
        }
      }
      const org = expectStatus(await o.api.get('/v1/org'), 200, 'the org is still there').body
      assert.equal(org.deleted_at, null)
    })

    it('needs X-Requested-With on every state-changing request made with a session cookie', async () => {
      const writes = secured.filter((op) => isWrite(op.method))
      assert.ok(writes.length > 0)
      // The check comes before the scope check, so a member meets it on every route.
      for (const who of [member, admin]) {
        const bare = new Api(s.url, { csrfHeader: false })
        bare.cookie = who.cookie
        for (const op of writes) {
          assertProblem(
            await call(bare, op),
            403,
            'CSRF_HEADER_MISSING',
            `${label(op)} without X-Requested-With`,
          )
          assertProblem(
            await call(bare, op, { 'x-requested-with': ' ' }),
            403,
            'CSRF_HEADER_MISSING',
            `${label(op)} with a blank X-Requested-With`,
          )
        }
      }

      // The owner's rename is refused without the header and nothing changes ...
      const owner = new Api(s.url, { csrfHeader: false })
      owner.cookie = o.api.cookie
      const name = expectStatus(await o.api.get('/v1/org'), 200, 'GET /v1/org').body.name
      const rename = secured.find((op) => op.method === 'PATCH' && op.path === '/v1/org')
      assert.ok(rename, 'PATCH /v1/org is in the OpenAPI document')
      const refused = await owner.req(
        'PATCH',
        '/v1/org',
        { name: 'Renamed by CSRF' },
        { origin: EVIL_ORIGIN },
      )
      assertNoCors(refused, 'PATCH /v1/org')
      assertProblem(refused, 403, 'CSRF_HEADER_MISSING', 'PATCH /v1/org by cookie without X-Requested-With')
      assert.equal(expectStatus(await o.api.get('/v1/org'), 200, 'GET /v1/org').body.name, name)

      // ... while an API key needs no such header, as Bearer or X-API-Key.
      const bearer = new Api(s.url, { csrfHeader: false, key: o.adminKey })
      const xApiKey = new Api(s.url, { csrfHeader: false, headers: { 'x-api-key': o.adminKey } })
      for (const [i, api] of [bearer, xApiKey].entries()) {
        const res = await api.req(
          'PATCH',
          '/v1/org',
          { name: `Renamed by key ${i}` },
          { origin: EVIL_ORIGIN },
        )
        assertNoCors(res, 'PATCH /v1/org')
        expectStatus(res, 200, 'PATCH /v1/org with an API key and no X-Requested-With')
        assert.equal(res.body.name, `Renamed by key ${i}`)
      }
      expectStatus(await o.api.patch('/v1/org', { name }), 200, 'rename back')
    })

    it('takes admin power from the keys of an admin demoted to member', async () => {
      const demoted = await inviteAndClaim(s, o.api, 'demoted@a.example', 'admin')
      const key = expectStatus(
        await demoted.api.post('/v1/api-keys', { name: 'before demotion', scope: 'admin' }),
        201,
        'the admin creates an admin key',
      ).body.key
      expectStatus(await o.api.patch(`/v1/users/${demoted.userId}`, { role: 'member' }), 200, 'demote')
      assertProblem(await demoted.api.get('/v1/users'), 403, 'MISSING_SCOPE', 'the demoted session')
      const res = await o.api.withKey(key).patch(`/v1/users/${demoted.userId}`, { role: 'admin' })
      assert.ok(
        res.status === 401 || res.status === 403,
        `the demoted admin's key promoted its creator back: ${res.status} ${res.text}`,
      )
    })

    it('never sends CORS headers, not even to a preflight from another origin', async () => {
      const paths = [...new Set([...ops.map((op) => op.path), '/v1/openapi.json', '/docs', '/health'])]
      for (const template of paths) {
        const path = fillPath(
          template,
          Object.fromEntries([...template.matchAll(/\{(\w+)\}/g)].map((m) => [m[1], SOME_ID])),
        )
        for (const method of ['POST', 'PATCH', 'DELETE']) {
          const pre = await fetch(`${s.url}${path}`, {
            method: 'OPTIONS',
            headers: {
              origin: EVIL_ORIGIN,
              'access-control-request-method': method,
              'access-control-request-headers': 'content-type, x-requested-with, authorization',
            },
          })
          await pre.arrayBuffer()
          assertNoCors(pre, `OPTIONS ${path} (preflight for ${method})`)
        }
        for (const api of [new Api(s.url), o.api, o.api.withKey(o.adminKey)]) {
          const res = await api.req('GET', path, undefined, { origin: EVIL_ORIGIN })
          assertNoCors(res, `GET ${path}`)
        }
      }
    })
  })
}
