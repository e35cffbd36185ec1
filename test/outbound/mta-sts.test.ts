// MTA-STS policies (src/services/outbound/mta-sts.ts over src/net/https-get.ts) against a real
// HTTPS policy host on 127.0.0.1 with a test CA, the loopback DNS server and a real database:
// TXT discovery, what a fetch refuses (redirects, other statuses and types, oversized bodies,
// untrusted or misnamed certificates, addresses outside the connect guard), and the cache
// shared through the database (no fetch within max_age for the same id, a refetch when the
// TXT id changes or the policy expired, the cached policy kept when a fetch fails).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createResolver } from '../../src/dns/system-resolver.ts'
import { createConnectGuard } from '../../src/net/connect-guard.ts'
import { createHttpsGet, HttpsGetError } from '../../src/net/https-get.ts'
import {
  createMtaSts,
  discoverPolicyId,
  FAILED_RETRY_MS,
  MAX_POLICY_BYTES,
  type MtaStsDeps,
  mxMatches,
} from '../../src/services/outbound/mta-sts.ts'
import { manualClock } from '../../src/time/clock.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import { openTestStore, type TestStore } from '../helpers/store.ts'
import { createTestCa, type TestCa } from '../helpers/test-ca.ts'
import { type PolicyServer, policyText, publish, startPolicyServer } from './policy-server.ts'

const MINUTE = 60_000

describe('MTA-STS TXT discovery', () => {
  let dns: DnsServer
  before(async () => {
    dns = await startDnsServer({})
  })
  after(async () => dns?.close())

  it('reads the id of exactly one v=STSv1 record, and says why otherwise', async () => {
    const resolver = createResolver({ servers: dns.servers, timeoutMs: 500 })
    const cases: [string, string[][] | undefined, string][] = [
      ['one.example', [['v=STSv1; id=20260101T1']], 'id:20260101T1'],
      ['split.example', [['v=STSv1; ', 'id=abc123;']], 'id:abc123'],
      ['other.example', [['v=spf1 -all'], ['v=STSv1;id=xyz']], 'id:xyz'],
      ['none.example', undefined, 'none'],
      ['two.example', [['v=STSv1; id=a'], ['v=STSv1; id=b']], 'none'],
      ['noid.example', [['v=STSv1; foo=bar']], 'none'],
      ['badid.example', [['v=STSv1; id=not-alnum!']], 'none'],
      ['nover.example', [['id=abc']], 'none'],
    ]
    for (const [domain, txt, want] of cases) {
      if (txt) dns.set(`_mta-sts.${domain}`, 'TXT', txt)
      const got = await discoverPolicyId(resolver, domain)
      assert.equal(got.kind === 'id' ? `id:${got.id}` : got.kind, want, `${domain}: ${JSON.stringify(got)}`)
    }
    dns.fail('_mta-sts.broken.example', 'SERVFAIL')
    const broken = await discoverPolicyId(resolver, 'broken.example')
    assert.equal(broken.kind, 'error')
  })
})

describe('MTA-STS mx patterns', () => {
  it('matches exact names and one left-most label of a wildcard (RFC 8461 4.1)', () => {
    const policy = { mode: 'enforce' as const, mx: ['mx.example.com', '*.mail.example.net'] }
    assert.equal(mxMatches(policy, 'mx.example.com'), true)
    assert.equal(mxMatches(policy, 'MX.Example.COM.'), true)
    assert.equal(mxMatches(policy, 'a.mail.example.net'), true)
    assert.equal(mxMatches(policy, 'a.b.mail.example.net'), false)
    assert.equal(mxMatches(policy, 'mail.example.net'), false)
    assert.equal(mxMatches(policy, 'mx2.example.com'), false)
    assert.equal(mxMatches({ mode: 'none', mx: [] }, 'anything.example'), false)
  })
})

for (const dialect of DIALECTS) {
  describe(`MTA-STS policy fetch and cache (${dialect})`, () => {
    let dns: DnsServer
    let ca: TestCa
    let policies: PolicyServer
    let ts: TestStore
    const clock = manualClock(Date.now())
    let deps: MtaStsDeps
    let resolver: ReturnType<typeof createResolver>

    before(async () => {
      dns = await startDnsServer({})
      ca = await createTestCa()
      policies = await startPolicyServer(ca)
      ts = await openTestStore(dialect)
      resolver = createResolver({ servers: dns.servers, timeoutMs: 1000 })
      deps = {
        store: ts.store,
        resolver,
        clock,
        httpsGet: createHttpsGet({
          resolver,
          connectGuard: createConnectGuard({ allow: ['127.0.0.0/8'] }),
          ca: ca.cert,
        }),
        port: policies.port,
        timeoutMs: 5000,
      }
    })
    after(async () => {
      await policies?.close()
      await ts?.close()
      await dns?.close()
    })

    it('fetches a policy once and serves it from the database within max_age', async () => {
      const d = 'cached.example'
      publish(dns, d, 'v1')
      policies.serve(d, {
        body: policyText('enforce', ['mx.cached.example', '*.backup.cached.example'], 3600),
      })
      const sts = createMtaSts(deps)
      const first = await sts.lookup(d)
      assert.equal(first.source, 'fetched')
      assert.deepEqual(first.policy?.mx, ['mx.cached.example', '*.backup.cached.example'])
      assert.equal(first.policy?.mode, 'enforce')
      assert.equal(first.policy?.expiresAt, clock.now() + 3600_000)
      assert.equal(policies.count(d), 1)

      // Another node (a new instance over another connection) reads the shared cache.
      clock.advance(10 * MINUTE)
      const other = createMtaSts({ ...deps, store: await ts.reopen() })
      const second = await other.lookup(d)
      assert.equal(second.source, 'cached')
      assert.equal(second.policy?.id, 'v1')
      assert.equal(policies.count(d), 1, 'no second fetch within max_age')
    })

    it('fetches again when the TXT id changes, and when the cached policy expired', async () => {
      const d = 'changing.example'
      publish(dns, d, 'one')
      policies.serve(d, { body: policyText('testing', ['mx.changing.example'], 600) })
      const sts = createMtaSts(deps)
      assert.equal((await sts.lookup(d)).source, 'fetched')
      assert.equal(policies.count(d), 1)

      publish(dns, d, 'two')
      policies.serve(d, { body: policyText('enforce', ['mx2.changing.example'], 600) })
      clock.advance(2 * MINUTE) // past this process's memo, within max_age
      const changed = await sts.lookup(d)
      assert.equal(changed.source, 'fetched')
      assert.equal(changed.policy?.id, 'two')
      assert.equal(changed.policy?.mode, 'enforce')
      assert.equal(policies.count(d), 2)

      clock.advance(11 * MINUTE) // past max_age (600 s) with the same id
      assert.equal((await sts.lookup(d)).source, 'fetched')
      assert.equal(policies.count(d), 3)
    })

    it('keeps applying the cached policy when the new one cannot be fetched, and says why', async () => {
      const d = 'flaky.example'
      publish(dns, d, 'good')
      policies.serve(d, { body: policyText('enforce', ['mx.flaky.example'], 3600) })
      const sts = createMtaSts(deps)
      assert.equal((await sts.lookup(d)).source, 'fetched')

      publish(dns, d, 'newer')
      policies.serve(d, { status: 500, body: 'oops' })
      clock.advance(2 * MINUTE)
      const kept = await sts.lookup(d)
      assert.equal(kept.source, 'cached')
      assert.equal(kept.policy?.id, 'good')
      assert.match(kept.problem ?? '', /HTTP 500/)

      // The TXT record disappears: the cached policy still applies until it expires (RFC 8461 5.1).
      dns.set(`_mta-sts.${d}`, 'TXT', undefined)
      clock.advance(2 * MINUTE)
      const gone = await sts.lookup(d)
      assert.equal(gone.source, 'cached')
      assert.equal(gone.policy?.mode, 'enforce')
      clock.advance(60 * MINUTE)
      const expired = await sts.lookup(d)
      assert.equal(expired.source, 'none')
      assert.equal(expired.policy, null)
    })

    it('treats a domain whose policy cannot be fetched as having none, and does not ask again at once', async () => {
      const d = 'broken.example'
      publish(dns, d, 'b1')
      policies.serve(d, { status: 404 })
      const sts = createMtaSts(deps)
      const r = await sts.lookup(d)
      assert.equal(r.source, 'unavailable')
      assert.equal(r.policy, null)
      assert.match(r.problem ?? '', /HTTP 404/)
      assert.equal(policies.count(d), 1)
      clock.advance(2 * MINUTE)
      assert.equal((await sts.lookup(d)).source, 'unavailable')
      assert.equal(policies.count(d), 1, 'a failed fetch is not retried within FAILED_RETRY_MS')
      clock.advance(FAILED_RETRY_MS)
      policies.serve(d, { body: policyText('enforce', ['mx.broken.example']) })
      assert.equal((await sts.lookup(d)).source, 'fetched')
      assert.equal(policies.count(d), 2)
    })

    it('refuses what RFC 8461 3.3 does not allow a policy host to send', async () => {
      const good = policyText('enforce', ['mx.example'])
      const cases: [string, Parameters<PolicyServer['serve']>[1], RegExp][] = [
        [
          'redirect',
          { status: 301, headers: { location: 'https://elsewhere.example/' } },
          /redirect.*forbids/,
        ],
        ['notfound', { status: 404 }, /HTTP 404/],
        ['html', { body: good, contentType: 'text/html' }, /not text\/plain/],
        ['notype', { body: good, contentType: null }, /not text\/plain/],
        ['huge', { body: Buffer.alloc(MAX_POLICY_BYTES + 10, 0x61) }, /larger than|bytes; at most/],
        ['garbage', { body: 'hello world\n' }, /not a valid policy/],
        ['nomx', { body: 'version: STSv1\nmode: enforce\nmax_age: 60\n' }, /not a valid policy/],
        [
          'untrusted',
          { body: good, cert: 'untrusted' },
          /TLS with mta-sts\.untrusted\.invalid-sts\.example failed/,
        ],
        [
          'misnamed',
          { body: good, cert: 'wrong-name' },
          /TLS with mta-sts\.misnamed\.invalid-sts\.example failed/,
        ],
      ]
      const sts = createMtaSts(deps)
      for (const [label, answer, want] of cases) {
        const d = `${label}.invalid-sts.example`
        publish(dns, d, 'x1')
        policies.serve(d, answer)
        const r = await sts.lookup(d)
        assert.equal(r.policy, null, `${label}: ${JSON.stringify(r)}`)
        assert.equal(r.source, 'unavailable', label)
        assert.match(r.problem ?? '', want, label)
      }
    })

    it('connects only through the connect guard, to addresses the resolver gave', async () => {
      const d = 'private.example'
      dns.set(`_mta-sts.${d}`, 'TXT', [['v=STSv1; id=p1']])
      dns.set(`mta-sts.${d}`, 'A', ['10.1.2.3'])
      const r = await createMtaSts(deps).lookup(d)
      assert.equal(r.source, 'unavailable')
      assert.match(r.problem ?? '', /10\.1\.2\.3.*refused.*net\.connect_allow/)

      const nohost = 'nohost.example'
      dns.set(`_mta-sts.${nohost}`, 'TXT', [['v=STSv1; id=p1']])
      const n = await createMtaSts(deps).lookup(nohost)
      assert.match(n.problem ?? '', /mta-sts\.nohost\.example has no address/)
    })

    it('gives up on a policy host that does not answer within the time limit', async () => {
      const get = createHttpsGet({
        resolver,
        connectGuard: {
          // A connection that opens and then never says anything (no TLS handshake).
          connect: async () => {
            const { createServer, connect } = await import('node:net')
            const silent = createServer(() => {})
            await new Promise<void>((res) => silent.listen(0, '127.0.0.1', res))
            const port = (silent.address() as { port: number }).port
            const s = connect({ host: '127.0.0.1', port })
            s.on('close', () => silent.close())
            await new Promise((res) => s.once('connect', res))
            return s
          },
        },
      })
      dns.set('mta-sts.silent.example', 'A', ['127.0.0.1'])
      await assert.rejects(
        get({ host: 'mta-sts.silent.example', port: 1, path: '/', timeoutMs: 300, maxBytes: 10 }),
        (err) => err instanceof HttpsGetError && (err.code === 'TIMEOUT' || err.code === 'TLS'),
      )
    })
  })
}
