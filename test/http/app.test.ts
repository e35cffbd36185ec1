// The HTTP conventions over a listening server and real fetch: problem+json for every error,
// request ids, health, public config, OpenAPI 3.1 validity and the /docs page.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Validator } from '@seriousme/openapi-schema-validator'
import type { FastifyPluginAsync } from 'fastify'
import { ServiceError } from '../../src/services/errors.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'

const failing: FastifyPluginAsync = async (app) => {
  app.get('/v1/test/boom', { config: { auth: 'public' } }, async () => {
    throw new Error('secret internal detail: password=hunter2 at /srv/postern/src/x.ts:12')
  })
  app.get('/v1/test/conflict', { config: { auth: 'public' } }, async () => {
    throw new ServiceError('conflict', 'THING_EXISTS', 'A thing with that name exists; pick another name.')
  })
  app.post(
    '/v1/test/echo',
    {
      config: { auth: 'public' },
      schema: {
        body: {
          type: 'object',
          required: ['name'],
          properties: { name: { type: 'string', minLength: 2 }, age: { type: 'integer' } },
        },
      },
    },
    async (req) => req.body,
  )
}

const isProblem = async (res: Response, status: number, code?: string) => {
  assert.equal(res.status, status)
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/)
  const body = (await res.json()) as Record<string, unknown>
  assert.equal(body.status, status)
  assert.equal(typeof body.title, 'string')
  assert.equal(typeof body.type, 'string')
  assert.equal(body.request_id, res.headers.get('x-request-id'))
  if (code) assert.equal(body.code, code)
  return body
}

for (const dialect of DIALECTS) {
  describe(`HTTP conventions (${dialect})`, () => {
    let s: TestServer
    before(async () => {
      s = await startTestServer(dialect, {
        httpPlugins: [failing],
        env: { POSTERN_HTTP_BODY_LIMIT_BYTES: '4096' },
      })
    })
    after(() => s.close())

    it('GET /v1/health and /health report database, blobs, listeners and TLS', async () => {
      for (const path of ['/v1/health', '/health']) {
        const res = await fetch(`${s.url}${path}`)
        assert.equal(res.status, 200)
        // biome-ignore lint/suspicious/noExplicitAny: a parsed JSON body, probed field by field
        const h = (await res.json()) as Record<string, any>
        assert.equal(h.status, 'ok')
        assert.equal(h.database.status, 'ok')
        assert.equal(h.database.dialect, dialect)
        assert.equal(h.blobs.status, 'ok')
        const http = h.listeners.find((l: { name: string }) => l.name === 'http')
        assert.equal(http.port, Number(new URL(s.url).port))
        assert.equal(h.tls.self_signed, true)
        assert.equal(h.tls.source, 'self-signed')
      }
    })

    it('answers unknown routes with a 404 problem', async () => {
      const body = await isProblem(
        await fetch(`${s.url}/v1/no-such-thing?x=1`, { method: 'DELETE' }),
        404,
        'ROUTE_NOT_FOUND',
      )
      assert.match(String(body.detail), /DELETE \/v1\/no-such-thing/)
    })

    it('answers invalid JSON with a 400 problem', async () => {
      const res = await fetch(`${s.url}/v1/test/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"name": ',
      })
      await isProblem(res, 400, 'INVALID_JSON')
    })

    it('lists the fields of a validation failure', async () => {
      const res = await fetch(`${s.url}/v1/test/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x', age: 'old' }),
      })
      const body = await isProblem(res, 400, 'VALIDATION_FAILED')
      const fields = (body.errors as { field: string }[]).map((e) => e.field).sort()
      assert.deepEqual(fields, ['body.age', 'body.name'])
    })

    it('answers an oversized body with a 413 problem', async () => {
      const res = await fetch(`${s.url}/v1/test/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x'.repeat(10_000) }),
      })
      await isProblem(res, 413, 'BODY_TOO_LARGE')
    })

    it('answers an unsupported media type with a 415 problem', async () => {
      const res = await fetch(`${s.url}/v1/test/echo`, {
        method: 'POST',
        headers: { 'content-type': 'text/csv' },
        body: 'a,b',
      })
      await isProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE')
    })

    it('hides internals of a 500 and names the request id instead', async () => {
      const res = await fetch(`${s.url}/v1/test/boom`)
      const body = await isProblem(res, 500, 'INTERNAL')
      const text = JSON.stringify(body)
      assert.ok(!text.includes('hunter2') && !text.includes('/srv/postern') && !text.includes('stack'), text)
      assert.match(String(body.detail), new RegExp(String(body.request_id)))
    })

    it('maps service errors to their status with a stable code', async () => {
      const body = await isProblem(await fetch(`${s.url}/v1/test/conflict`), 409, 'THING_EXISTS')
      assert.equal(body.detail, 'A thing with that name exists; pick another name.')
      assert.equal(body.type, '/problems/thing-exists')
    })

    it('gives every response a request id and keeps a sane one from the client', async () => {
      const a = await fetch(`${s.url}/v1/health`)
      assert.match(a.headers.get('x-request-id') ?? '', /^req_/)
      const b = await fetch(`${s.url}/v1/health`, { headers: { 'x-request-id': 'trace-123.abc' } })
      assert.equal(b.headers.get('x-request-id'), 'trace-123.abc')
      const c = await fetch(`${s.url}/v1/health`, { headers: { 'x-request-id': 'bad id\twith\u00e9junk' } })
      assert.match(c.headers.get('x-request-id') ?? '', /^req_/)
    })

    it('GET /v1/config gives the public runtime settings and no secrets', async () => {
      const res = await fetch(`${s.url}/v1/config`)
      assert.equal(res.status, 200)
      const text = await res.text()
      const c = JSON.parse(text)
      assert.equal(c.hostname, 'mx.postern.test')
      assert.equal(c.limits.http_body_bytes, 4096)
      assert.ok(c.listeners.some((l: { name: string }) => l.name === 'http'))
      assert.ok(!text.includes(s.dataDir), 'no file paths')
    })

    it('GET /v1/setup/status says setup is needed on a new installation', async () => {
      const res = await fetch(`${s.url}/v1/setup/status`)
      assert.deepEqual(await res.json(), { needs_setup: true })
      assert.match(s.postern.setupToken ?? '', /^pst_setup_/)
      assert.equal(await s.postern.setup.verifyToken(s.postern.setupToken as string), true)
      assert.equal(await s.postern.setup.verifyToken('pst_setup_wrong'), false)
    })

    it('serves an OpenAPI 3.1 document that validates, and a reference page', async () => {
      const res = await fetch(`${s.url}/v1/openapi.json`)
      assert.equal(res.status, 200)
      // biome-ignore lint/suspicious/noExplicitAny: a parsed JSON body, probed field by field
      const doc = (await res.json()) as Record<string, any>
      const validator = new Validator()
      const result = await validator.validate(doc)
      assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2))
      assert.equal(validator.version, '3.1')
      for (const path of ['/v1/health', '/v1/config', '/v1/setup/status'])
        assert.ok(doc.paths[path], `${path} documented`)
      const docs = await fetch(`${s.url}/docs`, { redirect: 'follow' })
      assert.equal(docs.status, 200)
      assert.match(await docs.text(), /swagger-ui/i)
    })
  })
}

describe('HTTPS listener', () => {
  let s: TestServer
  before(async () => {
    s = await startTestServer('sqlite', { env: { POSTERN_HTTPS_ENABLED: 'true' } })
  })
  after(() => s.close())

  it('serves the same API over TLS with the certificate service', async () => {
    const https = s.postern.listeners.find((l) => l.name === 'https')
    assert.ok(https && https.port > 0)
    const { request } = await import('node:https')
    const body = await new Promise<string>((resolve, reject) => {
      request(
        {
          host: '127.0.0.1',
          port: https.port,
          path: '/v1/health',
          rejectUnauthorized: false,
          servername: 'mx.postern.test',
        },
        (res) => {
          let data = ''
          res.on('data', (d) => {
            data += d
          })
          res.on('end', () => resolve(data))
        },
      )
        .on('error', reject)
        .end()
    })
    assert.equal(JSON.parse(body).status, 'ok')
  })

  it('marks the session cookie Secure when the request came over HTTPS', async () => {
    const https = s.postern.listeners.find((l) => l.name === 'https')
    const { request } = await import('node:https')
    const payload = JSON.stringify({
      setup_token: s.postern.setupToken,
      org_name: 'Acme',
      email: 'owner@example.com',
      password: 'correct-horse-battery-9',
    })
    const cookie = await new Promise<string>((resolve, reject) => {
      request(
        {
          host: '127.0.0.1',
          port: https?.port,
          path: '/v1/setup',
          method: 'POST',
          rejectUnauthorized: false,
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          res.resume()
          res.on('end', () => resolve(String(res.headers['set-cookie'] ?? '')))
        },
      )
        .on('error', reject)
        .end(payload)
    })
    assert.match(cookie, /postern_session=.*; HttpOnly; SameSite=Lax; .*Secure/)
    const plain = await fetch(`${s.url}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'owner@example.com', password: 'correct-horse-battery-9' }),
    })
    assert.equal(plain.status, 200)
    assert.doesNotMatch(
      plain.headers.get('set-cookie') ?? '',
      /Secure/,
      'plain HTTP gets no Secure flag in auto mode',
    )
  })
})
