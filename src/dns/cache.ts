// A caching Resolver in front of another: answers are kept per (record type, lower-cased
// name; the IP for PTR) for their TTL, so SPF/DKIM/DMARC/iprev checks of inbound mail and
// outbound MX/MTA-STS lookups stop asking the DNS server the same question per message.
// Invariants:
// - A positive answer lives for the smallest TTL of its records, at most maxTtlMs; when the
//   inner resolver cannot report a TTL (no `lookupWithTtl`, or it returns null), defaultTtlMs.
//   A TTL of 0 is not cached.
// - NOTFOUND/NODATA/BADNAME (permanent DnsErrors) are kept for negativeTtlMs and rethrown as a
//   new DnsError of the same code each time; temporary errors (TIMEOUT, SERVFAIL...) and
//   non-DNS errors are never kept.
// - Identical lookups in flight share one query to the inner resolver.
// - At most maxEntries answers are kept; the least recently used goes first (a Map in
//   insertion order, re-inserted on each hit). Callers get copies and may mutate them.
// - Time comes from `now` only.

import {
  DnsError,
  lookupByType,
  type RecordType,
  type Resolver,
  type TtlAnswer,
  type TtlResolver,
} from './resolver.ts'

export interface CacheOptions {
  maxEntries: number
  maxTtlMs: number
  negativeTtlMs: number
  defaultTtlMs: number
  now: () => number
}

type Entry = { expires: number; records: unknown[] } | { expires: number; error: DnsError }

const copy = <T>(records: T[]): T[] => structuredClone(records)

export function createCachingResolver(inner: TtlResolver, opts: CacheOptions): Resolver {
  const entries = new Map<string, Entry>()
  const inFlight = new Map<string, Promise<unknown[]>>()

  const ask = async (name: string, type: RecordType): Promise<TtlAnswer<unknown>> =>
    inner.lookupWithTtl
      ? inner.lookupWithTtl(name, type)
      : { records: await lookupByType(inner, name, type), ttlMs: null }

  const store = (key: string, entry: Entry, ttlMs: number) => {
    if (ttlMs <= 0 || opts.maxEntries <= 0) return
    entries.delete(key)
    entries.set(key, entry)
    while (entries.size > opts.maxEntries) {
      const oldest = entries.keys().next().value
      if (oldest === undefined) break
      entries.delete(oldest)
    }
  }

  const lookup = async <T>(name: string, type: RecordType): Promise<T[]> => {
    const key = `${type} ${name.toLowerCase()}`
    const hit = entries.get(key)
    if (hit) {
      if (hit.expires > opts.now()) {
        entries.delete(key)
        entries.set(key, hit)
        if ('error' in hit) throw new DnsError(hit.error.code, name, type)
        return copy(hit.records) as T[]
      }
      entries.delete(key)
    }
    let pending = inFlight.get(key)
    if (!pending) {
      pending = (async () => {
        try {
          const answer = await ask(name, type)
          const ttl = Math.min(answer.ttlMs ?? opts.defaultTtlMs, opts.maxTtlMs)
          store(key, { expires: opts.now() + ttl, records: copy(answer.records) }, ttl)
          return answer.records
        } catch (err) {
          if (err instanceof DnsError && !err.temporary) {
            const ttl = Math.min(opts.negativeTtlMs, opts.maxTtlMs)
            store(key, { expires: opts.now() + ttl, error: err }, ttl)
          }
          throw err
        } finally {
          inFlight.delete(key)
        }
      })()
      inFlight.set(key, pending)
    }
    try {
      return copy(await pending) as T[]
    } catch (err) {
      if (err instanceof DnsError) throw new DnsError(err.code, name, type, { cause: err })
      throw err
    }
  }

  return {
    resolve4: (name) => lookup(name, 'A'),
    resolve6: (name) => lookup(name, 'AAAA'),
    resolveMx: (name) => lookup(name, 'MX'),
    resolveTxt: (name) => lookup(name, 'TXT'),
    resolveCname: (name) => lookup(name, 'CNAME'),
    resolveSrv: (name) => lookup(name, 'SRV'),
    resolvePtr: (ip) => lookup(ip, 'PTR'),
  }
}
