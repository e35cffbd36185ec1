import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createCachingResolver } from '../../src/dns/cache.ts'
import {
  DnsError,
  type DnsErrorCode,
  type RecordType,
  type TtlAnswer,
  type TtlResolver,
} from '../../src/dns/resolver.ts'
import { createStaticResolver } from '../../src/dns/static-zone.ts'
import { createResolver } from '../../src/dns/system-resolver.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'

const opts = (now: () => number, over: Partial<Parameters<typeof createCachingResolver>[1]> = {}) => ({
  maxEntries: 100,
  maxTtlMs: 3_600_000,
  negativeTtlMs: 60_000,
  defaultTtlMs: 30_000,
  now,
  ...over,
})

/** A static zone that counts the questions it is asked. */
function countingZone(zone: Parameters<typeof createStaticResolver>[0]) {
  const inner = createStaticResolver(zone)
  const asked: string[] = []
  const counted = Object.fromEntries(
    Object.entries(inner).map(([k, fn]) => [
      k,
      (name: string) => {
        asked.push(`${k} ${name}`)
        return (fn as (n: string) => Promise<unknown>)(name)
      },
    ]),
  ) as unknown as TtlResolver
  return { resolver: counted, asked }
}

async function rejectsWith(p: Promise<unknown>, code: DnsErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof DnsError && err.code === code)
}

describe('caching resolver', () => {
  test('answers without a TTL are kept for the default TTL, per lower-cased name', async () => {
    let t = 0
    const { resolver, asked } = countingZone({ 'example.com': { TXT: [['v=spf1 -all']] } })
    const cache = createCachingResolver(
      resolver,
      opts(() => t),
    )
    assert.deepEqual(await cache.resolveTxt('example.com'), [['v=spf1 -all']])
    assert.deepEqual(await cache.resolveTxt('EXAMPLE.com'), [['v=spf1 -all']])
    t = 29_999
    await cache.resolveTxt('example.com')
    assert.equal(asked.length, 1)
    t = 30_000
    await cache.resolveTxt('example.com')
    assert.equal(asked.length, 2)
  })

  test('reported TTLs are used (the smallest), capped at maxTtlMs; TTL 0 is not kept', async () => {
    let t = 0
    let ttlMs: number | null = 5_000
    let calls = 0
    const inner = createStaticResolver({ 'a.example': { A: ['192.0.2.1'] } }) as TtlResolver
    inner.lookupWithTtl = async (name: string, type: RecordType): Promise<TtlAnswer<unknown>> => {
      calls++
      assert.equal(type, 'A')
      return { records: await inner.resolve4(name), ttlMs }
    }
    const cache = createCachingResolver(
      inner,
      opts(() => t, { maxTtlMs: 10_000 }),
    )
    await cache.resolve4('a.example')
    t = 4_999
    await cache.resolve4('a.example')
    assert.equal(calls, 1)
    t = 5_000
    ttlMs = 999_999
    await cache.resolve4('a.example')
    assert.equal(calls, 2)
    t = 14_999
    await cache.resolve4('a.example')
    assert.equal(calls, 2)
    t = 15_000
    ttlMs = 0
    await cache.resolve4('a.example')
    await cache.resolve4('a.example')
    assert.equal(calls, 4)
  })

  test('NXDOMAIN and NODATA are kept for negativeTtlMs and rethrown with the same code', async () => {
    let t = 0
    const { resolver, asked } = countingZone({ 'example.com': { A: ['192.0.2.1'] } })
    const cache = createCachingResolver(
      resolver,
      opts(() => t),
    )
    await rejectsWith(cache.resolveTxt('nope.example'), 'NOTFOUND')
    await rejectsWith(cache.resolveTxt('nope.example'), 'NOTFOUND')
    await rejectsWith(cache.resolveMx('example.com'), 'NODATA')
    await rejectsWith(cache.resolveMx('Example.COM'), 'NODATA')
    assert.equal(asked.length, 2)
    await assert.rejects(cache.resolveMx('example.com'), (err: unknown) => {
      assert.ok(err instanceof DnsError)
      assert.equal(err.temporary, false)
      assert.equal(err.rrtype, 'MX')
      return true
    })
    t = 60_000
    await rejectsWith(cache.resolveTxt('nope.example'), 'NOTFOUND')
    assert.equal(asked.length, 3)
  })

  test('temporary errors are never kept', async () => {
    let calls = 0
    const inner = createStaticResolver({}) as TtlResolver
    inner.resolveTxt = async (name) => {
      calls++
      throw new DnsError(calls < 3 ? 'TIMEOUT' : 'SERVFAIL', name, 'TXT')
    }
    const cache = createCachingResolver(
      inner,
      opts(() => 0),
    )
    await rejectsWith(cache.resolveTxt('x.example'), 'TIMEOUT')
    await rejectsWith(cache.resolveTxt('x.example'), 'TIMEOUT')
    await rejectsWith(cache.resolveTxt('x.example'), 'SERVFAIL')
    assert.equal(calls, 3)
  })

  test('ten concurrent identical lookups share one upstream query', async () => {
    let calls = 0
    let release: () => void = () => {}
    const gate = new Promise<void>((r) => {
      release = r
    })
    const inner = createStaticResolver({}) as TtlResolver
    inner.resolveMx = async () => {
      calls++
      await gate
      return [{ exchange: 'mx.example', priority: 10 }]
    }
    const cache = createCachingResolver(
      inner,
      opts(() => 0),
    )
    const all = Promise.all(
      Array.from({ length: 10 }, (_, i) => cache.resolveMx(i % 2 ? 'A.example' : 'a.example')),
    )
    release()
    const answers = await all
    assert.equal(calls, 1)
    for (const a of answers) assert.deepEqual(a, [{ exchange: 'mx.example', priority: 10 }])
    answers[0]?.push({ exchange: 'mutated', priority: 1 })
    assert.equal(answers[1]?.length, 1)
  })

  test('concurrent lookups that fail share the failure', async () => {
    let calls = 0
    const inner = createStaticResolver({}) as TtlResolver
    inner.resolve6 = async (name) => {
      calls++
      await new Promise((r) => setImmediate(r))
      throw new DnsError('SERVFAIL', name, 'AAAA')
    }
    const cache = createCachingResolver(
      inner,
      opts(() => 0),
    )
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => cache.resolve6('b.example')))
    assert.equal(calls, 1)
    for (const r of results) assert.equal(r.status, 'rejected')
  })

  test('at most maxEntries are kept, least recently used evicted first', async () => {
    const zone: Parameters<typeof createStaticResolver>[0] = {}
    for (const n of ['a', 'b', 'c', 'd']) zone[`${n}.example`] = { A: ['192.0.2.1'] }
    const { resolver, asked } = countingZone(zone)
    const cache = createCachingResolver(
      resolver,
      opts(() => 0, { maxEntries: 3 }),
    )
    await cache.resolve4('a.example')
    await cache.resolve4('b.example')
    await cache.resolve4('c.example')
    await cache.resolve4('a.example') // a is now the most recent
    await cache.resolve4('d.example') // evicts b
    assert.equal(asked.length, 4)
    await cache.resolve4('a.example')
    await cache.resolve4('c.example')
    await cache.resolve4('d.example')
    assert.equal(asked.length, 4)
    await cache.resolve4('b.example')
    assert.equal(asked.length, 5)
  })

  test('callers get copies: mutating an answer does not change the cache', async () => {
    const cache = createCachingResolver(
      createStaticResolver({
        'example.com': { TXT: [['one', 'two']], MX: [{ exchange: 'mx.example.com', priority: 5 }] },
      }),
      opts(() => 0),
    )
    const txt = await cache.resolveTxt('example.com')
    txt[0]?.push('three')
    txt.push(['x'])
    assert.deepEqual(await cache.resolveTxt('example.com'), [['one', 'two']])
    const mx = await cache.resolveMx('example.com')
    if (mx[0]) mx[0].priority = 99
    assert.deepEqual(await cache.resolveMx('example.com'), [{ exchange: 'mx.example.com', priority: 5 }])
  })

  test('PTR is cached per IP', async () => {
    const { resolver, asked } = countingZone({ '192.0.2.25': { PTR: ['mx.example.com'] } })
    const cache = createCachingResolver(
      resolver,
      opts(() => 0),
    )
    assert.deepEqual(await cache.resolvePtr('192.0.2.25'), ['mx.example.com'])
    assert.deepEqual(await cache.resolvePtr('192.0.2.25'), ['mx.example.com'])
    assert.equal(asked.length, 1)
  })
})

describe('caching resolver over the system resolver and a loopback DNS server', () => {
  let server: DnsServer
  before(async () => {
    server = await startDnsServer({
      'example.com': { A: ['127.0.0.1'], AAAA: ['::1'], TXT: [['v=spf1 -all']] },
    })
  })
  after(() => server.close())

  test('the system resolver reports A/AAAA TTLs, null for TXT', async () => {
    server.ttl = 300
    const system = createResolver({ servers: server.servers, timeoutMs: 2000 })
    assert.deepEqual(await system.lookupWithTtl?.('example.com', 'A'), {
      records: ['127.0.0.1'],
      ttlMs: 300_000,
    })
    assert.deepEqual(await system.lookupWithTtl?.('example.com', 'AAAA'), {
      records: ['::1'],
      ttlMs: 300_000,
    })
    assert.deepEqual(await system.lookupWithTtl?.('example.com', 'TXT'), {
      records: [['v=spf1 -all']],
      ttlMs: null,
    })
  })

  test('A answers live for their TTL; TXT for the default', async () => {
    let t = 0
    server.ttl = 120
    const cache = createCachingResolver(
      createResolver({ servers: server.servers, timeoutMs: 2000 }),
      opts(() => t, { defaultTtlMs: 10_000 }),
    )
    const asked = () => server.queries.filter((q) => q.name === 'example.com').length
    const start = asked()
    await cache.resolve4('example.com')
    await cache.resolveTxt('example.com')
    assert.equal(asked() - start, 2)
    t = 10_000 // TXT expired, A not
    await cache.resolve4('example.com')
    await cache.resolveTxt('example.com')
    assert.equal(asked() - start, 3)
    t = 120_000
    await cache.resolve4('example.com')
    assert.equal(asked() - start, 4)
    server.ttl = 0
  })
})
