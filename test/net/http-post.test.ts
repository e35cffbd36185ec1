// The HTTP(S) POST client webhooks use: only addresses the connect guard allows are reached
// (a guard that lists 127.0.0.1 alone refuses [::1], 10.x, 169.254.169.254 and a name resolving
// to another loopback address, before any packet), redirects are returned, never followed, the
// body read is capped, the whole exchange is time-limited, and HTTPS verifies the certificate.

import assert from 'node:assert/strict'
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createStaticResolver } from '../../src/dns/static-zone.ts'
import { createConnectGuard } from '../../src/net/connect-guard.ts'
import { createHttpPost } from '../../src/net/http-post.ts'
import { HttpsGetError } from '../../src/net/https-get.ts'
import { createTestCa, type TestCa } from '../helpers/test-ca.ts'

const listen = (server: Server, host = '127.0.0.1') =>
  new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port))
  })

describe('http-post through the connect guard', () => {
  const hits: string[] = []
  const handler: RequestListener = (req, res) => {
    hits.push(req.url ?? '')
    if (req.url === '/redirect') {
      res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' })
      return res.end()
    }
    if (req.url === '/big') {
      res.writeHead(200)
      return res.end('y'.repeat(100_000))
    }
    if (req.url === '/hang') return // never answers
    let body = ''
    req.on('data', (c) => {
      body += c
    })
    req.on('end', () => {
      res.writeHead(201, { 'content-type': 'text/plain' })
      res.end(`got ${body} ${req.headers['webhook-id']}`)
    })
  }
  const server = createHttpServer(handler)
  let v6: Server | null = createHttpServer(handler)
  let port = 0
  let v6port = 0
  let ca: TestCa
  let tlsPort = 0
  const tlsServer = createHttpsServer()
  const resolver = createStaticResolver({
    'hooks.example.test': { A: ['127.0.0.1'] },
    'other-loopback.example.test': { A: ['127.0.0.2'] },
    'metadata.example.test': { A: ['169.254.169.254'] },
  })
  const guard = createConnectGuard({ allow: ['127.0.0.1/32'] })

  before(async () => {
    port = await listen(server)
    try {
      v6port = await listen(v6 as Server, '::1')
    } catch {
      v6 = null // no IPv6 loopback here: the refusal is still checked, without a listener
      v6port = 9
    }
    ca = await createTestCa()
    const leaf = await ca.issue(['hooks.example.test'])
    tlsServer.setSecureContext({ key: leaf.key, cert: leaf.cert })
    tlsServer.on('request', handler)
    tlsPort = await listen(tlsServer as unknown as Server)
  })
  after(async () => {
    for (const s of [server, v6, tlsServer]) {
      s?.closeAllConnections()
      await new Promise((r) => s?.close(r) ?? r(null))
    }
  })

  const post = createHttpPost({ resolver, connectGuard: guard })
  const req = (url: string, o: { maxBytes?: number; timeoutMs?: number } = {}) =>
    post({
      url: new URL(url),
      headers: { 'webhook-id': 'wdl_1' },
      body: '{"a":1}',
      timeoutMs: o.timeoutMs ?? 5000,
      maxBytes: o.maxBytes ?? 1024,
    })
  const refused = async (url: string) => {
    const before = hits.length
    await assert.rejects(req(url), (err: unknown) => {
      assert.ok(err instanceof HttpsGetError, String(err))
      assert.equal(err.code, 'REFUSED', err.message)
      return true
    })
    assert.equal(hits.length, before, `${url} reached a server`)
  }

  it('posts the body with the given headers to an allowed address, by IP or by name', async () => {
    const r = await req(`http://127.0.0.1:${port}/hook?x=1`)
    assert.equal(r.status, 201)
    assert.equal(r.body.toString(), 'got {"a":1} wdl_1')
    assert.equal(r.truncated, false)
    assert.equal(r.ip, '127.0.0.1')
    const byName = await req(`http://hooks.example.test:${port}/hook`)
    assert.equal(byName.status, 201)
  })

  it('refuses loopback, private and link-local targets the guard does not list', async () => {
    await refused(`http://[::1]:${v6port}/hook`)
    await refused(`http://127.0.0.2:${port}/hook`)
    await refused(`http://other-loopback.example.test:${port}/hook`)
    await refused('http://10.0.0.1/hook')
    await refused('http://169.254.169.254/latest/meta-data/')
    await refused('http://metadata.example.test/latest/meta-data/')
    if (v6) {
      // The IPv6 listener is real: allowing ::1 reaches it, so the refusal above was the guard.
      const allowing = createHttpPost({ resolver, connectGuard: createConnectGuard({ allow: ['::1/128'] }) })
      const r = await allowing({
        url: new URL(`http://[::1]:${v6port}/hook`),
        headers: {},
        body: '{}',
        timeoutMs: 5000,
        maxBytes: 100,
      })
      assert.equal(r.status, 201)
    }
  })

  it('returns a redirect as it is, without following it', async () => {
    const before = hits.length
    const r = await req(`http://127.0.0.1:${port}/redirect`)
    assert.equal(r.status, 302)
    assert.equal(r.location, 'http://127.0.0.1:1/elsewhere')
    assert.equal(hits.length, before + 1)
  })

  it('reads at most maxBytes of the body and gives up after timeoutMs', async () => {
    const r = await req(`http://127.0.0.1:${port}/big`, { maxBytes: 1024 })
    assert.equal(r.status, 200)
    assert.equal(r.body.length, 1024)
    assert.equal(r.truncated, true)
    await assert.rejects(req(`http://127.0.0.1:${port}/hang`, { timeoutMs: 300 }), { code: 'TIMEOUT' })
  })

  it('verifies the certificate over HTTPS and refuses other schemes', async () => {
    const trusting = createHttpPost({ resolver, connectGuard: guard, ca: ca.cert })
    const r = await trusting({
      url: new URL(`https://hooks.example.test:${tlsPort}/hook`),
      headers: {},
      body: '{}',
      timeoutMs: 5000,
      maxBytes: 100,
    })
    assert.equal(r.status, 201)
    // Without the test CA the certificate is not trusted.
    await assert.rejects(req(`https://hooks.example.test:${tlsPort}/hook`), { code: 'TLS' })
    // The certificate names hooks.example.test, not the IP address.
    await assert.rejects(
      trusting({
        url: new URL(`https://127.0.0.1:${tlsPort}/hook`),
        headers: {},
        body: '{}',
        timeoutMs: 5000,
        maxBytes: 100,
      }),
      { code: 'TLS' },
    )
    await assert.rejects(req('ftp://127.0.0.1/x'), { code: 'PROTOCOL' })
  })
})
