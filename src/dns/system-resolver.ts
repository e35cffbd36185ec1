// The production resolver: node:dns/promises' Resolver (c-ares), pinned to the configured
// servers (`dns.servers`, `dns.timeout_ms`) or, when the list is empty, to the system's
// resolver configuration.
// Invariants:
// - Every DNS failure comes out as a DnsError (see resolver.ts); Node's E* codes never leak.
//   An error without a code is a bug, not an answer, and passes through unchanged.
// - Non-ASCII names are converted to A-labels before the query (c-ares would send UTF-8).
// - `timeoutMs` bounds one attempt against one server; c-ares makes `tries` attempts per
//   server (default 2) without growing the timeout between them (measured: tries 2 at
//   200 ms fails with TIMEOUT after about 400 ms).
// - PTR answers come from DNS only, never from /etc/hosts.
// - `lookupWithTtl` reports the smallest TTL of an A/AAAA answer (node:dns gives TTLs for
//   those two types only); for the other types it reports null (the cache's default).

import { Resolver as NodeResolver } from 'node:dns/promises'
import { isIP } from 'node:net'
import { domainToASCII } from 'node:url'
import {
  DnsError,
  type DnsErrorCode,
  lookupByType,
  type RecordType,
  reverseName,
  type TtlAnswer,
  type TtlResolver,
} from './resolver.ts'

export interface SystemResolverOptions {
  /** `ip`, `ip:port`, `ipv6` or `[ipv6]:port`; empty uses the system configuration. */
  servers: readonly string[]
  timeoutMs: number
  /** Attempts per server before giving up (default 2). */
  tries?: number
}

/** Checks a `dns.servers` entry and returns it in the form Resolver.setServers takes. */
export function parseServer(entry: string): string {
  const s = entry.trim()
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s)
  let ip: string
  let port: string | undefined
  if (bracketed) {
    ip = bracketed[1] ?? ''
    port = bracketed[2]
  } else if (isIP(s)) {
    ip = s
  } else {
    const m = /^([^:]+):(\d+)$/.exec(s)
    ip = m?.[1] ?? ''
    port = m?.[2]
  }
  const n = port === undefined ? 53 : Number(port)
  if (!isIP(ip) || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new Error(`dns.servers: '${entry}' is not an ip, ip:port or [ipv6]:port`)
  }
  if (port === undefined) return ip
  return isIP(ip) === 6 ? `[${ip}]:${n}` : `${ip}:${n}`
}

const NODE_CODE_MAP: Record<string, DnsErrorCode> = {
  ENOTFOUND: 'NOTFOUND',
  ENODATA: 'NODATA',
  ETIMEOUT: 'TIMEOUT',
  ETIMEDOUT: 'TIMEOUT',
  ESERVFAIL: 'SERVFAIL',
  EREFUSED: 'REFUSED',
  ECONNREFUSED: 'CONNREFUSED',
  EBADRESP: 'BADRESP',
  EBADSTR: 'BADRESP',
  EFORMERR: 'FORMERR',
  ENOTIMP: 'NOTIMP',
  EBADNAME: 'BADNAME',
  EBADQUERY: 'BADNAME',
  EBADFAMILY: 'BADNAME',
  ECANCELLED: 'CANCELLED',
  EDESTRUCTION: 'CANCELLED',
}

/**
 * Maps an error from node:dns to a DnsError (unknown codes are OTHER, i.e. temporary).
 * Errors without a code (bugs, not DNS answers) are returned unchanged.
 */
export function fromNodeError(err: unknown, hostname: string, rrtype: RecordType): unknown {
  if (err instanceof DnsError) return err
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return err
  return new DnsError(NODE_CODE_MAP[code] ?? 'OTHER', hostname, rrtype, { cause: err })
}

const toAscii = (name: string): string => {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: checking for non-ASCII on purpose
  if (/^[\x00-\x7f]*$/.test(name)) return name
  return domainToASCII(name) || name
}

export function createResolver(opts: SystemResolverOptions): TtlResolver {
  const r = new NodeResolver({ timeout: opts.timeoutMs, tries: opts.tries ?? 2, maxTimeout: opts.timeoutMs })
  if (opts.servers.length > 0) r.setServers(opts.servers.map(parseServer))

  const query = async <T>(
    rrtype: RecordType,
    name: string,
    run: (ascii: string) => Promise<T>,
  ): Promise<T> => {
    try {
      return await run(toAscii(name))
    } catch (err) {
      throw fromNodeError(err, name, rrtype)
    }
  }

  const withTtl = async (name: string, rrtype: 'A' | 'AAAA'): Promise<TtlAnswer<string>> => {
    const answers = await query(rrtype, name, (n) =>
      rrtype === 'A' ? r.resolve4(n, { ttl: true }) : r.resolve6(n, { ttl: true }),
    )
    const ttl = answers.reduce((min, a) => Math.min(min, a.ttl), Number.POSITIVE_INFINITY)
    return { records: answers.map((a) => a.address), ttlMs: Number.isFinite(ttl) ? ttl * 1000 : null }
  }

  const resolver: TtlResolver = {
    // Node adds a `type` field to each MX record; keep the interface's two.
    resolveMx: (name) =>
      query('MX', name, async (n) =>
        (await r.resolveMx(n)).map(({ exchange, priority }) => ({ exchange, priority })),
      ),
    resolveTxt: (name) => query('TXT', name, (n) => r.resolveTxt(n)),
    resolve4: (name) => query('A', name, (n) => r.resolve4(n)),
    resolve6: (name) => query('AAAA', name, (n) => r.resolve6(n)),
    resolveCname: (name) => query('CNAME', name, (n) => r.resolveCname(n)),
    resolveSrv: (name) =>
      query('SRV', name, async (n) =>
        (await r.resolveSrv(n)).map(({ priority, weight, port, name: target }) => ({
          priority,
          weight,
          port,
          target,
        })),
      ),
    // A PTR query for the reverse name, not r.reverse(): that one answers from /etc/hosts first.
    resolvePtr: (ip) =>
      isIP(ip)
        ? query('PTR', ip, () => r.resolvePtr(reverseName(ip)))
        : Promise.reject(new DnsError('BADNAME', ip, 'PTR')),
    lookupWithTtl: async (name, type) =>
      type === 'A' || type === 'AAAA'
        ? withTtl(name, type)
        : { records: await lookupByType(resolver, name, type), ttlMs: null },
  }
  return resolver
}
