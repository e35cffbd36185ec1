// Checks the records dns-records.ts asks a domain to publish against what DNS answers, and
// says in one sentence per record what is right or wrong. Owns the matching rules:
// - TXT (ownership, MTA-STS, TLS-RPT, DKIM, DMARC, SPF): only the records of the purpose count
//   (those starting with its version tag, RFC 7208 4.5, RFC 7489 6.6.3, RFC 8461 3.1, RFC 8460
//   3); none is `missing`, more than one is `different` (each RFC makes that an error).
//   Ownership must carry this domain's token; MTA-STS this policy id; DKIM the same k= and p=
//   (whitespace ignored, RFC 6376 3.6.1); TLS-RPT any rua= (where reports go is the owner's
//   choice); DMARC any valid p= (the policy is the owner's choice: the detail reports it).
// - SPF is `ok` when the one v=spf1 record reaches a mechanism that passes this server before
//   any other mechanism that matches it: `mx` / `mx:<domain>`, `a:<mail host>`, `include:<mail
//   host>`, or `a`, `ip4`, `ip6` covering the mail host's addresses (looked up). include: of
//   other names, redirect=, exists and ptr are not followed; a record that relies on them is
//   `different`, with the unfollowed terms named in the detail. `+all` is `different` too.
// - MX is `ok` when any exchange is the mail host (case-insensitive, no trailing dot).
// - CNAME is `ok` when it targets the mail host, or when the name's addresses are all
//   addresses of the mail host (A records instead of a CNAME, or a CNAME chain).
// - SRV (RFC 6186) is ok when a record names the mail host and the expected port.
// - NXDOMAIN and NODATA are `missing`; any other DNS failure is `error` with its code.
// Lookups run concurrently, each (name, type) once; checkDomainDns never throws.

import { BlockList, isIP } from 'node:net'
import { isDnsError, isNoRecords, type MxRecord, type Resolver, type SrvRecord } from '../../dns/resolver.ts'
import type { DnsRecord } from './dns-records.ts'

export type RecordState = 'ok' | 'missing' | 'different' | 'error' | 'unchecked'

export interface RecordStatus extends DnsRecord {
  state: RecordState
  /** What DNS returned for that name and type (TXT joined, MX 'priority host', CNAME targets). */
  found: string[]
  /** One human sentence, e.g. 'no TXT record at _dmarc.example.com'. */
  detail: string
}

export interface DnsStatus {
  domain: string
  checked_at: number
  records: RecordStatus[]
  ownership_ok: boolean
  mx_ok: boolean
  /** ownership_ok && mx_ok */
  verified_ready: boolean
}

type Answer<T> = { ok: true; records: T[] } | { ok: false; none: boolean; code: string; detail: string }

interface Verdict {
  state: RecordState
  detail: string
  found?: string[]
}

interface Ctx {
  txt(name: string): Promise<Answer<string>>
  mx(name: string): Promise<Answer<MxRecord>>
  cname(name: string): Promise<Answer<string>>
  srv(name: string): Promise<Answer<SrvRecord>>
  /** A and AAAA together: ok when either has records. */
  addresses(name: string): Promise<Answer<string>>
  mailHost: string
}

const canon = (name: string): string => name.trim().toLowerCase().replace(/\.$/, '')

export async function checkDomainDns(
  resolver: Resolver,
  records: DnsRecord[],
  now: number,
): Promise<DnsStatus> {
  const ctx = context(resolver, mailHostOf(records))
  const checked = await Promise.all(
    records.map(async (record): Promise<RecordStatus> => {
      let verdict: Verdict
      try {
        verdict = await check(record, ctx)
      } catch (err) {
        // A bug in a rule, not a DNS answer: report it on the record rather than fail the lot.
        verdict = {
          state: 'error',
          detail: `checking failed: ${err instanceof Error ? err.message : String(err)}`,
        }
      }
      return { ...record, state: verdict.state, found: verdict.found ?? [], detail: verdict.detail }
    }),
  )
  const okFor = (purpose: DnsRecord['purpose']): boolean => {
    const of = checked.filter((r) => r.purpose === purpose)
    return of.length > 0 && of.every((r) => r.state === 'ok')
  }
  const ownership_ok = okFor('ownership')
  const mx_ok = okFor('mx')
  return {
    domain: domainOf(records),
    checked_at: now,
    records: checked,
    ownership_ok,
    mx_ok,
    verified_ready: ownership_ok && mx_ok,
  }
}

/** The hosted domain: the MX owner, else the ownership name without `_postern.`. */
function domainOf(records: DnsRecord[]): string {
  const mx = records.find((r) => r.purpose === 'mx')
  if (mx) return canon(mx.name)
  const own = records.find((r) => r.purpose === 'ownership')
  if (own) return canon(own.name).replace(/^_postern\./, '')
  const names = records.map((r) => canon(r.name)).sort((a, b) => a.length - b.length)
  return names[0] ?? ''
}

/** The server's host name: the MX target, else a CNAME or SRV target. */
function mailHostOf(records: DnsRecord[]): string {
  for (const r of records) if (r.type === 'MX') return canon(r.value.trim().split(/\s+/)[1] ?? '')
  for (const r of records) if (r.type === 'CNAME') return canon(r.value)
  for (const r of records) if (r.type === 'SRV') return canon(r.value.trim().split(/\s+/)[3] ?? '')
  return ''
}

// ---- lookups ----

function failure(err: unknown, type: string, name: string): Answer<never> {
  if (isNoRecords(err)) {
    const code = isDnsError(err) ? err.code : 'NOTFOUND'
    return { ok: false, none: true, code, detail: `no ${type} record at ${name}` }
  }
  if (isDnsError(err)) {
    const when = err.temporary ? ' (temporary: it is checked again later)' : ''
    return {
      ok: false,
      none: false,
      code: err.code,
      detail: `${type} lookup of ${name} failed: ${err.code}${when}`,
    }
  }
  const message = err instanceof Error ? err.message : String(err)
  return { ok: false, none: false, code: 'OTHER', detail: `${type} lookup of ${name} failed: ${message}` }
}

function context(resolver: Resolver, mailHost: string): Ctx {
  const cache = new Map<string, Promise<Answer<unknown>>>()
  const run = <T>(type: string, name: string, lookup: () => Promise<T[]>): Promise<Answer<T>> => {
    const key = `${type} ${canon(name)}`
    let answer = cache.get(key) as Promise<Answer<T>> | undefined
    if (!answer) {
      answer = Promise.resolve()
        .then(lookup)
        .then(
          (records): Answer<T> => ({ ok: true, records }),
          (err: unknown) => failure(err, type, name),
        )
      cache.set(key, answer)
    }
    return answer
  }
  return {
    mailHost,
    // RFC 7208 3.3 / RFC 6376 3.6.2.2: a record's character-strings are concatenated.
    txt: (name) => run('TXT', name, async () => (await resolver.resolveTxt(name)).map((s) => s.join(''))),
    mx: (name) => run('MX', name, () => resolver.resolveMx(name)),
    cname: (name) => run('CNAME', name, async () => (await resolver.resolveCname(name)).map(canon)),
    srv: (name) => run('SRV', name, () => resolver.resolveSrv(name)),
    addresses: async (name) => {
      const [v4, v6] = await Promise.all([
        run('A', name, () => resolver.resolve4(name)),
        run('AAAA', name, () => resolver.resolve6(name)),
      ])
      const records = [...(v4.ok ? v4.records : []), ...(v6.ok ? v6.records : [])]
      if (records.length > 0) return { ok: true, records }
      if (!v4.ok && !v4.none) return v4
      if (!v6.ok && !v6.none) return v6
      return { ok: false, none: true, code: 'NODATA', detail: `no A or AAAA record at ${name}` }
    },
  }
}

// ---- rules ----

async function check(record: DnsRecord, ctx: Ctx): Promise<Verdict> {
  switch (record.type) {
    case 'MX':
      return checkMx(record, ctx)
    case 'CNAME':
      return checkCname(record, ctx)
    case 'SRV':
      return checkSrv(record, ctx)
    case 'TXT': {
      const answer = await ctx.txt(record.name)
      if (!answer.ok) return { state: answer.none ? 'missing' : 'error', detail: answer.detail }
      const verdict = await checkTxt(record, answer.records, ctx)
      return { ...verdict, found: answer.records }
    }
  }
}

/** RFC 6186: ok when a record names our host and port ("0 0 0 ." means the service is not offered). */
async function checkSrv(record: DnsRecord, ctx: Ctx): Promise<Verdict> {
  const answer = await ctx.srv(record.name)
  if (!answer.ok) return { state: answer.none ? 'missing' : 'error', detail: answer.detail }
  const [, , port = '', target = ''] = record.value.trim().split(/\s+/)
  const found = answer.records.map((r) => `${r.priority} ${r.weight} ${r.port} ${r.target}`)
  const match = answer.records.some((r) => canon(r.target) === canon(target) && String(r.port) === port)
  if (match) return { state: 'ok', detail: `${record.name} points to ${canon(target)} port ${port}`, found }
  return {
    state: 'different',
    detail: `${record.name} has ${found.join(', ')}, not ${canon(target)} port ${port}`,
    found,
  }
}

async function checkMx(record: DnsRecord, ctx: Ctx): Promise<Verdict> {
  const answer = await ctx.mx(record.name)
  if (!answer.ok) return { state: answer.none ? 'missing' : 'error', detail: answer.detail }
  const want = canon(record.value.trim().split(/\s+/)[1] ?? '')
  const sorted = [...answer.records].sort((a, b) => a.priority - b.priority)
  const found = sorted.map((mx) => `${mx.priority} ${canon(mx.exchange) || '.'}`)
  // RFC 7505 section 3: a single MX with the root as exchange says the domain takes no mail.
  if (sorted.length === 1 && canon(sorted[0]?.exchange ?? '') === '') {
    return { state: 'different', found, detail: `null MX (RFC 7505): ${record.name} says it accepts no mail` }
  }
  const ours = sorted.find((mx) => canon(mx.exchange) === want)
  if (!ours) {
    const hosts = sorted.map((mx) => canon(mx.exchange) || '.').join(', ')
    return { state: 'different', found, detail: `MX points to ${hosts}, not ${want}` }
  }
  // RFC 5321 section 5.1: lower preference numbers are tried first.
  const before = sorted.filter((mx) => mx.priority < ours.priority).map((mx) => canon(mx.exchange))
  const also =
    before.length > 0 ? `; ${before.join(', ')} ${before.length === 1 ? 'is' : 'are'} tried first` : ''
  return { state: 'ok', found, detail: `MX ${ours.priority} ${want}${also}` }
}

async function checkCname(record: DnsRecord, ctx: Ctx): Promise<Verdict> {
  const want = canon(record.value)
  const answer = await ctx.cname(record.name)
  if (!answer.ok && !answer.none) return { state: 'error', detail: answer.detail }
  const targets = answer.ok ? answer.records : []
  if (targets.includes(want)) return { state: 'ok', found: targets, detail: `CNAME to ${want}` }
  // Not a CNAME to us: A records (or a CNAME chain) that reach the same addresses work as well.
  const [mine, theirs] = await Promise.all([ctx.addresses(record.name), ctx.addresses(want)])
  const via = targets.length > 0 ? `is a CNAME to ${targets.join(', ')}` : 'has no CNAME'
  if (!mine.ok && !mine.none) return { state: 'error', found: targets, detail: mine.detail }
  if (mine.ok) {
    if (!theirs.ok && !theirs.none) return { state: 'error', found: targets, detail: theirs.detail }
    const ourAddresses = new Set(theirs.ok ? theirs.records : [])
    if (mine.records.every((a) => ourAddresses.has(a))) {
      return {
        state: 'ok',
        found: targets,
        detail: `${record.name} ${via} but reaches ${want} (${mine.records.join(', ')})`,
      }
    }
    if (targets.length === 0) {
      return {
        state: 'different',
        found: targets,
        detail: `${record.name} has no CNAME and its addresses (${mine.records.join(', ')}) are not ${want}'s`,
      }
    }
  }
  if (targets.length > 0) {
    return {
      state: 'different',
      found: targets,
      detail: `CNAME points to ${targets.join(', ')}, not ${want}`,
    }
  }
  return { state: 'missing', found: targets, detail: `no CNAME record at ${record.name}` }
}

/** `k=v; k=v` tags (RFC 6376 3.2, RFC 7489 6.4, RFC 8461 3.1, RFC 8460 3): keys lower-cased, values trimmed. */
function tags(record: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of record.split(';')) {
    const eq = part.indexOf('=')
    if (eq <= 0) continue
    const key = part.slice(0, eq).trim().toLowerCase()
    if (!out.has(key)) out.set(key, part.slice(eq + 1).trim())
  }
  return out
}

const count = (n: number): string => (n === 2 ? 'two' : String(n))

async function checkTxt(record: DnsRecord, found: string[], ctx: Ctx): Promise<Verdict> {
  const name = record.name
  switch (record.purpose) {
    case 'ownership': {
      const mine = found.filter((t) => t.trim().startsWith('postern-verification='))
      if (mine.length === 0)
        return { state: 'missing', detail: `no postern-verification TXT record at ${name}` }
      if (mine.some((t) => t.trim() === record.value))
        return { state: 'ok', detail: `ownership token found at ${name}` }
      return {
        state: 'different',
        detail: `the postern-verification token at ${name} is not this domain's token`,
      }
    }
    case 'spf': {
      // RFC 7208 section 4.5: records start with "v=spf1" followed by a space or the end.
      const spf = found.filter((t) => /^v=spf1(?: |$)/i.test(t.trim()))
      if (spf.length === 0) return { state: 'missing', detail: `no SPF (v=spf1) TXT record at ${name}` }
      if (spf.length > 1) {
        // RFC 7208 section 3.2: one SPF record per name; more is a permerror (section 4.5).
        return {
          state: 'different',
          detail: `${count(spf.length)} SPF records (RFC 7208 3.2): receivers treat SPF for ${name} as a permanent error; merge them into one`,
        }
      }
      return judgeSpf(spf[0] ?? '', canon(name), ctx)
    }
    case 'dkim': {
      // RFC 6376 section 3.6.2.2: a selector has exactly one TXT record.
      if (found.length > 1) {
        return {
          state: 'different',
          detail: `${count(found.length)} TXT records at ${name}: a DKIM selector must have exactly one (RFC 6376 3.6.2.2)`,
        }
      }
      const want = tags(record.value)
      const got = tags(found[0] ?? '')
      const version = got.get('v')
      if ((version !== undefined && version !== 'DKIM1') || !got.has('p')) {
        return { state: 'different', detail: `the TXT record at ${name} is not a DKIM key record` }
      }
      // RFC 6376 section 3.6.1: p= is base64 and may contain folding whitespace; k= defaults to rsa.
      const strip = (s: string | undefined) => (s ?? '').replace(/\s+/g, '')
      const k = (got.get('k') ?? 'rsa').toLowerCase()
      const wantK = (want.get('k') ?? 'rsa').toLowerCase()
      if (strip(got.get('p')) === '')
        return { state: 'different', detail: `the DKIM key at ${name} is revoked (empty p=)` }
      if (k !== wantK)
        return { state: 'different', detail: `the DKIM key at ${name} is k=${k}, not k=${wantK}` }
      if (strip(got.get('p')) !== strip(want.get('p'))) {
        return {
          state: 'different',
          detail: `the DKIM key at ${name} is a different ${k} key (p= does not match)`,
        }
      }
      return { state: 'ok', detail: `DKIM ${k} key matches` }
    }
    case 'dmarc': {
      // RFC 7489 section 6.6.3: records not starting with v=DMARC1 are discarded; more than one left means none.
      const dmarc = found.filter((t) => /^v\s*=\s*DMARC1\s*(?:;|$)/.test(t.trim()))
      if (dmarc.length === 0) return { state: 'missing', detail: `no DMARC (v=DMARC1) TXT record at ${name}` }
      if (dmarc.length > 1) {
        return {
          state: 'different',
          detail: `${count(dmarc.length)} DMARC records at ${name}: receivers ignore them all (RFC 7489 6.6.3)`,
        }
      }
      const got = tags(dmarc[0] ?? '')
      const p = got.get('p')?.toLowerCase()
      // RFC 7489 section 6.3: p= is required and one of none, quarantine, reject.
      if (p !== 'none' && p !== 'quarantine' && p !== 'reject') {
        return { state: 'different', detail: `the DMARC record at ${name} has no valid p= (RFC 7489 6.3)` }
      }
      const suggested = tags(record.value).get('p')
      const advice = suggested && suggested !== p ? ` (Postern suggests p=${suggested})` : ''
      const rua = got.get('rua')
      const reports = rua ? `, aggregate reports to ${rua}` : ', no rua= so no aggregate reports'
      return { state: 'ok', detail: `DMARC policy p=${p}${advice}${reports}` }
    }
    case 'mta-sts': {
      // RFC 8461 section 3.1: only records starting with v=STSv1 count, and exactly one must be left.
      const sts = found.filter((t) => /^v=STSv1\s*(?:;|$)/.test(t.trim()))
      if (sts.length === 0) return { state: 'missing', detail: `no MTA-STS (v=STSv1) TXT record at ${name}` }
      if (sts.length > 1) {
        return {
          state: 'different',
          detail: `${count(sts.length)} MTA-STS records at ${name}: senders ignore them all (RFC 8461 3.1)`,
        }
      }
      const id = tags(sts[0] ?? '').get('id')
      const want = tags(record.value).get('id')
      if (id !== want) {
        return {
          state: 'different',
          detail: `MTA-STS id is ${id ?? '(none)'}, not ${want}: senders that cached an older policy will not fetch the current one`,
        }
      }
      return { state: 'ok', detail: `MTA-STS id ${id} is current` }
    }
    case 'tls-rpt': {
      // RFC 8460 section 3: only records starting with v=TLSRPTv1 count, and exactly one must be left.
      const rpt = found.filter((t) => /^v=TLSRPTv1\s*(?:;|$)/.test(t.trim()))
      if (rpt.length === 0)
        return { state: 'missing', detail: `no TLS-RPT (v=TLSRPTv1) TXT record at ${name}` }
      if (rpt.length > 1) {
        return {
          state: 'different',
          detail: `${count(rpt.length)} TLS-RPT records at ${name}: senders ignore them all (RFC 8460 3)`,
        }
      }
      const rua = tags(rpt[0] ?? '').get('rua')
      if (!rua)
        return { state: 'different', detail: `the TLS-RPT record at ${name} has no rua= (RFC 8460 3)` }
      return { state: 'ok', detail: `TLS reports go to ${rua}` }
    }
    default:
      return found.includes(record.value)
        ? { state: 'ok', detail: `TXT record found at ${name}` }
        : { state: found.length > 0 ? 'different' : 'missing', detail: `no matching TXT record at ${name}` }
  }
}

/**
 * Walks the terms of one SPF record left to right (RFC 7208 section 4.6.2) and stops at the
 * first mechanism known to match the mail host; its qualifier decides. Only what can be
 * decided from this record and the mail host's addresses is evaluated (see the header).
 */
async function judgeSpf(record: string, domain: string, ctx: Ctx): Promise<Verdict> {
  const host = ctx.mailHost
  const terms = record.trim().split(/\s+/).slice(1)
  const unfollowed: string[] = []
  let hostAddresses: Promise<string[]> | undefined
  const ours = (): Promise<string[]> => {
    hostAddresses ??= ctx.addresses(host).then((a) => (a.ok ? a.records : []))
    return hostAddresses
  }
  for (const term of terms) {
    const t = term.toLowerCase()
    // RFC 7208 section 6: modifiers are name=value; only redirect= could change the outcome.
    if (/^[a-z][a-z0-9_.-]*=/.test(t)) {
      if (t.startsWith('redirect=')) unfollowed.push(term)
      continue
    }
    const m = /^([+\-~?]?)([a-z0-9]+)(.*)$/.exec(t)
    if (!m) return { state: 'different', detail: `the SPF record at ${domain} has an invalid term "${term}"` }
    const qualifier = m[1] || '+'
    const mechanism = m[2] ?? ''
    const rest = m[3] ?? ''
    const target = rest.startsWith(':') ? (rest.slice(1).split('/')[0] ?? '') : ''
    let matches = false
    switch (mechanism) {
      case 'all': // RFC 7208 section 5.1: matches everything; later terms are never reached
        if (qualifier === '+') {
          return {
            state: 'different',
            detail: `"${term}" authorises every host on the internet; use "v=spf1 mx -all"`,
          }
        }
        return {
          state: 'different',
          detail: `the SPF record at ${domain} does not authorise ${host}${notFollowed(unfollowed)}`,
        }
      case 'mx': // RFC 7208 section 5.4
        if ((target || domain) === domain) matches = true
        else unfollowed.push(term)
        break
      case 'include': // RFC 7208 section 5.2: the mail host's own SPF speaks for it
        if (target === host) matches = true
        else unfollowed.push(term)
        break
      case 'a': {
        // RFC 7208 section 5.3; a CIDR suffix only widens the match, so equal addresses suffice.
        if ((target || domain) === host) matches = true
        else {
          const theirs = await ctx.addresses(target || domain)
          const mine = await ours()
          matches = theirs.ok && theirs.records.some((a) => mine.includes(a))
        }
        break
      }
      case 'ip4':
      case 'ip6': // RFC 7208 section 5.6
        matches = covers(rest.slice(1), await ours())
        break
      case 'exists':
      case 'ptr':
        unfollowed.push(term)
        break
      default:
        return {
          state: 'different',
          detail: `the SPF record at ${domain} has an unknown mechanism "${term}" (RFC 7208 5)`,
        }
    }
    if (!matches) continue
    if (qualifier === '+') return { state: 'ok', detail: `SPF authorises ${host} through "${term}"` }
    const result = qualifier === '-' ? 'fail' : qualifier === '~' ? 'softfail' : 'neutral'
    return { state: 'different', detail: `"${term}" gives mail from ${host} an SPF ${result}` }
  }
  return {
    state: 'different',
    detail: `the SPF record at ${domain} does not authorise ${host}${notFollowed(unfollowed)}`,
  }
}

const notFollowed = (terms: string[]): string =>
  terms.length > 0 ? ` (not followed here: ${terms.join(' ')})` : ''

/** True when `spec` (`ip`, `ip/len`) covers any of `addresses`. Malformed specs cover nothing. */
function covers(spec: string, addresses: string[]): boolean {
  const slash = spec.lastIndexOf('/')
  const ip = slash >= 0 ? spec.slice(0, slash) : spec
  const family = isIP(ip)
  if (family === 0) return false
  const list = new BlockList()
  const type = family === 4 ? 'ipv4' : 'ipv6'
  try {
    if (slash >= 0) list.addSubnet(ip, Number(spec.slice(slash + 1)), type)
    else list.addAddress(ip, type)
  } catch {
    return false
  }
  return addresses.some((a) => isIP(a) === family && list.check(a, type))
}
