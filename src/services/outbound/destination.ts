// Where mail for a domain goes: the MX lookup of RFC 5321 5.1 with the null MX of RFC 7505,
// reduced to an ordered list of IP targets, or the permanent or temporary reason there is
// none. Every lookup made is returned as a DnsStep for the message trace.
// Invariants:
// - Targets are IP literals the `allows` predicate (the connect guard, `net.connect_allow`)
//   accepted, in MX preference order (DNS order within one preference), IPv4 before IPv6 for
//   each host, no address twice, at most MAX_TARGETS. `host` is the MX name, lower case,
//   without a trailing dot; it is for TLS SNI and logs only.
// - Outcomes: a null MX (one MX whose exchange is '.') is permanent 5.1.10; NXDOMAIN on the
//   MX query is permanent 5.1.2; no MX records (NODATA) makes the domain its own MX with
//   preference 0; a temporary DNS failure on the MX query is temporary 4.4.3.
// - A host that is one of ours (localHosts, case and trailing dot ignored) drops itself and
//   every record of equal or lower preference (RFC 5321 5.1: we may be a backup MX); when
//   nothing is left that is a mail loop, permanent 5.4.6.
// - With no usable target: temporary 4.4.3 when any host lookup failed temporarily (asking
//   again may find one), else permanent 5.4.4, worded for the case: addresses all refused by
//   `allows`, or no host resolving at all.
// - Never throws: a resolver that fails with something other than a DnsError counts as a
//   temporary failure.

import { isDnsError, type MxRecord, type Resolver } from '../../dns/resolver.ts'
import { CONNECT_ALLOW_KEY } from '../../net/connect-guard.ts'

/** At most this many targets are returned, and at most this many MX hosts are resolved. */
export const MAX_TARGETS = 10

export interface DnsStep {
  query: string
  type: 'MX' | 'A' | 'AAAA'
  /** MX answers are written `<preference> <exchange>`. */
  answers: string[]
  /** The DnsError code (NOTFOUND, NODATA, TIMEOUT...) or the message of another failure. */
  error?: string
}

export interface DestinationTarget {
  host: string
  ip: string
  port: number
  preference: number
}

export type DestinationResult =
  | { kind: 'ok'; targets: DestinationTarget[]; dns: DnsStep[] }
  | { kind: 'permanent' | 'temporary'; reason: string; enhanced: string; dns: DnsStep[] }

export interface DestinationDeps {
  resolver: Resolver
  /** The connect guard's predicate: may this IP be connected to? */
  allows: (ip: string) => boolean
  /** This server's own host names (its EHLO name and the names our MX records point at). */
  localHosts: readonly string[]
  port: number
}

const canonical = (name: string): string => name.trim().toLowerCase().replace(/\.$/, '')

type Lookup<T> = { ok: true; records: T[] } | { ok: false; code: string; temporary: boolean }

async function lookup<T>(
  query: string,
  type: DnsStep['type'],
  run: () => Promise<T[]>,
  show: (r: T) => string,
): Promise<{ step: DnsStep; result: Lookup<T> }> {
  try {
    const records = await run()
    return { step: { query, type, answers: records.map(show) }, result: { ok: true, records } }
  } catch (err) {
    const code = isDnsError(err) ? err.code : err instanceof Error ? err.message : String(err)
    const temporary = isDnsError(err) ? err.temporary : true
    return { step: { query, type, answers: [], error: code }, result: { ok: false, code, temporary } }
  }
}

interface HostAddresses {
  host: string
  preference: number
  ips: string[]
  /** Some lookup failed temporarily and none gave an address. */
  temporary: boolean
}

async function resolveHost(
  resolver: Resolver,
  host: string,
  preference: number,
): Promise<{ steps: DnsStep[]; found: HostAddresses }> {
  const [a, aaaa] = await Promise.all([
    lookup(host, 'A', () => resolver.resolve4(host), String),
    lookup(host, 'AAAA', () => resolver.resolve6(host), String),
  ])
  const ips: string[] = []
  let temporary = false
  for (const { result } of [a, aaaa]) {
    if (result.ok) ips.push(...result.records)
    else if (result.temporary) temporary = true
  }
  return { steps: [a.step, aaaa.step], found: { host, preference, ips, temporary: temporary && !ips.length } }
}

/**
 * The targets to try, in order, for mail to `domain` (an ASCII domain name), or why there are
 * none. Looks up MX, then A and AAAA of the chosen hosts (concurrently; the trace keeps
 * order: MX, then each host's A and AAAA).
 */
export async function resolveDestination(domain: string, deps: DestinationDeps): Promise<DestinationResult> {
  const dns: DnsStep[] = []
  const fail = (kind: 'permanent' | 'temporary', enhanced: string, reason: string): DestinationResult => ({
    kind,
    reason,
    enhanced,
    dns,
  })
  const name = canonical(domain)

  const mx = await lookup<MxRecord>(
    name,
    'MX',
    () => deps.resolver.resolveMx(name),
    (r) => `${r.priority} ${r.exchange || '.'}`,
  )
  dns.push(mx.step)

  let hosts: { host: string; preference: number }[]
  let implicit = false
  if (mx.result.ok && mx.result.records.length > 0) {
    const records = mx.result.records
    if (records.length === 1 && canonical(records[0]?.exchange ?? '') === '') {
      return fail('permanent', '5.1.10', 'domain does not accept mail (null MX, RFC 7505)')
    }
    hosts = records
      .map((r) => ({ host: canonical(r.exchange), preference: r.priority }))
      .filter((h) => h.host !== '') // a null MX among real ones is ignored
      .sort((x, y) => x.preference - y.preference) // stable: DNS order within a preference
  } else if (mx.result.ok || mx.result.code === 'NODATA') {
    hosts = [{ host: name, preference: 0 }] // RFC 5321 5.1: the domain is its own MX
    implicit = true
  } else if (mx.result.temporary) {
    return fail('temporary', '4.4.3', `temporary DNS failure looking up MX records (${mx.result.code})`)
  } else {
    return fail('permanent', '5.1.2', `domain does not exist (${mx.result.code})`)
  }

  // Duplicates go (the most preferred stays), and when we are one of the MX hosts, so do we
  // and every host not more preferred than us.
  const ours = new Set(deps.localHosts.map(canonical))
  const self = hosts.find((h) => ours.has(h.host))
  const seen = new Set<string>()
  const candidates = hosts.filter((h) => {
    if ((self && h.preference >= self.preference) || seen.has(h.host)) return false
    seen.add(h.host)
    return true
  })
  if (candidates.length === 0) {
    return fail('permanent', '5.4.6', `MX points back at this server (mail loop): ${self?.host ?? name}`)
  }

  const resolved = await Promise.all(
    candidates.slice(0, MAX_TARGETS).map((h) => resolveHost(deps.resolver, h.host, h.preference)),
  )
  const targets: DestinationTarget[] = []
  const used = new Set<string>()
  let anyAddress = false
  let anyTemporary = false
  for (const { steps, found } of resolved) {
    dns.push(...steps)
    if (found.temporary) anyTemporary = true
    for (const ip of found.ips) {
      anyAddress = true
      if (used.has(ip) || !deps.allows(ip)) continue
      used.add(ip)
      targets.push({ host: found.host, ip, port: deps.port, preference: found.preference })
    }
  }

  if (targets.length > 0) return { kind: 'ok', targets: targets.slice(0, MAX_TARGETS), dns }
  if (anyTemporary) return fail('temporary', '4.4.3', 'temporary DNS failure resolving the mail hosts')
  if (anyAddress) {
    return fail(
      'permanent',
      '5.4.4',
      `refused: the destination resolves only to private, loopback or link-local addresses (${CONNECT_ALLOW_KEY})`,
    )
  }
  return fail(
    'permanent',
    '5.4.4',
    implicit ? 'domain has no MX, A or AAAA records' : 'no mail host of the domain resolves to an address',
  )
}
