import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { after, before, describe, test } from 'node:test'
import {
  DnsError,
  type DnsErrorCode,
  fromReverseName,
  isNoRecords,
  isTemporaryDnsCode,
  reverseName,
  toMailauthResolver,
} from '../../src/dns/resolver.ts'
import { createStaticResolver } from '../../src/dns/static-zone.ts'
import { createResolver, parseServer } from '../../src/dns/system-resolver.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'

const dkimKey = `v=DKIM1; k=rsa; p=${'A'.repeat(392)}`
const longSpf = `v=spf1 ${Array.from({ length: 100 }, (_, i) => `ip4:192.0.2.${i}`).join(' ')} -all`

const zone = {
  'example.com': {
    A: ['127.0.0.1', '127.0.0.2'],
    AAAA: ['::1'],
    MX: [
      { exchange: 'mx1.example.com', priority: 10 },
      { exchange: 'mx2.example.com', priority: 20 },
    ],
    TXT: [['v=spf1 -all'], ['part one ', 'part two']],
  },
  'sel._domainkey.example.com': { TXT: [dkimKey] },
  'spf.example.com': { TXT: [longSpf] },
  'www.example.com': { CNAME: ['example.com'] },
  'mx1.example.com': { A: ['127.0.0.10'] },
  '127.0.0.10': { PTR: ['mx1.example.com'] },
  '2001:db8::25': { PTR: ['mx6.example.com'] },
  'xn--bcher-kva.example': { A: ['127.0.0.3'] },
}

async function rejectsWith(promise: Promise<unknown>, code: DnsErrorCode, temporary: boolean): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof DnsError, `expected DnsError, got ${String(err)}`)
    assert.equal(err.code, code)
    assert.equal(err.temporary, temporary)
    return true
  })
}

describe('system resolver against the loopback DNS server', () => {
  let server: DnsServer
  let resolver: ReturnType<typeof createResolver>

  before(async () => {
    server = await startDnsServer(zone)
    resolver = createResolver({ servers: server.servers, timeoutMs: 1000 })
  })
  after(() => server.close())

  test('answers MX, A, AAAA', async () => {
    const mx = await resolver.resolveMx('example.com')
    assert.deepEqual(
      mx.sort((a, b) => a.priority - b.priority),
      [
        { exchange: 'mx1.example.com', priority: 10 },
        { exchange: 'mx2.example.com', priority: 20 },
      ],
    )
    assert.deepEqual((await resolver.resolve4('example.com')).sort(), ['127.0.0.1', '127.0.0.2'])
    assert.deepEqual(await resolver.resolve6('example.com'), ['::1'])
    assert.deepEqual(await resolver.resolve4('EXAMPLE.com.'), ['127.0.0.1', '127.0.0.2'])
  })

  test('answers TXT records with their character-strings', async () => {
    const txt = await resolver.resolveTxt('example.com')
    assert.deepEqual(
      txt.sort((a, b) => a.length - b.length),
      [['v=spf1 -all'], ['part one ', 'part two']],
    )
    const dkim = await resolver.resolveTxt('sel._domainkey.example.com')
    assert.equal(dkim.length, 1)
    assert.deepEqual(
      dkim[0]?.map((s) => s.length),
      [255, dkimKey.length - 255],
    )
    assert.equal(dkim[0]?.join(''), dkimKey)
  })

  test('a TXT answer too big for a datagram comes over TCP', async () => {
    const before = server.queries.length
    const txt = await resolver.resolveTxt('spf.example.com')
    assert.equal(txt[0]?.join(''), longSpf)
    assert.ok(longSpf.length > 1232)
    // Once over UDP (truncated), once over TCP.
    assert.deepEqual(server.queries.slice(before), [
      { name: 'spf.example.com', type: 'TXT' },
      { name: 'spf.example.com', type: 'TXT' },
    ])
  })

  test('answers CNAME and follows it for other types', async () => {
    assert.deepEqual(await resolver.resolveCname('www.example.com'), ['example.com'])
    assert.deepEqual((await resolver.resolve4('www.example.com')).sort(), ['127.0.0.1', '127.0.0.2'])
  })

  test('reverse lookups take an IP (v4 and v6) and ask DNS, not /etc/hosts', async () => {
    assert.deepEqual(await resolver.resolvePtr('127.0.0.10'), ['mx1.example.com'])
    assert.deepEqual(await resolver.resolvePtr('2001:db8::25'), ['mx6.example.com'])
    assert.deepEqual(server.queries.at(-1), {
      name: reverseName('2001:db8::25'),
      type: 'PTR',
    })
    // 127.0.0.1 is in /etc/hosts but not in the zone.
    await rejectsWith(resolver.resolvePtr('127.0.0.1'), 'NOTFOUND', false)
    await rejectsWith(resolver.resolvePtr('not-an-ip'), 'BADNAME', false)
  })

  test('converts non-ASCII names to A-labels', async () => {
    assert.deepEqual(await resolver.resolve4('bücher.example'), ['127.0.0.3'])
    assert.deepEqual(server.queries.at(-1), { name: 'xn--bcher-kva.example', type: 'A' })
  })

  test('NXDOMAIN is NOTFOUND and a missing type is NODATA, both permanent', async () => {
    await rejectsWith(resolver.resolveMx('nowhere.example.com'), 'NOTFOUND', false)
    await rejectsWith(resolver.resolveTxt('mx1.example.com'), 'NODATA', false)
    await rejectsWith(resolver.resolve6('mx1.example.com'), 'NODATA', false)
    const err = await resolver.resolve4('nowhere.example.com').catch((e: unknown) => e)
    assert.ok(isNoRecords(err))
    assert.ok(err instanceof DnsError)
    assert.equal(err.hostname, 'nowhere.example.com')
    assert.equal(err.rrtype, 'A')
  })

  test('the zone can change mid-test', async () => {
    await rejectsWith(resolver.resolveTxt('_dmarc.example.com'), 'NOTFOUND', false)
    server.set('_dmarc.example.com', 'TXT', [['v=DMARC1; p=reject']])
    assert.deepEqual(await resolver.resolveTxt('_dmarc.example.com'), [['v=DMARC1; p=reject']])
    server.set('_dmarc.example.com', 'TXT', undefined)
    await rejectsWith(resolver.resolveTxt('_dmarc.example.com'), 'NODATA', false)
  })

  test('SERVFAIL and REFUSED are temporary', async () => {
    server.fail('broken.example.com', 'SERVFAIL')
    server.fail('refused.example.com', 'REFUSED')
    await rejectsWith(resolver.resolveTxt('broken.example.com'), 'SERVFAIL', true)
    await rejectsWith(resolver.resolveTxt('refused.example.com'), 'REFUSED', true)
    server.fail('broken.example.com', undefined)
    await rejectsWith(resolver.resolveTxt('broken.example.com'), 'NOTFOUND', false)
  })

  test('a server that drops the query times out (temporary)', async () => {
    server.fail('slow.example.com', 'TIMEOUT')
    const quick = createResolver({ servers: server.servers, timeoutMs: 100, tries: 1 })
    await rejectsWith(quick.resolve4('slow.example.com'), 'TIMEOUT', true)
  })
})

describe('system resolver failures without a DNS server', () => {
  test('a UDP port where nothing answers times out', async () => {
    const silent = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', () => resolve()))
    try {
      const resolver = createResolver({
        servers: [`127.0.0.1:${silent.address().port}`],
        timeoutMs: 100,
        tries: 1,
      })
      await rejectsWith(resolver.resolveMx('example.com'), 'TIMEOUT', true)
    } finally {
      silent.close()
    }
  })

  test('a closed port is CONNREFUSED (temporary)', async () => {
    const resolver = createResolver({ servers: ['127.0.0.1:9'], timeoutMs: 100, tries: 1 })
    await rejectsWith(resolver.resolve4('example.com'), 'CONNREFUSED', true)
  })

  test('server entries: ip, ip:port, ipv6, [ipv6]:port', () => {
    assert.equal(parseServer('127.0.0.1'), '127.0.0.1')
    assert.equal(parseServer('127.0.0.1:5353'), '127.0.0.1:5353')
    assert.equal(parseServer('::1'), '::1')
    assert.equal(parseServer('[::1]:53'), '[::1]:53')
    assert.equal(parseServer('[::1]'), '::1')
    for (const bad of ['localhost', '127.0.0.1:0', '127.0.0.1:70000', '[::1]:x', '::1:53x', '']) {
      assert.throws(() => parseServer(bad), /dns\.servers/, bad)
    }
  })
})

describe('static zone resolver', () => {
  test('answers from the table and records every call', async () => {
    const r = createStaticResolver(zone)
    assert.deepEqual(await r.resolveMx('Example.COM.'), zone['example.com'].MX)
    assert.deepEqual(await r.resolve4('www.example.com'), ['127.0.0.1', '127.0.0.2'])
    assert.deepEqual(await r.resolvePtr('127.0.0.10'), ['mx1.example.com'])
    assert.deepEqual(await r.resolveTxt('example.com'), [['v=spf1 -all'], ['part one ', 'part two']])
    await rejectsWith(r.resolve6('nowhere.example'), 'NOTFOUND', false)
    await rejectsWith(r.resolveTxt('mx1.example.com'), 'NODATA', false)
    assert.deepEqual(r.calls, [
      { name: 'Example.COM.', type: 'MX' },
      { name: 'www.example.com', type: 'A' },
      { name: '127.0.0.10', type: 'PTR' },
      { name: 'example.com', type: 'TXT' },
      { name: 'nowhere.example', type: 'AAAA' },
      { name: 'mx1.example.com', type: 'TXT' },
    ])
  })

  test('splits long TXT strings as the wire does', async () => {
    const r = createStaticResolver(zone)
    const [record] = await r.resolveTxt('sel._domainkey.example.com')
    assert.deepEqual(
      record?.map((s) => s.length),
      [255, dkimKey.length - 255],
    )
  })

  test('fails a name on request, for one type or all', async () => {
    const r = createStaticResolver(zone, { fail: [{ name: 'example.com', type: 'TXT', code: 'TIMEOUT' }] })
    await rejectsWith(r.resolveTxt('example.com'), 'TIMEOUT', true)
    assert.deepEqual(await r.resolve6('example.com'), ['::1'])
    r.fail('mx1.example.com', 'SERVFAIL')
    await rejectsWith(r.resolve4('mx1.example.com'), 'SERVFAIL', true)
    await rejectsWith(r.resolveMx('MX1.example.com'), 'SERVFAIL', true)
    r.unfail('mx1.example.com')
    assert.deepEqual(await r.resolve4('mx1.example.com'), ['127.0.0.10'])
    assert.equal(r.calls.length, 5)
  })

  test('set changes records; results are copies', async () => {
    const r = createStaticResolver({})
    r.set('a.example', 'A', ['127.0.0.5'])
    const first = await r.resolve4('a.example')
    first.push('127.0.0.99')
    assert.deepEqual(await r.resolve4('a.example'), ['127.0.0.5'])
    r.set('a.example', 'A', undefined)
    await rejectsWith(r.resolve4('a.example'), 'NODATA', false)
  })
})

describe('mailauth adapter', () => {
  const r = createStaticResolver(zone, { fail: [{ name: 'slow.example.com', code: 'TIMEOUT' }] })
  const resolve = toMailauthResolver(r)

  test('dispatches by record type with dns.promises.resolve result shapes', async () => {
    assert.deepEqual(await resolve('example.com', 'TXT'), [['v=spf1 -all'], ['part one ', 'part two']])
    assert.deepEqual(await resolve('example.com', 'MX'), zone['example.com'].MX)
    assert.deepEqual(await resolve('example.com', 'AAAA'), ['::1'])
    assert.deepEqual(await resolve('mx1.example.com', 'a'), ['127.0.0.10'])
    assert.deepEqual(await resolve('www.example.com', 'CNAME'), ['example.com'])
    assert.deepEqual(await resolve('10.0.0.127.in-addr.arpa', 'PTR'), ['mx1.example.com'])
    assert.deepEqual(await resolve('127.0.0.10', 'PTR'), ['mx1.example.com'])
  })

  test("errors carry Node's codes, which mailauth branches on", async () => {
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => 'resolved',
        (e: { code?: string; cause?: unknown }) => {
          return e.code
        },
      )
    assert.equal(await codeOf(resolve('nowhere.example', 'TXT')), 'ENOTFOUND')
    assert.equal(await codeOf(resolve('mx1.example.com', 'TXT')), 'ENODATA')
    assert.equal(await codeOf(resolve('slow.example.com', 'TXT')), 'ETIMEOUT')
    assert.equal(await codeOf(resolve('example.com', 'NS')), 'ENOTIMP')
    const err = await resolve('nowhere.example', 'A').catch((e: { cause?: unknown }) => e)
    assert.ok((err as { cause?: unknown }).cause instanceof DnsError)
  })
})

describe('reverse names and error kinds', () => {
  const cases: [string, string][] = [
    ['192.0.2.1', '1.2.0.192.in-addr.arpa'],
    ['127.0.0.10', '10.0.0.127.in-addr.arpa'],
    ['2001:db8::1', `1.0.0.0.${'0.'.repeat(20)}8.b.d.0.1.0.0.2.ip6.arpa`],
    ['::1', `1.${'0.'.repeat(31)}ip6.arpa`],
  ]
  for (const [ip, name] of cases) {
    test(`${ip} <-> ${name}`, () => {
      assert.equal(reverseName(ip), name)
      const back = fromReverseName(name)
      assert.ok(back)
      assert.equal(reverseName(back), name)
    })
  }

  test('reverse name of a non-IP is BADNAME; non-reverse names give null', () => {
    assert.throws(
      () => reverseName('example.com'),
      (e: unknown) => e instanceof DnsError && e.code === 'BADNAME',
    )
    assert.equal(fromReverseName('example.com'), null)
    assert.equal(fromReverseName('1.2.3.in-addr.arpa'), null)
  })

  test('only NOTFOUND, NODATA and BADNAME are permanent', () => {
    const permanent: DnsErrorCode[] = ['NOTFOUND', 'NODATA', 'BADNAME']
    const temporary: DnsErrorCode[] = [
      'TIMEOUT',
      'SERVFAIL',
      'REFUSED',
      'CONNREFUSED',
      'BADRESP',
      'FORMERR',
      'NOTIMP',
      'CANCELLED',
      'OTHER',
    ]
    for (const c of permanent) assert.equal(isTemporaryDnsCode(c), false, c)
    for (const c of temporary) assert.equal(isTemporaryDnsCode(c), true, c)
  })
})
