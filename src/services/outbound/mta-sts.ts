// MTA-STS policies of destination domains (RFC 8461): discovery through the `_mta-sts` TXT
// record, the HTTPS fetch of `https://mta-sts.<domain>/.well-known/mta-sts.txt` with Postern's
// own client (src/net/https-get.ts), and the cache, kept in the database so every node shares
// it. Only mailauth's `parsePolicy` is used (loaded on the first fetch; its module pulls in half
// of mailauth); mailauth resolves and connects by itself, which Postern never lets a library do.
// MX matching (4.1) is done here.
// Invariants:
// - lookup() never throws: a DNS or fetch failure is reported in `problem`, never as an error
//   that would stop a delivery attempt.
// - A cached policy is applied until its expiry (fetched_at + max_age). Within that time it is
//   fetched again only when the TXT id differs from the one it was fetched under (3.3, 5.1).
// - When no policy can be fetched (no TXT record, a broken policy host) the cached one, if not
//   expired, is applied; without one the domain is treated as having no MTA-STS (3.3).
// - A fetch that failed is not retried for the same TXT id for FAILED_RETRY_MS, so a broken
//   policy host costs one timeout every few minutes, not one per message.
// - The fetch accepts only HTTP 200 with media type text/plain, follows no redirect and reads at
//   most MAX_POLICY_BYTES (3.3); max_age is capped at MAX_AGE_SECONDS (3.2).
// - Each process also remembers a lookup for MEMO_MS (never past the policy's expiry), like the
//   MX answers in deliver.ts, so a stream of mail to one domain does not ask DNS per message.

import { domainToASCII } from 'node:url'
import type * as MtaStsLib from 'mailauth/lib/mta-sts.js'
import type { Resolver } from '../../dns/resolver.ts'
import { isDnsError } from '../../dns/resolver.ts'
import type { Logger } from '../../log/logger.ts'
import type { HttpsGet } from '../../net/https-get.ts'
import type { Store } from '../../store/db.ts'
import type { Clock } from '../../time/clock.ts'

export type MtaStsMode = 'enforce' | 'testing' | 'none'

export interface MtaStsPolicy {
  /** The TXT record id it was fetched under. */
  id: string
  mode: MtaStsMode
  /** The mx patterns (`mx.example.com`, `*.example.net`), lower case. */
  mx: string[]
  maxAgeSeconds: number
  fetchedAt: number
  expiresAt: number
}

export interface MtaStsLookup {
  domain: string
  /** The policy to apply, or null (no MTA-STS for this domain now). */
  policy: MtaStsPolicy | null
  /** fetched: just now; cached: from the database; none: the domain publishes none; unavailable: one is announced but could not be fetched. */
  source: 'fetched' | 'cached' | 'none' | 'unavailable'
  /** The TXT id seen now, or null when there is no usable record. */
  txtId: string | null
  /** What went wrong on the way (a failed TXT lookup or fetch), for the trace; null when nothing did. */
  problem: string | null
}

export interface MtaStsDeps {
  store: Store
  resolver: Pick<Resolver, 'resolveTxt'>
  clock: Clock
  httpsGet: HttpsGet
  /** Port of the policy hosts (443; tests use a local server). */
  port: number
  timeoutMs: number
  log?: Logger
}

export interface MtaSts {
  lookup(domain: string): Promise<MtaStsLookup>
}

/** RFC 8461 3.3 suggests 64 KiB as the most a sender reads. */
export const MAX_POLICY_BYTES = 64 * 1024
/** RFC 8461 3.2: max_age is at most 31557600 seconds (about a year). */
export const MAX_AGE_SECONDS = 31_557_600
export const FAILED_RETRY_MS = 5 * 60_000
const MEMO_MS = 60_000
const POLICY_PATH = '/.well-known/mta-sts.txt'

const canonical = (domain: string): string => domain.trim().toLowerCase().replace(/\.$/, '')

/** True when `host` (an MX host name) matches one of the policy's mx patterns (RFC 8461 4.1). */
export function mxMatches(policy: Pick<MtaStsPolicy, 'mode' | 'mx'>, host: string): boolean {
  const name = aLabels(host)
  return policy.mx.some((pattern) => {
    // "*.example.net" stands for exactly one more leftmost label.
    if (!pattern.startsWith('*.')) return aLabels(pattern) === name
    const dot = name.indexOf('.')
    return dot > 0 && name.slice(dot + 1) === aLabels(pattern.slice(2))
  })
}

/** A host name in lower-case A-labels, without a trailing dot. */
function aLabels(host: string): string {
  const name = canonical(host)
  return domainToASCII(name) || name
}

let mtaStsLib: Promise<typeof MtaStsLib> | null = null
const loadMtaStsLib = () => {
  mtaStsLib ??= import('mailauth/lib/mta-sts.js')
  return mtaStsLib
}

type Discovery =
  | { kind: 'id'; id: string }
  | { kind: 'none'; reason: string }
  | { kind: 'error'; reason: string }

/** RFC 8461 3.1: exactly one TXT record starting `v=STSv1;` at `_mta-sts.<domain>`, with an id. */
export async function discoverPolicyId(
  resolver: Pick<Resolver, 'resolveTxt'>,
  domain: string,
): Promise<Discovery> {
  const name = `_mta-sts.${canonical(domain)}`
  let records: string[][]
  try {
    records = await resolver.resolveTxt(name)
  } catch (err) {
    if (isDnsError(err) && !err.temporary) return { kind: 'none', reason: `no TXT record at ${name}` }
    return { kind: 'error', reason: `TXT lookup of ${name} failed: ${(err as Error).message}` }
  }
  const sts = records.map((r) => r.join('')).filter((r) => /^v=STSv1[ \t]*;/.test(r))
  if (sts.length === 0) return { kind: 'none', reason: `no v=STSv1 TXT record at ${name}` }
  if (sts.length > 1)
    return { kind: 'none', reason: `${sts.length} v=STSv1 TXT records at ${name} (one is allowed)` }
  for (const field of (sts[0] as string).split(';').slice(1)) {
    const m = /^[ \t]*id=([A-Za-z0-9]{1,32})[ \t]*$/.exec(field)
    if (m) return { kind: 'id', id: m[1] as string }
  }
  return { kind: 'none', reason: `the TXT record at ${name} has no valid id` }
}

/** Fetches and parses the policy of `domain`; throws an Error saying why it is not usable. */
export async function fetchPolicy(
  deps: Pick<MtaStsDeps, 'httpsGet' | 'port' | 'timeoutMs'>,
  domain: string,
): Promise<Pick<MtaStsPolicy, 'mode' | 'mx' | 'maxAgeSeconds'>> {
  const host = `mta-sts.${canonical(domain)}`
  const res = await deps.httpsGet({
    host,
    port: deps.port,
    path: POLICY_PATH,
    timeoutMs: deps.timeoutMs,
    maxBytes: MAX_POLICY_BYTES,
  })
  const url = `https://${host}${POLICY_PATH}`
  if (res.status >= 300 && res.status < 400)
    throw new Error(
      `${url} answered ${res.status} (a redirect${res.location ? ` to ${res.location}` : ''}); RFC 8461 3.3 forbids following it`,
    )
  if (res.status !== 200) throw new Error(`${url} answered HTTP ${res.status}`)
  const media = (res.contentType ?? '').split(';')[0]?.trim().toLowerCase()
  if (media !== 'text/plain')
    throw new Error(
      `${url} is served as ${res.contentType ? `'${res.contentType}'` : 'no type'}, not text/plain`,
    )
  const { parsePolicy } = await loadMtaStsLib()
  let parsed: ReturnType<typeof parsePolicy>
  try {
    parsed = parsePolicy(res.body)
  } catch (err) {
    throw new Error(`${url} is not a valid policy: ${(err as Error).message}`)
  }
  return {
    mode: parsed.mode,
    mx: (parsed.mx ?? []).map((p) => p.toLowerCase()),
    maxAgeSeconds: Math.min(Math.max(Math.trunc(parsed.maxAge ?? 0), 0), MAX_AGE_SECONDS),
  }
}

type Row = {
  policy_id: string | null
  mode: string | null
  mx: string | null
  max_age: number | string | null
  fetched_at: number | string | null
  expires_at: number | string | null
  failed_id: string | null
  failed_at: number | string | null
}

function policyOf(row: Row | undefined): MtaStsPolicy | null {
  if (!row || row.policy_id === null || row.mode === null || row.expires_at === null) return null
  let mx: string[] = []
  try {
    const parsed: unknown = JSON.parse(row.mx ?? '[]')
    if (Array.isArray(parsed)) mx = parsed.filter((x): x is string => typeof x === 'string')
  } catch {
    return null
  }
  return {
    id: row.policy_id,
    mode: row.mode as MtaStsMode,
    mx,
    maxAgeSeconds: Number(row.max_age ?? 0),
    fetchedAt: Number(row.fetched_at ?? 0),
    expiresAt: Number(row.expires_at),
  }
}

export function createMtaSts(deps: MtaStsDeps): MtaSts {
  const memo = new Map<string, { until: number; result: MtaStsLookup }>()
  const db = deps.store.db

  async function save(domain: string, set: Record<string, unknown>, now: number): Promise<void> {
    await db
      .insertInto('mta_sts_policies')
      .values({ domain, ...set, updated_at: now })
      .onConflict((oc) => oc.column('domain').doUpdateSet({ ...set, updated_at: now }))
      .execute()
  }

  async function resolve(domain: string, now: number): Promise<MtaStsLookup> {
    const row = await db
      .selectFrom('mta_sts_policies')
      .select(['policy_id', 'mode', 'mx', 'max_age', 'fetched_at', 'expires_at', 'failed_id', 'failed_at'])
      .where('domain', '=', domain)
      .executeTakeFirst()
    const stored = policyOf(row)
    const cached = stored && stored.expiresAt > now ? stored : null
    const fallback = (problem: string, txtId: string | null, announced: boolean): MtaStsLookup =>
      cached
        ? { domain, policy: cached, source: 'cached', txtId, problem }
        : { domain, policy: null, source: announced ? 'unavailable' : 'none', txtId, problem }

    const found = await discoverPolicyId(deps.resolver, domain)
    if (found.kind === 'error') return fallback(found.reason, null, true)
    if (found.kind === 'none')
      return cached
        ? { domain, policy: cached, source: 'cached', txtId: null, problem: found.reason }
        : { domain, policy: null, source: 'none', txtId: null, problem: null }
    if (cached && cached.id === found.id)
      return { domain, policy: cached, source: 'cached', txtId: found.id, problem: null }
    if (
      row?.failed_id === found.id &&
      row.failed_at !== null &&
      now - Number(row.failed_at) < FAILED_RETRY_MS
    )
      return fallback(
        `the policy for TXT id ${found.id} could not be fetched a moment ago; not asking again yet`,
        found.id,
        true,
      )

    try {
      const p = await fetchPolicy(deps, domain)
      const policy: MtaStsPolicy = {
        id: found.id,
        ...p,
        fetchedAt: now,
        expiresAt: now + p.maxAgeSeconds * 1000,
      }
      await save(
        domain,
        {
          policy_id: policy.id,
          mode: policy.mode,
          mx: JSON.stringify(policy.mx),
          max_age: policy.maxAgeSeconds,
          fetched_at: now,
          expires_at: policy.expiresAt,
          failed_id: null,
          failed_at: null,
          last_error: null,
        },
        now,
      )
      return { domain, policy, source: 'fetched', txtId: found.id, problem: null }
    } catch (err) {
      const message = (err as Error).message
      deps.log?.info({ domain, err: message }, 'MTA-STS policy fetch failed')
      await save(domain, { failed_id: found.id, failed_at: now, last_error: message.slice(0, 1000) }, now)
      return fallback(`policy fetch failed: ${message}`, found.id, true)
    }
  }

  return {
    async lookup(input) {
      const domain = canonical(input)
      const now = deps.clock.now()
      const hit = memo.get(domain)
      if (hit && now < hit.until) return hit.result
      let result: MtaStsLookup
      try {
        result = await resolve(domain, now)
      } catch (err) {
        // The cache could not be read or written: deliver as without a policy, and say so.
        result = {
          domain,
          policy: null,
          source: 'unavailable',
          txtId: null,
          problem: `MTA-STS cache error: ${(err as Error).message}`,
        }
      }
      if (memo.size > 10_000) memo.clear()
      memo.set(domain, {
        until: Math.min(now + MEMO_MS, result.policy?.expiresAt ?? Number.POSITIVE_INFINITY),
        result,
      })
      return result
    },
  }
}
