import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { before, describe, it, type TestContext } from 'node:test'
import type { MxRecord, Resolver, SrvRecord } from '../../src/dns/resolver.ts'
import type { Zone } from '../../src/dns/static-zone.ts'
import { createResolver } from '../../src/dns/system-resolver.ts'
import {
  type DnsRecord,
  type DomainDnsInput,
  domainDnsRecords,
  mtaStsPolicy,
  zoneFileSnippet,
} from '../../src/services/domains/dns-records.ts'
import { checkDomainDns, type DnsStatus, type RecordStatus } from '../../src/services/domains/dns-status.ts'
import { ServiceError } from '../../src/services/errors.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'

const MAIL_HOST = 'mx.postern.test'
const DOMAIN = 'example.test'

/** Real p= values: base64 SPKI DER for RSA, the raw 32-byte key for Ed25519 (RFC 8463 section 4.2). */
function dkimKeys(): { rsa: string; ed25519: string } {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey
  const ed = generateKeyPairSync('ed25519').publicKey
  return {
    rsa: (rsa.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64'),
    ed25519: Buffer.from(ed.export({ format: 'jwk' }).x as string, 'base64url').toString('base64'),
  }
}

const KEYS = dkimKeys()

const INPUT: DomainDnsInput = {
  domain: DOMAIN,
  ownershipToken: 'Tok3n-abc_123',
  mailHost: MAIL_HOST,
  dkim: [
    { selector: 'pst1', algorithm: 'rsa', publicKey: KEYS.rsa },
    { selector: 'pst2', algorithm: 'ed25519', publicKey: KEYS.ed25519 },
  ],
  ports: { submission: 587, submissions: 465, imap: 143, imaps: 993 },
  dmarcPolicy: 'quarantine',
  mtaStsMode: 'enforce',
  mtaStsId: '20260101T000000',
  ttl: 3600,
}

const byKey = (records: DnsRecord[], purpose: string, name?: string): DnsRecord => {
  const r = records.find((x) => x.purpose === purpose && (name === undefined || x.name === name))
  assert.ok(r, `no ${purpose} record ${name ?? ''}`)
  return r
}

describe('domainDnsRecords', () => {
  it('lists exactly what a hosted domain publishes', () => {
    const records = domainDnsRecords({
      ...INPUT,
      dkim: [{ selector: 'pst1', algorithm: 'rsa', publicKey: 'AAAA' }],
    })
    assert.deepEqual(
      records.map((r) => [r.purpose, r.type, r.name, r.value, r.required]),
      [
        ['ownership', 'TXT', '_postern.example.test', 'postern-verification=Tok3n-abc_123', true],
        ['mx', 'MX', 'example.test', '10 mx.postern.test', true],
        ['spf', 'TXT', 'example.test', 'v=spf1 mx -all', false],
        ['dkim', 'TXT', 'pst1._domainkey.example.test', 'v=DKIM1; k=rsa; p=AAAA', false],
        [
          'dmarc',
          'TXT',
          '_dmarc.example.test',
          'v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@example.test',
          false,
        ],
        ['mta-sts', 'TXT', '_mta-sts.example.test', 'v=STSv1; id=20260101T000000', false],
        ['mta-sts', 'CNAME', 'mta-sts.example.test', 'mx.postern.test', false],
        [
          'tls-rpt',
          'TXT',
          '_smtp._tls.example.test',
          'v=TLSRPTv1; rua=mailto:tls-reports@example.test',
          false,
        ],
        ['srv-submission', 'SRV', '_submission._tcp.example.test', '0 1 587 mx.postern.test', false],
        ['srv-submissions', 'SRV', '_submissions._tcp.example.test', '0 1 465 mx.postern.test', false],
        ['srv-imap', 'SRV', '_imap._tcp.example.test', '0 1 143 mx.postern.test', false],
        ['srv-imaps', 'SRV', '_imaps._tcp.example.test', '0 1 993 mx.postern.test', false],
        ['autoconfig', 'CNAME', 'autoconfig.example.test', 'mx.postern.test', false],
        ['autodiscover', 'CNAME', 'autodiscover.example.test', 'mx.postern.test', false],
      ],
    )
    for (const r of records) {
      assert.equal(r.ttl, 3600)
      assert.ok(r.note.length > 10 && !r.note.includes('\n'), `${r.purpose} has a one-line note`)
    }
    assert.match(byKey(records, 'spf').note, /MX/)
    assert.match(byKey(records, 'dmarc').note, /dmarc-reports@example\.test/)
  })

  it('writes one DKIM record per key with the algorithm as k=', () => {
    const records = domainDnsRecords(INPUT)
    const dkim = records.filter((r) => r.purpose === 'dkim')
    assert.deepEqual(
      dkim.map((r) => [r.name, r.value]),
      [
        ['pst1._domainkey.example.test', `v=DKIM1; k=rsa; p=${KEYS.rsa}`],
        ['pst2._domainkey.example.test', `v=DKIM1; k=ed25519; p=${KEYS.ed25519}`],
      ],
    )
    // An Ed25519 p= is the bare 32-byte key (RFC 8463), not an SPKI structure.
    assert.equal(Buffer.from(KEYS.ed25519, 'base64').length, 32)
  })

  it('normalises case and trailing dots, and strips whitespace from keys', () => {
    const records = domainDnsRecords({
      ...INPUT,
      domain: 'Example.TEST.',
      mailHost: 'MX.Postern.test.',
      dkim: [{ selector: 'Pst1', algorithm: 'rsa', publicKey: 'AB CD\nEF==' }],
    })
    assert.equal(byKey(records, 'mx').value, '10 mx.postern.test')
    assert.equal(byKey(records, 'dkim').name, 'pst1._domainkey.example.test')
    assert.equal(byKey(records, 'dkim').value, 'v=DKIM1; k=rsa; p=ABCDEF==')
  })

  it('leaves out MTA-STS when the mode is none', () => {
    const records = domainDnsRecords({ ...INPUT, mtaStsMode: 'none', mtaStsId: '' })
    assert.equal(
      records.some((r) => r.purpose === 'mta-sts'),
      false,
    )
    assert.equal(records.length, domainDnsRecords(INPUT).length - 2)
  })

  it('publishes a service that is not offered with target "." (RFC 6186 section 4)', () => {
    const records = domainDnsRecords({ ...INPUT, ports: { ...INPUT.ports, imap: 0 } })
    assert.equal(byKey(records, 'srv-imap').value, '0 0 0 .')
    assert.match(byKey(records, 'srv-imap').note, /not offered/)
  })

  it('does not CNAME the mail host to itself', () => {
    const records = domainDnsRecords({ ...INPUT, mailHost: 'autoconfig.example.test' })
    assert.equal(
      records.some((r) => r.purpose === 'autoconfig'),
      false,
    )
    assert.equal(byKey(records, 'autodiscover').value, 'autoconfig.example.test')
  })

  it('rejects input that would produce broken records', () => {
    const bad: Partial<DomainDnsInput>[] = [
      { mtaStsId: 'has-dash' }, // RFC 8461 section 3.1: letters and digits only
      { mtaStsId: 'x'.repeat(33) },
      { domain: 'bad domain' },
      { mailHost: '' },
      { ownershipToken: 'a "quote"' },
      { dkim: [{ selector: 'a b', algorithm: 'rsa', publicKey: 'AAAA' }] },
      { dkim: [{ selector: 's', algorithm: 'rsa', publicKey: 'not base64!' }] },
      { ports: { ...INPUT.ports, submission: 70000 } },
      { ttl: -1 },
    ]
    for (const patch of bad) {
      assert.throws(
        () => domainDnsRecords({ ...INPUT, ...patch }),
        (err: unknown) => err instanceof ServiceError && err.kind === 'invalid',
        JSON.stringify(patch),
      )
    }
  })
})

// ---- zone-file snippet ----

interface ZoneEntry {
  name: string
  ttl: string
  klass: string
  type: string
  /** Bare words of the rdata. */
  words: string[]
  /** Quoted character-strings of the rdata, as octets. */
  strings: Buffer[]
}

/** A small master-file reader (RFC 1035 section 5.1): comments, parentheses, quoted strings with \X and \DDD escapes. */
function readZone(text: string): { entries: ZoneEntry[]; comments: string[] } {
  const entries: ZoneEntry[] = []
  const comments: string[] = []
  let tokens: (string | Buffer)[] = []
  let depth = 0
  const flush = () => {
    if (tokens.length === 0) return
    const [name, ttl, klass, type, ...rdata] = tokens
    entries.push({
      name: String(name),
      ttl: String(ttl),
      klass: String(klass),
      type: String(type),
      words: rdata.filter((t): t is string => typeof t === 'string'),
      strings: rdata.filter((t): t is Buffer => Buffer.isBuffer(t)),
    })
    tokens = []
  }
  let i = 0
  while (i < text.length) {
    const c = text[i] ?? ''
    if (c === ';') {
      const end = text.indexOf('\n', i)
      comments.push(text.slice(i + 1, end < 0 ? undefined : end).trim())
      i = end < 0 ? text.length : end
    } else if (c === '\n') {
      if (depth === 0) flush()
      i++
    } else if (c === ' ' || c === '\t') i++
    else if (c === '(') {
      depth++
      i++
    } else if (c === ')') {
      depth--
      i++
    } else if (c === '"') {
      const octets: number[] = []
      i++
      while (text[i] !== '"') {
        assert.ok(i < text.length, 'unterminated string')
        if (text[i] === '\\') {
          const digits = /^\d{3}/.exec(text.slice(i + 1, i + 4))
          if (digits) {
            octets.push(Number(digits[0]))
            i += 4
          } else {
            octets.push(...Buffer.from(text[i + 1] ?? '', 'utf8'))
            i += 2
          }
        } else {
          octets.push(...Buffer.from(text[i] ?? '', 'utf8'))
          i++
        }
      }
      i++
      tokens.push(Buffer.from(octets))
    } else {
      const m = /^[^\s;()"]+/.exec(text.slice(i))
      tokens.push(m?.[0] ?? c)
      i += m?.[0].length ?? 1
    }
  }
  assert.equal(depth, 0, 'balanced parentheses')
  flush()
  return { entries, comments }
}

describe('zoneFileSnippet', () => {
  it('contains every record, absolute names, and TXT split into <=255-octet strings', () => {
    const records = domainDnsRecords(INPUT)
    const text = zoneFileSnippet(records)
    const { entries, comments } = readZone(text)
    assert.equal(entries.length, records.length)
    records.forEach((r, i) => {
      const e = entries[i]
      assert.ok(e, r.purpose)
      assert.equal(e.name, `${r.name}.`)
      assert.equal(e.ttl, '3600')
      assert.equal(e.klass, 'IN')
      assert.equal(e.type, r.type)
      switch (r.type) {
        case 'TXT':
          assert.ok(e.strings.length >= 1)
          for (const s of e.strings) assert.ok(s.length <= 255, `${r.name}: ${s.length} octets`)
          assert.equal(Buffer.concat(e.strings).toString('utf8'), r.value)
          break
        case 'CNAME':
          assert.deepEqual(e.words, [`${r.value}.`])
          break
        case 'MX':
        case 'SRV': {
          const fields = r.value.split(' ')
          assert.deepEqual(e.words, [...fields.slice(0, -1), `${fields.at(-1)}.`])
          break
        }
      }
      assert.match(comments[i] ?? '', new RegExp(`^${r.purpose}${r.required ? ' \\(required\\)' : ''}: `))
    })
    // The RSA-2048 key does not fit one character-string: it is split, in parentheses.
    const rsa = entries.find((e) => e.name === 'pst1._domainkey.example.test.')
    assert.ok(rsa && rsa.strings.length >= 2, 'RSA DKIM split into several strings')
    assert.match(text, /^pst1\._domainkey\.example\.test\.\t3600\tIN\tTXT\t\( "v=DKIM1; k=rsa; p=/m)
    const ed = entries.find((e) => e.name === 'pst2._domainkey.example.test.')
    assert.equal(ed?.strings.length, 1)
    assert.match(text, /^example\.test\.\t3600\tIN\tMX\t10 mx\.postern\.test\.$/m)
    assert.match(text, /^_imaps\._tcp\.example\.test\.\t3600\tIN\tSRV\t0 1 993 mx\.postern\.test\.$/m)
    assert.ok(text.endsWith('\n'))
  })

  it('escapes quotes, backslashes and non-ASCII, and never cuts a UTF-8 character', () => {
    const odd: DnsRecord[] = [
      {
        type: 'TXT',
        name: 'q.example.test',
        value: 'say "hi" \\ é',
        ttl: 60,
        purpose: 'spf',
        required: false,
        note: 'x',
      },
      {
        type: 'TXT',
        name: 'u.example.test',
        value: 'é'.repeat(300),
        ttl: 60,
        purpose: 'spf',
        required: false,
        note: 'y',
      },
      {
        type: 'SRV',
        name: '_imap._tcp.example.test',
        value: '0 0 0 .',
        ttl: 60,
        purpose: 'srv-imap',
        required: false,
        note: 'z',
      },
    ]
    const text = zoneFileSnippet(odd)
    assert.ok(text.includes('"say \\"hi\\" \\\\ \\195\\169"'), text)
    assert.match(text, /SRV\t0 0 0 \.$/m)
    const { entries } = readZone(text)
    assert.equal(Buffer.concat(entries[0]?.strings ?? []).toString('utf8'), 'say "hi" \\ é')
    const long = entries[1]?.strings ?? []
    assert.ok(long.length >= 3)
    for (const s of long) {
      assert.ok(s.length <= 255)
      assert.equal(s.length % 2, 0, 'whole two-octet characters in each string')
      assert.ok(!s.toString('utf8').includes('\ufffd'))
    }
    assert.equal(Buffer.concat(long).toString('utf8'), 'é'.repeat(300))
  })
})

describe('mtaStsPolicy', () => {
  it('is the RFC 8461 section 3.2 format with CRLF lines', () => {
    const text = mtaStsPolicy({ mailHost: 'MX.Postern.test.', mode: 'enforce', maxAgeSeconds: 604_800 })
    assert.equal(text, 'version: STSv1\r\nmode: enforce\r\nmx: mx.postern.test\r\nmax_age: 604800\r\n')
    assert.equal(text.replace(/\r\n/g, '').includes('\n'), false, 'no bare LF')
    const lines = text.split('\r\n').slice(0, -1)
    assert.equal(lines[0], 'version: STSv1', 'version comes first')
    for (const line of lines) assert.match(line, /^[A-Za-z0-9_]+: [\x21-\x7e]+$/)
  })

  it('serves testing and none modes, and bounds max_age', () => {
    assert.match(
      mtaStsPolicy({ mailHost: MAIL_HOST, mode: 'testing', maxAgeSeconds: 86400 }),
      /\r\nmode: testing\r\n/,
    )
    assert.match(
      mtaStsPolicy({ mailHost: MAIL_HOST, mode: 'none', maxAgeSeconds: 86400 }),
      /\r\nmode: none\r\n/,
    )
    assert.ok(mtaStsPolicy({ mailHost: MAIL_HOST, mode: 'enforce', maxAgeSeconds: 31_557_600 }))
    assert.throws(() => mtaStsPolicy({ mailHost: MAIL_HOST, mode: 'enforce', maxAgeSeconds: 31_557_601 }))
    assert.throws(() => mtaStsPolicy({ mailHost: MAIL_HOST, mode: 'enforce', maxAgeSeconds: 1.5 }))
  })
})

// ---- status against a real DNS server on loopback ----

/** The zone an operator who copied every record would publish, plus the mail host's address. */
function publishedZone(records: DnsRecord[]): Zone {
  const zone: Record<string, { MX: MxRecord[]; TXT: string[]; CNAME: string[]; SRV: SrvRecord[] }> = {}
  for (const r of records) {
    const entry = zone[r.name] ?? { MX: [], TXT: [], CNAME: [], SRV: [] }
    zone[r.name] = entry
    if (r.type === 'MX') {
      const [priority, exchange] = r.value.split(' ')
      entry.MX.push({ priority: Number(priority), exchange: exchange ?? '' })
    } else if (r.type === 'TXT') entry.TXT.push(r.value)
    else if (r.type === 'CNAME') entry.CNAME.push(r.value)
    else if (r.type === 'SRV') {
      const [priority, weight, port, target] = r.value.split(' ')
      entry.SRV.push({
        priority: Number(priority),
        weight: Number(weight),
        port: Number(port),
        target: target ?? '',
      })
    }
  }
  return { ...zone, [MAIL_HOST]: { A: ['127.0.0.1'] } }
}

const RECORDS = domainDnsRecords(INPUT)

async function serve(t: TestContext): Promise<{ server: DnsServer; resolver: Resolver }> {
  const server = await startDnsServer(publishedZone(RECORDS))
  t.after(() => server.close())
  return { server, resolver: createResolver({ servers: server.servers, timeoutMs: 1000 }) }
}

const statusOf = (status: DnsStatus, purpose: string, name?: string): RecordStatus => {
  const r = status.records.find((x) => x.purpose === purpose && (name === undefined || x.name === name))
  assert.ok(r, `no status for ${purpose} ${name ?? ''}`)
  return r
}

const id = (r: DnsRecord) => `${r.purpose} ${r.type} ${r.name}`

/** Every record not listed in `changed` is as published: ok. */
function assertOthersOk(status: DnsStatus, changed: RecordStatus[]): void {
  for (const r of status.records) {
    if (changed.includes(r)) continue
    assert.equal(r.state, 'ok', `${id(r)}: ${r.detail}`)
  }
}

describe('checkDomainDns', () => {
  it('reports every published record ok and the domain ready to verify', async (t) => {
    const { resolver } = await serve(t)
    const status = await checkDomainDns(resolver, RECORDS, 1_700_000_000_000)
    assert.equal(status.domain, DOMAIN)
    assert.equal(status.checked_at, 1_700_000_000_000)
    assert.equal(status.records.length, RECORDS.length)
    assertOthersOk(status, [])
    assert.equal(status.ownership_ok, true)
    assert.equal(status.mx_ok, true)
    assert.equal(status.verified_ready, true)
    // The records keep their DnsRecord fields and say what DNS returned.
    for (const [i, r] of status.records.entries()) assert.deepEqual(pick(r), RECORDS[i])
    assert.deepEqual(statusOf(status, 'mx').found, ['10 mx.postern.test'])
    assert.deepEqual(statusOf(status, 'spf').found, ['v=spf1 mx -all'])
    assert.match(statusOf(status, 'spf').detail, /authorises mx\.postern\.test through "mx"/)
    // The long RSA record came back in several strings and was joined.
    assert.deepEqual(statusOf(status, 'dkim', 'pst1._domainkey.example.test').found, [
      `v=DKIM1; k=rsa; p=${KEYS.rsa}`,
    ])
    assert.match(statusOf(status, 'dmarc').detail, /^DMARC policy p=quarantine, aggregate reports to mailto:/)
    assert.deepEqual(statusOf(status, 'autoconfig').found, [MAIL_HOST])
    assert.match(statusOf(status, 'srv-imaps').detail, /points to mx\.postern\.test port 993/)
  })

  const pick = (r: RecordStatus): DnsRecord => ({
    type: r.type,
    name: r.name,
    value: r.value,
    ttl: r.ttl,
    purpose: r.purpose,
    required: r.required,
    note: r.note,
  })

  const other = dkimKeys()

  // Each case changes the published zone; the listed records change state, the rest stay ok.
  const cases: {
    title: string
    change: (s: DnsServer) => void
    expect: [purpose: string, name: string | undefined, state: string, detail: RegExp][]
    ready?: boolean
  }[] = [
    {
      title: 'MX to another host',
      change: (s) => s.set(DOMAIN, 'MX', [{ exchange: 'mx.other.net', priority: 10 }]),
      expect: [['mx', undefined, 'different', /^MX points to mx\.other\.net, not mx\.postern\.test$/]],
      ready: false,
    },
    {
      title: 'MX removed',
      change: (s) => s.set(DOMAIN, 'MX', undefined),
      expect: [['mx', undefined, 'missing', /^no MX record at example\.test$/]],
      ready: false,
    },
    {
      title: 'a null MX (RFC 7505)',
      change: (s) => s.set(DOMAIN, 'MX', [{ exchange: '', priority: 0 }]),
      expect: [['mx', undefined, 'different', /null MX/]],
      ready: false,
    },
    {
      title: 'our MX behind a backup with a lower preference',
      change: (s) =>
        s.set(DOMAIN, 'MX', [
          { exchange: MAIL_HOST, priority: 20 },
          { exchange: 'backup.mx.test', priority: 5 },
        ]),
      expect: [['mx', undefined, 'ok', /^MX 20 mx\.postern\.test; backup\.mx\.test is tried first$/]],
    },
    {
      title: 'the ownership token is wrong',
      change: (s) => s.set(`_postern.${DOMAIN}`, 'TXT', ['postern-verification=someone-else']),
      expect: [['ownership', undefined, 'different', /is not this domain's token/]],
      ready: false,
    },
    {
      title: 'the ownership record is gone',
      change: (s) => s.set(`_postern.${DOMAIN}`, 'TXT', undefined),
      expect: [['ownership', undefined, 'missing', /^no TXT record at _postern\.example\.test$/]],
      ready: false,
    },
    {
      title: 'SPF missing (another TXT at the apex)',
      change: (s) => s.set(DOMAIN, 'TXT', ['site-verification=abc']),
      expect: [['spf', undefined, 'missing', /^no SPF \(v=spf1\) TXT record at example\.test$/]],
    },
    {
      title: 'two SPF records',
      change: (s) => s.set(DOMAIN, 'TXT', ['v=spf1 mx -all', 'v=spf1 include:mailer.test -all']),
      expect: [['spf', undefined, 'different', /^two SPF records \(RFC 7208 3\.2\)/]],
    },
    {
      title: 'an SPF record that does not authorise us',
      change: (s) => s.set(DOMAIN, 'TXT', ['v=spf1 include:_spf.mailer.test ~all']),
      expect: [
        [
          'spf',
          undefined,
          'different',
          /does not authorise mx\.postern\.test \(not followed here: include:_spf\.mailer\.test\)$/,
        ],
      ],
    },
    {
      title: 'an SPF record that fails our mx',
      change: (s) => s.set(DOMAIN, 'TXT', ['v=spf1 -mx +all']),
      expect: [['spf', undefined, 'different', /"-mx" gives mail from mx\.postern\.test an SPF fail/]],
    },
    {
      title: 'an SPF record that authorises everyone',
      change: (s) => s.set(DOMAIN, 'TXT', ['v=spf1 +all']),
      expect: [['spf', undefined, 'different', /authorises every host/]],
    },
    {
      title: 'an SPF record naming our address with ip4 and other TXT records (ok)',
      change: (s) =>
        s.set(DOMAIN, 'TXT', ['site-verification=abc', 'v=spf1 include:mailer.test ip4:127.0.0.0/8 -all']),
      expect: [['spf', undefined, 'ok', /through "ip4:127\.0\.0\.0\/8"/]],
    },
    {
      title: 'an SPF record naming our host with a: (ok)',
      change: (s) => s.set(DOMAIN, 'TXT', [`v=spf1 a:${MAIL_HOST} ~all`]),
      expect: [['spf', undefined, 'ok', /through "a:mx\.postern\.test"/]],
    },
    {
      title: 'a different DKIM key',
      change: (s) => s.set(`pst1._domainkey.${DOMAIN}`, 'TXT', [`v=DKIM1; k=rsa; p=${other.rsa}`]),
      expect: [
        ['dkim', `pst1._domainkey.${DOMAIN}`, 'different', /is a different rsa key \(p= does not match\)/],
      ],
    },
    {
      title: 'a DKIM key with folded p= (ok)',
      change: (s) =>
        s.set(`pst1._domainkey.${DOMAIN}`, 'TXT', [
          `v=DKIM1;  k=rsa;\tp=${KEYS.rsa.replace(/(.{64})/g, '$1 ')}`,
        ]),
      expect: [['dkim', `pst1._domainkey.${DOMAIN}`, 'ok', /DKIM rsa key matches/]],
    },
    {
      title: 'a revoked DKIM key',
      change: (s) => s.set(`pst2._domainkey.${DOMAIN}`, 'TXT', ['v=DKIM1; k=ed25519; p=']),
      expect: [['dkim', `pst2._domainkey.${DOMAIN}`, 'different', /revoked \(empty p=\)/]],
    },
    {
      title: 'a DKIM key of the wrong type',
      change: (s) => s.set(`pst2._domainkey.${DOMAIN}`, 'TXT', [`v=DKIM1; p=${KEYS.ed25519}`]),
      expect: [['dkim', `pst2._domainkey.${DOMAIN}`, 'different', /is k=rsa, not k=ed25519/]],
    },
    {
      title: 'the owner chose another DMARC policy and no reports (ok)',
      change: (s) => s.set(`_dmarc.${DOMAIN}`, 'TXT', ['v=DMARC1; p=reject']),
      expect: [
        ['dmarc', undefined, 'ok', /^DMARC policy p=reject \(Postern suggests p=quarantine\), no rua=/],
      ],
    },
    {
      title: 'a DMARC record without v=DMARC1',
      change: (s) => s.set(`_dmarc.${DOMAIN}`, 'TXT', ['p=reject']),
      expect: [
        ['dmarc', undefined, 'missing', /^no DMARC \(v=DMARC1\) TXT record at _dmarc\.example\.test$/],
      ],
    },
    {
      title: 'two DMARC records',
      change: (s) => s.set(`_dmarc.${DOMAIN}`, 'TXT', ['v=DMARC1; p=none', 'v=DMARC1; p=reject']),
      expect: [['dmarc', undefined, 'different', /two DMARC records .*RFC 7489 6\.6\.3/]],
    },
    {
      title: 'a DMARC record without a valid p=',
      change: (s) => s.set(`_dmarc.${DOMAIN}`, 'TXT', ['v=DMARC1; p=block']),
      expect: [['dmarc', undefined, 'different', /no valid p=/]],
    },
    {
      title: 'an old MTA-STS id',
      change: (s) => s.set(`_mta-sts.${DOMAIN}`, 'TXT', ['v=STSv1; id=old1']),
      expect: [['mta-sts', `_mta-sts.${DOMAIN}`, 'different', /^MTA-STS id is old1, not 20260101T000000/]],
    },
    {
      title: 'TLS reports sent elsewhere (ok)',
      change: (s) => s.set(`_smtp._tls.${DOMAIN}`, 'TXT', ['v=TLSRPTv1; rua=mailto:tls@reports.test']),
      expect: [['tls-rpt', undefined, 'ok', /^TLS reports go to mailto:tls@reports\.test$/]],
    },
    {
      title: 'a CNAME to elsewhere',
      change: (s) => {
        s.set(`autoconfig.${DOMAIN}`, 'CNAME', ['web.hosting.test'])
        s.set('web.hosting.test', 'A', ['127.0.0.9'])
      },
      expect: [
        ['autoconfig', undefined, 'different', /^CNAME points to web\.hosting\.test, not mx\.postern\.test$/],
      ],
    },
    {
      title: 'a CNAME chain that reaches the mail host (ok)',
      change: (s) => {
        s.set(`mta-sts.${DOMAIN}`, 'CNAME', ['alias.example.test'])
        s.set('alias.example.test', 'CNAME', [MAIL_HOST])
      },
      expect: [
        [
          'mta-sts',
          `mta-sts.${DOMAIN}`,
          'ok',
          /is a CNAME to alias\.example\.test but reaches mx\.postern\.test/,
        ],
      ],
    },
    {
      title: "an A record with the mail host's address instead of a CNAME (ok)",
      change: (s) => {
        s.set(`autodiscover.${DOMAIN}`, 'CNAME', undefined)
        s.set(`autodiscover.${DOMAIN}`, 'A', ['127.0.0.1'])
      },
      expect: [
        ['autodiscover', undefined, 'ok', /has no CNAME but reaches mx\.postern\.test \(127\.0\.0\.1\)/],
      ],
    },
    {
      title: 'an A record with another address',
      change: (s) => {
        s.set(`autodiscover.${DOMAIN}`, 'CNAME', undefined)
        s.set(`autodiscover.${DOMAIN}`, 'A', ['127.0.0.5'])
      },
      expect: [
        ['autodiscover', undefined, 'different', /addresses \(127\.0\.0\.5\) are not mx\.postern\.test's/],
      ],
    },
    {
      title: 'a CNAME removed',
      change: (s) => s.set(`autoconfig.${DOMAIN}`, 'CNAME', undefined),
      expect: [['autoconfig', undefined, 'missing', /^no CNAME record at autoconfig\.example\.test$/]],
    },
    {
      title: 'SERVFAIL on one name',
      change: (s) => s.fail(`_dmarc.${DOMAIN}`, 'SERVFAIL'),
      expect: [
        ['dmarc', undefined, 'error', /^TXT lookup of _dmarc\.example\.test failed: SERVFAIL \(temporary/],
      ],
    },
    {
      title: 'SERVFAIL on the domain itself',
      change: (s) => s.fail(DOMAIN, 'SERVFAIL'),
      expect: [
        ['mx', undefined, 'error', /^MX lookup of example\.test failed: SERVFAIL/],
        ['spf', undefined, 'error', /^TXT lookup of example\.test failed: SERVFAIL/],
      ],
      ready: false,
    },
    {
      title: 'REFUSED on a CNAME name',
      change: (s) => s.fail(`autoconfig.${DOMAIN}`, 'REFUSED'),
      expect: [
        ['autoconfig', undefined, 'error', /^CNAME lookup of autoconfig\.example\.test failed: REFUSED/],
      ],
    },
  ]

  for (const c of cases) {
    it(`reports ${c.title}`, async (t) => {
      const { server, resolver } = await serve(t)
      c.change(server)
      const status = await checkDomainDns(resolver, RECORDS, 1)
      const changed = c.expect.map(([purpose, name, state, detail]) => {
        const r = statusOf(status, purpose, name)
        assert.equal(r.state, state, `${id(r)}: ${r.detail}`)
        assert.match(r.detail, detail)
        return r
      })
      assertOthersOk(status, changed)
      const ready = c.ready ?? true
      assert.equal(status.verified_ready, ready)
      assert.equal(status.verified_ready, status.ownership_ok && status.mx_ok)
    })
  }

  it('says what DNS returned when a record differs', async (t) => {
    const { server, resolver } = await serve(t)
    server.set(DOMAIN, 'TXT', ['v=spf1 mx -all', 'v=spf1 a -all', 'other'])
    const status = await checkDomainDns(resolver, RECORDS, 1)
    assert.deepEqual([...statusOf(status, 'spf').found].sort(), ['other', 'v=spf1 a -all', 'v=spf1 mx -all'])
    assert.equal(statusOf(status, 'ownership').state, 'ok')
  })

  it('asks each name and type once', async (t) => {
    const { server, resolver } = await serve(t)
    const twice = [...RECORDS, { ...byKey(RECORDS, 'spf'), purpose: 'spf' as const }]
    const status = await checkDomainDns(resolver, twice, 1)
    assert.equal(status.records.length, RECORDS.length + 1)
    const apexTxt = server.queries.filter((q) => q.name === DOMAIN && q.type === 'TXT')
    assert.equal(apexTxt.length, 1)
  })
})

describe('checkDomainDns without a working resolver', () => {
  let status: DnsStatus
  before(async () => {
    const broken: Resolver = {
      resolveMx: () => {
        throw new TypeError('boom')
      },
      resolveTxt: () => Promise.reject(new Error('socket closed')),
      resolve4: () => Promise.reject(new Error('x')),
      resolve6: () => Promise.reject(new Error('x')),
      resolveCname: () => Promise.reject('not even an error'),
      resolveSrv: () => Promise.reject(new Error('x')),
      resolvePtr: () => Promise.reject(new Error('x')),
    }
    status = await checkDomainDns(broken, RECORDS, 5)
  })

  it('never throws: every checked record is an error with the reason', () => {
    for (const r of status.records) {
      assert.equal(r.state, 'error', `${id(r)}: ${r.detail}`)
    }
    assert.match(statusOf(status, 'mx').detail, /MX lookup of example\.test failed: boom/)
    assert.match(statusOf(status, 'autoconfig').detail, /not even an error/)
    assert.equal(status.verified_ready, false)
  })
})
