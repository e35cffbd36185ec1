// A Resolver answering from an in-memory zone table, for unit tests and development (after
// mailauth's test/helpers/dns-zone.js and mox's dns.MockResolver). The same Zone format feeds
// the loopback DNS server in test/helpers/dns-server.ts.
// Invariants:
// - It answers like a DNS server would: names match case-insensitively and without a
//   trailing dot; an unknown name is NOTFOUND, a known name without the type is NODATA; a
//   CNAME is followed (up to 8 hops) for every other type, as a recursive server does.
// - A zone key that is an IP literal stands for its reverse name, so PTR records may be
//   written under the IP (`'192.0.2.1': { PTR: ['mx.example.com'] }`).
// - Every lookup is recorded in `calls`, including failed ones, in order.
// - Results are copies: callers may mutate them without changing the zone.

import { isIP } from 'node:net'
import {
  DnsError,
  type DnsErrorCode,
  type MxRecord,
  type RecordType,
  type Resolver,
  reverseName,
  type SrvRecord,
} from './resolver.ts'

export interface ZoneRecords {
  A?: readonly string[]
  AAAA?: readonly string[]
  MX?: readonly MxRecord[]
  /** One entry per record: its character-strings, or one string (split at 255 octets on the wire). */
  TXT?: readonly (string | readonly string[])[]
  CNAME?: readonly string[]
  PTR?: readonly string[]
  SRV?: readonly SrvRecord[]
}

export type Zone = Record<string, ZoneRecords>

export type ZoneValue<T extends RecordType> = NonNullable<ZoneRecords[T]>

export interface DnsQuery {
  name: string
  type: RecordType
}

export interface StaticFailure {
  name: string
  /** Omitted: every type fails for this name. */
  type?: RecordType
  code: DnsErrorCode
}

export interface StaticResolver extends Resolver {
  /** Every lookup made, in order (PTR lookups record the IP as given). */
  readonly calls: DnsQuery[]
  /** Replaces the records of one type for a name; `undefined` removes them. */
  set<T extends RecordType>(name: string, type: T, records: ZoneValue<T> | undefined): void
  /** Makes lookups of `name` (of `type`, or of every type) fail with `code`. */
  fail(name: string, code: DnsErrorCode, type?: RecordType): void
  /** Removes the failures set for `name`. */
  unfail(name: string): void
}

/** Lower-case, no trailing dot; IP literals become their reverse name. */
export function canonicalName(name: string): string {
  const n = name.trim().toLowerCase().replace(/\.$/, '')
  return isIP(n) ? reverseName(n) : n
}

/** The character-strings of one TXT record as they travel on the wire (each at most 255 octets). */
export function txtStrings(record: string | readonly string[]): string[] {
  const out: string[] = []
  for (const s of typeof record === 'string' ? [record] : record) {
    const bytes = Buffer.from(s, 'utf8')
    if (bytes.length <= 255) {
      out.push(s)
      continue
    }
    for (let i = 0; i < bytes.length; i += 255) out.push(bytes.subarray(i, i + 255).toString('utf8'))
  }
  return out
}

const MAX_CNAME_HOPS = 8

type Lookup<T> = { ok: true; records: T[] } | { ok: false; code: DnsErrorCode }

/** Looks a name up in a zone the way a recursive server answers: follows CNAMEs, NXDOMAIN vs NODATA. */
export function lookupZone<T extends RecordType>(
  zone: Zone,
  name: string,
  type: T,
): Lookup<ZoneValue<T>[number]> {
  let current = canonicalName(name)
  for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
    const entry = zone[current]
    if (!entry) return hop === 0 ? { ok: false, code: 'NOTFOUND' } : { ok: false, code: 'NODATA' }
    const records = entry[type] as ZoneValue<T> | undefined
    if (records && records.length > 0) return { ok: true, records: [...records] }
    const target = type === 'CNAME' ? undefined : entry.CNAME?.[0]
    if (!target) return { ok: false, code: 'NODATA' }
    current = canonicalName(target)
  }
  return { ok: false, code: 'SERVFAIL' }
}

export function createStaticResolver(
  zone: Zone = {},
  opts: { fail?: readonly StaticFailure[] } = {},
): StaticResolver {
  const table: Zone = {}
  for (const [name, records] of Object.entries(zone)) table[canonicalName(name)] = { ...records }
  const failures: StaticFailure[] = (opts.fail ?? []).map((f) => ({ ...f, name: canonicalName(f.name) }))
  const calls: DnsQuery[] = []

  const query = async <T extends RecordType>(name: string, type: T): Promise<ZoneValue<T>[number][]> => {
    calls.push({ name, type })
    const key = canonicalName(name)
    const failure = failures.find((f) => f.name === key && (f.type === undefined || f.type === type))
    if (failure) throw new DnsError(failure.code, name, type)
    const result = lookupZone(table, key, type)
    if (!result.ok) throw new DnsError(result.code, name, type)
    return result.records
  }

  return {
    calls,
    resolveMx: async (name) => (await query(name, 'MX')).map((mx) => ({ ...mx })),
    resolveTxt: async (name) => (await query(name, 'TXT')).map(txtStrings),
    resolve4: (name) => query(name, 'A'),
    resolve6: (name) => query(name, 'AAAA'),
    resolveCname: (name) => query(name, 'CNAME'),
    resolveSrv: async (name) => (await query(name, 'SRV')).map((r) => ({ ...r })),
    resolvePtr: async (ip) => {
      if (!isIP(ip)) {
        calls.push({ name: ip, type: 'PTR' })
        throw new DnsError('BADNAME', ip, 'PTR')
      }
      return query(ip, 'PTR')
    },
    set(name, type, records) {
      const key = canonicalName(name)
      const entry: ZoneRecords = { ...table[key] }
      if (records === undefined) delete entry[type]
      else (entry as Record<RecordType, unknown>)[type] = records
      table[key] = entry
    },
    fail(name, code, type) {
      failures.push({ name: canonicalName(name), code, ...(type ? { type } : {}) })
    },
    unfail(name) {
      const key = canonicalName(name)
      for (let i = failures.length - 1; i >= 0; i--) if (failures[i]?.name === key) failures.splice(i, 1)
    },
  }
}
