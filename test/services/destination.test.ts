import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { MxRecord, Resolver } from '../../src/dns/resolver.ts'
import { createStaticResolver, type StaticFailure, type Zone } from '../../src/dns/static-zone.ts'
import { createConnectGuard } from '../../src/net/connect-guard.ts'
import {
  type DestinationResult,
  type DnsStep,
  MAX_TARGETS,
  resolveDestination,
} from '../../src/services/outbound/destination.ts'

// Public documentation ranges (RFC 5737, RFC 3849) stand in for the internet: the guard
// below allows every public address, as production does. Nothing here opens a socket.
const { allows } = createConnectGuard({ allow: [], allowPublic: true })
const localHosts = ['mx.postern.test', 'MAIL.Postern.Test.']
const port = 25

const mx = (exchange: string, priority: number): MxRecord => ({ exchange, priority })

async function destination(
  domain: string,
  zone: Zone,
  fail: StaticFailure[] = [],
  extra: { allows?: (ip: string) => boolean } = {},
): Promise<DestinationResult> {
  return resolveDestination(domain, {
    resolver: createStaticResolver(zone, { fail }),
    allows: extra.allows ?? allows,
    localHosts,
    port,
  })
}

/** The targets as `host ip preference`, for compact expectations. */
function targets(r: DestinationResult): string[] {
  assert.equal(r.kind, 'ok', r.kind === 'ok' ? '' : `${r.kind} ${r.enhanced} ${r.reason}`)
  return r.kind === 'ok' ? r.targets.map((t) => `${t.host} ${t.ip} ${t.preference}`) : []
}

describe('resolveDestination: delivering', () => {
  const cases: { name: string; domain?: string; zone: Zone; fail?: StaticFailure[]; want: string[] }[] = [
    {
      name: 'MX records in preference order, IPv4 before IPv6 for each host',
      zone: {
        'example.com': { MX: [mx('mx2.example.com', 20), mx('mx1.example.com', 10)] },
        'mx1.example.com': { A: ['192.0.2.1', '192.0.2.2'], AAAA: ['2001:db8::1'] },
        'mx2.example.com': { AAAA: ['2001:db8::2'], A: ['198.51.100.2'] },
      },
      want: [
        'mx1.example.com 192.0.2.1 10',
        'mx1.example.com 192.0.2.2 10',
        'mx1.example.com 2001:db8::1 10',
        'mx2.example.com 198.51.100.2 20',
        'mx2.example.com 2001:db8::2 20',
      ],
    },
    {
      name: 'equal preferences keep DNS order',
      zone: {
        'example.com': { MX: [mx('b.example.com', 5), mx('a.example.com', 5), mx('c.example.com', 1)] },
        'a.example.com': { A: ['192.0.2.1'] },
        'b.example.com': { A: ['192.0.2.2'] },
        'c.example.com': { A: ['192.0.2.3'] },
      },
      want: ['c.example.com 192.0.2.3 1', 'b.example.com 192.0.2.2 5', 'a.example.com 192.0.2.1 5'],
    },
    {
      name: 'no MX records (NODATA): the domain is its own MX, preference 0',
      zone: { 'example.com': { A: ['192.0.2.10'], AAAA: ['2001:db8::10'] } },
      want: ['example.com 192.0.2.10 0', 'example.com 2001:db8::10 0'],
    },
    {
      name: 'implicit MX with IPv6 only',
      zone: { 'example.com': { AAAA: ['2001:db8::10'] } },
      want: ['example.com 2001:db8::10 0'],
    },
    {
      name: 'names are folded: upper-case domain, trailing dots and case on exchanges',
      domain: 'EXAMPLE.com.',
      zone: {
        'example.com': { MX: [mx('MX1.Example.COM.', 10)] },
        'mx1.example.com': { A: ['192.0.2.1'] },
      },
      want: ['mx1.example.com 192.0.2.1 10'],
    },
    {
      name: 'an MX host that does not resolve is skipped',
      zone: {
        'example.com': {
          MX: [mx('gone.example.com', 10), mx('nodata.example.com', 15), mx('mx2.example.com', 20)],
        },
        'nodata.example.com': { TXT: ['x'] },
        'mx2.example.com': { A: ['192.0.2.2'] },
      },
      want: ['mx2.example.com 192.0.2.2 20'],
    },
    {
      name: 'an MX host that fails temporarily is skipped when another resolves',
      zone: {
        'example.com': { MX: [mx('mx1.example.com', 10), mx('mx2.example.com', 20)] },
        'mx1.example.com': { A: ['192.0.2.1'] },
        'mx2.example.com': { A: ['192.0.2.2'] },
      },
      fail: [{ name: 'mx1.example.com', code: 'SERVFAIL' }],
      want: ['mx2.example.com 192.0.2.2 20'],
    },
    {
      name: 'AAAA failing temporarily does not lose the A records',
      zone: {
        'example.com': { MX: [mx('mx1.example.com', 10)] },
        'mx1.example.com': { A: ['192.0.2.1'], AAAA: ['2001:db8::1'] },
      },
      fail: [{ name: 'mx1.example.com', type: 'AAAA', code: 'TIMEOUT' }],
      want: ['mx1.example.com 192.0.2.1 10'],
    },
    {
      name: 'private addresses are dropped, public ones kept',
      zone: {
        'example.com': { MX: [mx('mx1.example.com', 10), mx('mx2.example.com', 20)] },
        'mx1.example.com': { A: ['10.0.0.1', '192.0.2.1'], AAAA: ['fe80::1', '::1'] },
        'mx2.example.com': { A: ['127.0.0.1'] },
      },
      want: ['mx1.example.com 192.0.2.1 10'],
    },
    {
      name: 'an address under two hosts is tried once, under the more preferred',
      zone: {
        'example.com': { MX: [mx('mx1.example.com', 10), mx('mx2.example.com', 20)] },
        'mx1.example.com': { A: ['192.0.2.1'] },
        'mx2.example.com': { A: ['192.0.2.1', '192.0.2.2'] },
      },
      want: ['mx1.example.com 192.0.2.1 10', 'mx2.example.com 192.0.2.2 20'],
    },
    {
      name: 'a host listed twice is resolved once, at its best preference',
      zone: {
        'example.com': { MX: [mx('mx1.example.com', 30), mx('mx1.example.com', 10)] },
        'mx1.example.com': { A: ['192.0.2.1'] },
      },
      want: ['mx1.example.com 192.0.2.1 10'],
    },
    {
      name: 'we are a backup MX: only the more preferred hosts remain',
      zone: {
        'example.com': {
          MX: [mx('mx1.example.com', 10), mx('mx.postern.test', 20), mx('mx3.example.com', 30)],
        },
        'mx1.example.com': { A: ['192.0.2.1'] },
        'mx3.example.com': { A: ['192.0.2.3'] },
        'mx.postern.test': { A: ['192.0.2.99'] },
      },
      want: ['mx1.example.com 192.0.2.1 10'],
    },
    {
      name: 'a null MX among real MX records is ignored',
      zone: {
        'example.com': { MX: [mx('', 0), mx('mx1.example.com', 10)] },
        'mx1.example.com': { A: ['192.0.2.1'] },
      },
      want: ['mx1.example.com 192.0.2.1 10'],
    },
    {
      name: 'MX host behind a CNAME',
      zone: {
        'example.com': { MX: [mx('mx1.example.com', 10)] },
        'mx1.example.com': { CNAME: ['real.example.net'] },
        'real.example.net': { A: ['192.0.2.7'] },
      },
      want: ['mx1.example.com 192.0.2.7 10'],
    },
  ]
  for (const c of cases) {
    test(c.name, async () => {
      const r = await destination(c.domain ?? 'example.com', c.zone, c.fail)
      assert.deepEqual(targets(r), c.want)
      if (r.kind === 'ok') for (const t of r.targets) assert.equal(t.port, port)
    })
  }

  test(`at most ${MAX_TARGETS} targets`, async () => {
    const zone: Zone = { 'example.com': { MX: [] } }
    const records: MxRecord[] = []
    for (let i = 0; i < 15; i++) {
      records.push(mx(`mx${i}.example.com`, i))
      zone[`mx${i}.example.com`] = { A: [`192.0.2.${i + 1}`, `198.51.100.${i + 1}`] }
    }
    zone['example.com'] = { MX: records }
    const got = targets(await destination('example.com', zone))
    assert.equal(got.length, MAX_TARGETS)
    assert.equal(got[0], 'mx0.example.com 192.0.2.1 0')
    assert.equal(got[9], 'mx4.example.com 198.51.100.5 4')
  })

  test('the connect guard of net.connect_allow lets a listed private range through', async () => {
    const guard = createConnectGuard({ allow: ['10.0.0.0/8'], allowPublic: true })
    const r = await destination(
      'example.com',
      { 'example.com': { MX: [mx('mx1.example.com', 10)] }, 'mx1.example.com': { A: ['10.1.2.3'] } },
      [],
      { allows: guard.allows },
    )
    assert.deepEqual(targets(r), ['mx1.example.com 10.1.2.3 10'])
  })
})

describe('resolveDestination: not delivering', () => {
  const cases: {
    name: string
    domain?: string
    zone: Zone
    fail?: StaticFailure[]
    kind: 'permanent' | 'temporary'
    enhanced: string
    reason: RegExp
  }[] = [
    {
      name: 'null MX (RFC 7505)',
      zone: { 'example.com': { MX: [mx('', 0)], A: ['192.0.2.1'] } },
      kind: 'permanent',
      enhanced: '5.1.10',
      reason: /domain does not accept mail/,
    },
    {
      name: "null MX written '.'",
      zone: { 'example.com': { MX: [mx('.', 0)] } },
      kind: 'permanent',
      enhanced: '5.1.10',
      reason: /domain does not accept mail/,
    },
    {
      name: 'NXDOMAIN on the MX query',
      zone: {},
      kind: 'permanent',
      enhanced: '5.1.2',
      reason: /domain does not exist/,
    },
    {
      name: 'a malformed name (BADNAME)',
      zone: {},
      fail: [{ name: 'example.com', code: 'BADNAME' }],
      kind: 'permanent',
      enhanced: '5.1.2',
      reason: /domain does not exist/,
    },
    ...(['TIMEOUT', 'SERVFAIL', 'REFUSED', 'CONNREFUSED'] as const).map((code) => ({
      name: `MX query fails with ${code}`,
      zone: { 'example.com': { MX: [mx('mx1.example.com', 10)] }, 'mx1.example.com': { A: ['192.0.2.1'] } },
      fail: [{ name: 'example.com', type: 'MX' as const, code }],
      kind: 'temporary' as const,
      enhanced: '4.4.3',
      reason: new RegExp(`temporary DNS failure.*${code}`),
    })),
    {
      name: 'the only MX is this server',
      zone: { 'example.com': { MX: [mx('MX.postern.test.', 10)] }, 'mx.postern.test': { A: ['192.0.2.99'] } },
      kind: 'permanent',
      enhanced: '5.4.6',
      reason: /MX points back at this server \(mail loop\)/,
    },
    {
      name: 'this server is the most preferred of several MX hosts',
      zone: {
        'example.com': { MX: [mx('mx2.example.com', 20), mx('mail.postern.test', 10)] },
        'mx2.example.com': { A: ['192.0.2.2'] },
      },
      kind: 'permanent',
      enhanced: '5.4.6',
      reason: /mail loop/,
    },
    {
      name: 'this server shares the best preference with another host',
      zone: {
        'example.com': { MX: [mx('mx1.example.com', 10), mx('mx.postern.test', 10)] },
        'mx1.example.com': { A: ['192.0.2.1'] },
      },
      kind: 'permanent',
      enhanced: '5.4.6',
      reason: /mail loop/,
    },
    {
      name: 'the implicit MX is this server',
      domain: 'mx.postern.test',
      zone: { 'mx.postern.test': { A: ['192.0.2.99'] } },
      kind: 'permanent',
      enhanced: '5.4.6',
      reason: /mail loop/,
    },
    {
      name: 'every address is private, loopback or link-local',
      zone: {
        'example.com': { MX: [mx('mx1.example.com', 10), mx('mx2.example.com', 20)] },
        'mx1.example.com': { A: ['127.0.0.1', '10.0.0.5'], AAAA: ['::1'] },
        'mx2.example.com': { A: ['169.254.1.1', '192.168.1.1'], AAAA: ['fe80::1', 'fd00::1'] },
      },
      kind: 'permanent',
      enhanced: '5.4.4',
      reason:
        /^refused: the destination resolves only to private, loopback or link-local addresses \(net\.connect_allow\)$/,
    },
    {
      name: 'the implicit MX resolves to loopback only',
      zone: { 'example.com': { A: ['127.0.0.1'] } },
      kind: 'permanent',
      enhanced: '5.4.4',
      reason: /net\.connect_allow/,
    },
    {
      name: 'no MX host resolves',
      zone: {
        'example.com': { MX: [mx('gone1.example.com', 10), mx('nodata.example.com', 20)] },
        'nodata.example.com': { TXT: ['x'] },
      },
      kind: 'permanent',
      enhanced: '5.4.4',
      reason: /no mail host .* resolves/,
    },
    {
      name: 'no MX, A or AAAA records',
      zone: { 'example.com': { TXT: ['v=spf1 -all'] } },
      kind: 'permanent',
      enhanced: '5.4.4',
      reason: /no MX, A or AAAA/,
    },
    {
      name: 'every MX host fails temporarily',
      zone: {
        'example.com': { MX: [mx('mx1.example.com', 10), mx('mx2.example.com', 20)] },
        'mx1.example.com': { A: ['192.0.2.1'] },
      },
      fail: [
        { name: 'mx1.example.com', code: 'TIMEOUT' },
        { name: 'mx2.example.com', type: 'A', code: 'SERVFAIL' },
      ],
      kind: 'temporary',
      enhanced: '4.4.3',
      reason: /temporary DNS failure/,
    },
    {
      name: 'one host fails temporarily, the other resolves to private addresses only',
      zone: {
        'example.com': { MX: [mx('mx1.example.com', 10), mx('mx2.example.com', 20)] },
        'mx2.example.com': { A: ['10.0.0.2'] },
      },
      fail: [{ name: 'mx1.example.com', code: 'TIMEOUT' }],
      kind: 'temporary',
      enhanced: '4.4.3',
      reason: /temporary DNS failure/,
    },
    {
      name: 'the implicit MX fails temporarily',
      zone: { 'example.com': { TXT: ['x'] } },
      fail: [{ name: 'example.com', type: 'A', code: 'TIMEOUT' }],
      kind: 'temporary',
      enhanced: '4.4.3',
      reason: /temporary DNS failure/,
    },
  ]
  for (const c of cases) {
    test(c.name, async () => {
      const r = await destination(c.domain ?? 'example.com', c.zone, c.fail)
      assert.ok(r.kind !== 'ok', `expected ${c.kind}, got targets ${JSON.stringify(r)}`)
      assert.equal(r.kind, c.kind)
      assert.equal(r.enhanced, c.enhanced)
      assert.match(r.reason, c.reason)
      assert.ok(r.dns.length > 0)
    })
  }

  test('a resolver throwing something else than a DnsError is a temporary failure', async () => {
    const broken: Resolver = {
      ...createStaticResolver({}),
      resolveMx: () => Promise.reject(new TypeError('boom')),
    }
    const r = await resolveDestination('example.com', { resolver: broken, allows, localHosts, port })
    assert.equal(r.kind, 'temporary')
    assert.deepEqual(r.dns, [{ query: 'example.com', type: 'MX', answers: [], error: 'boom' }])
  })
})

describe('resolveDestination: the DNS trace', () => {
  test('records every lookup in order, with answers and error codes', async () => {
    const r = await destination(
      'example.com',
      {
        'example.com': { MX: [mx('mx1.example.com', 10), mx('mx2.example.com', 20)] },
        'mx1.example.com': { A: ['192.0.2.1'] },
        'mx2.example.com': { AAAA: ['2001:db8::2'] },
      },
      [{ name: 'mx1.example.com', type: 'AAAA', code: 'TIMEOUT' }],
    )
    const want: DnsStep[] = [
      { query: 'example.com', type: 'MX', answers: ['10 mx1.example.com', '20 mx2.example.com'] },
      { query: 'mx1.example.com', type: 'A', answers: ['192.0.2.1'] },
      { query: 'mx1.example.com', type: 'AAAA', answers: [], error: 'TIMEOUT' },
      { query: 'mx2.example.com', type: 'A', answers: [], error: 'NODATA' },
      { query: 'mx2.example.com', type: 'AAAA', answers: ['2001:db8::2'] },
    ]
    assert.deepEqual(r.dns, want)
  })

  test('a null MX is shown as "."', async () => {
    const r = await destination('example.com', { 'example.com': { MX: [mx('', 0)] } })
    assert.deepEqual(r.dns, [{ query: 'example.com', type: 'MX', answers: ['0 .'] }])
  })

  test('the implicit MX: NODATA on MX, then A and AAAA of the domain', async () => {
    const r = await destination('example.com', { 'example.com': { A: ['192.0.2.1'] } })
    assert.deepEqual(r.dns, [
      { query: 'example.com', type: 'MX', answers: [], error: 'NODATA' },
      { query: 'example.com', type: 'A', answers: ['192.0.2.1'] },
      { query: 'example.com', type: 'AAAA', answers: [], error: 'NODATA' },
    ])
  })

  test('a mail loop stops before any address lookup', async () => {
    const resolver = createStaticResolver({ 'example.com': { MX: [mx('mx.postern.test', 10)] } })
    await resolveDestination('example.com', { resolver, allows, localHosts, port })
    assert.deepEqual(resolver.calls, [{ name: 'example.com', type: 'MX' }])
  })
})
