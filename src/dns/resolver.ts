// The one DNS resolver interface every DNS-dependent module receives (SPF, DKIM, DMARC,
// MTA-STS, outbound MX lookup, iprev), and the typed error it fails with.
// Invariants:
// - Every failure is a DnsError whose `code` says what happened and whose `temporary` says
//   whether asking again later may give another answer: NOTFOUND (NXDOMAIN), NODATA and
//   BADNAME are permanent, everything else (timeouts, SERVFAIL, REFUSED, unreachable
//   servers, unknown failures) is temporary. Callers branch on `temporary` (SPF temperror
//   vs permerror, outbound retry vs bounce), never on message text.
// - Names are passed as given (no trailing-dot games); results never carry trailing dots.
// - PTR lookups take an IP address; `reverseName` builds the in-addr.arpa / ip6.arpa name.
// - No implementation here resolves through anything but the servers it was given.

import { isIP, isIPv4 } from 'node:net'

export type RecordType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'CNAME' | 'PTR' | 'SRV'

export interface MxRecord {
  exchange: string
  priority: number
}

/** RFC 2782 service record. */
export interface SrvRecord {
  priority: number
  weight: number
  port: number
  target: string
}

export interface Resolver {
  resolveMx(name: string): Promise<MxRecord[]>
  /** Each record is its list of character-strings (RFC 1035 §3.3.14); join them to read it. */
  resolveTxt(name: string): Promise<string[][]>
  resolve4(name: string): Promise<string[]>
  resolve6(name: string): Promise<string[]>
  resolveCname(name: string): Promise<string[]>
  resolveSrv(name: string): Promise<SrvRecord[]>
  /** Reverse lookup of an IP address (the PTR records of its reverse name). */
  resolvePtr(ip: string): Promise<string[]>
}

/** An answer with the TTL the server gave it (null when the resolver cannot tell). */
export interface TtlAnswer<T> {
  records: T[]
  ttlMs: number | null
}

/** A resolver that can also report TTLs (the system resolver does, for A/AAAA; cache.ts uses it). */
export interface TtlResolver extends Resolver {
  lookupWithTtl?(name: string, type: RecordType): Promise<TtlAnswer<unknown>>
}

/** The lookup of one record type by its name: the one place mapping a RecordType to a method. */
export function lookupByType(resolver: Resolver, name: string, type: RecordType): Promise<unknown[]> {
  switch (type) {
    case 'A':
      return resolver.resolve4(name)
    case 'AAAA':
      return resolver.resolve6(name)
    case 'MX':
      return resolver.resolveMx(name)
    case 'TXT':
      return resolver.resolveTxt(name)
    case 'CNAME':
      return resolver.resolveCname(name)
    case 'SRV':
      return resolver.resolveSrv(name)
    case 'PTR':
      return resolver.resolvePtr(name)
  }
}

const RECORD_TYPES: ReadonlySet<string> = new Set<RecordType>([
  'A',
  'AAAA',
  'MX',
  'TXT',
  'CNAME',
  'SRV',
  'PTR',
])

export type DnsErrorCode =
  | 'NOTFOUND' // NXDOMAIN: the name does not exist
  | 'NODATA' // the name exists but has no record of this type
  | 'BADNAME' // the name (or IP) is malformed; no query was sent
  | 'TIMEOUT'
  | 'SERVFAIL'
  | 'REFUSED'
  | 'CONNREFUSED' // could not reach any server
  | 'BADRESP' // malformed reply
  | 'FORMERR' // the server could not parse our query
  | 'NOTIMP'
  | 'CANCELLED'
  | 'OTHER'

const PERMANENT: ReadonlySet<DnsErrorCode> = new Set(['NOTFOUND', 'NODATA', 'BADNAME'])

export const isTemporaryDnsCode = (code: DnsErrorCode): boolean => !PERMANENT.has(code)

export class DnsError extends Error {
  readonly code: DnsErrorCode
  readonly temporary: boolean
  /** The name (or IP, for PTR) that was looked up. */
  readonly hostname: string
  readonly rrtype: RecordType

  constructor(code: DnsErrorCode, hostname: string, rrtype: RecordType, options?: { cause?: unknown }) {
    super(`DNS ${rrtype} lookup of ${hostname} failed: ${code}`, options)
    this.name = 'DnsError'
    this.code = code
    this.temporary = isTemporaryDnsCode(code)
    this.hostname = hostname
    this.rrtype = rrtype
  }
}

export const isDnsError = (err: unknown): err is DnsError => err instanceof DnsError

/** True for NXDOMAIN and NODATA: the DNS answered that there is nothing. */
export const isNoRecords = (err: unknown): boolean =>
  err instanceof DnsError && (err.code === 'NOTFOUND' || err.code === 'NODATA')

/** The reverse-lookup name of an IP address: `4.3.2.1.in-addr.arpa`, nibbles under `ip6.arpa`. */
export function reverseName(ip: string): string {
  if (isIPv4(ip)) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`
  if (isIP(ip) !== 6) throw new DnsError('BADNAME', ip, 'PTR')
  const groups = expandIPv6(ip)
  const nibbles = groups
    .map((g) => g.padStart(4, '0'))
    .join('')
    .split('')
  return `${nibbles.reverse().join('.')}.ip6.arpa`
}

/** The IP address a reverse name stands for, or null if `name` is not a reverse name. */
export function fromReverseName(name: string): string | null {
  const n = name.toLowerCase().replace(/\.$/, '')
  if (n.endsWith('.in-addr.arpa')) {
    const parts = n.slice(0, -'.in-addr.arpa'.length).split('.')
    const ip = parts.reverse().join('.')
    return parts.length === 4 && isIPv4(ip) ? ip : null
  }
  if (n.endsWith('.ip6.arpa')) {
    const nibbles = n.slice(0, -'.ip6.arpa'.length).split('.').reverse()
    if (nibbles.length !== 32 || !nibbles.every((x) => /^[0-9a-f]$/.test(x))) return null
    const hex = nibbles.join('')
    const groups: string[] = []
    for (let i = 0; i < 32; i += 4) groups.push(hex.slice(i, i + 4).replace(/^0+(?=.)/, ''))
    return groups.join(':')
  }
  return null
}

/** Eight hex groups of an IPv6 address (with an embedded IPv4 tail converted). */
function expandIPv6(ip: string): string[] {
  let s = ip.toLowerCase()
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  if (v4?.[1]) {
    const o = v4[1].split('.').map(Number)
    const hi = (((o[0] ?? 0) << 8) | (o[1] ?? 0)).toString(16)
    const lo = (((o[2] ?? 0) << 8) | (o[3] ?? 0)).toString(16)
    s = `${s.slice(0, -v4[1].length)}${hi}:${lo}`
  }
  const [head = '', tail] = s.split('::')
  const h = head ? head.split(':') : []
  if (tail === undefined) return h
  const t = tail ? tail.split(':') : []
  return [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
}

// ---- mailauth adapter ----

/** The resolver shape mailauth 7 takes (`resolver` option): like `dns.promises.resolve`. */
export type MailauthResolver = (name: string, rrtype: string) => Promise<unknown[]>

/** Node's error codes for each DnsError code; mailauth branches on `err.code`. */
const NODE_CODES: Record<DnsErrorCode, string> = {
  NOTFOUND: 'ENOTFOUND',
  NODATA: 'ENODATA',
  BADNAME: 'EBADNAME',
  TIMEOUT: 'ETIMEOUT',
  SERVFAIL: 'ESERVFAIL',
  REFUSED: 'EREFUSED',
  CONNREFUSED: 'ECONNREFUSED',
  BADRESP: 'EBADRESP',
  FORMERR: 'EFORMERR',
  NOTIMP: 'ENOTIMP',
  CANCELLED: 'ECANCELLED',
  OTHER: 'ESERVFAIL',
}

/**
 * Adapts a Resolver to mailauth's `(name, rrtype)` function. Errors are rethrown with Node's
 * codes (`ENOTFOUND`, `ENODATA`, `ETIMEOUT`...), which is what mailauth inspects to tell
 * none/permerror from temperror; the DnsError is kept as `cause`. PTR accepts either an IP
 * or a reverse name. Other record types fail with `ENOTIMP` (nothing is sent).
 */
export function toMailauthResolver(resolver: Resolver): MailauthResolver {
  const lookup = (name: string, rrtype: string): Promise<unknown[]> => {
    const type = rrtype.toUpperCase()
    if (!RECORD_TYPES.has(type))
      return Promise.reject(
        Object.assign(new Error(`DNS ${rrtype} lookups are not supported`), {
          code: 'ENOTIMP',
          hostname: name,
        }),
      )
    const ptrName = type === 'PTR' && !isIP(name) ? (fromReverseName(name) ?? name) : name
    return lookupByType(resolver, ptrName, type as RecordType)
  }
  return async (name, rrtype) => {
    try {
      return await lookup(name, rrtype)
    } catch (err) {
      if (!(err instanceof DnsError)) throw err
      throw Object.assign(new Error(err.message, { cause: err }), {
        code: NODE_CODES[err.code],
        hostname: err.hostname,
        temporary: err.temporary,
      })
    }
  }
}
