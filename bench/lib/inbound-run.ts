// One timed configuration of the smtp-inbound benchmark (bench/smtp-inbound.ts), run by
// inbound-worker.ts in a fresh process per configuration so each starts from the same memory
// and JIT state: a loopback DNS server process, Postern in this process (postern-mx.ts), a
// warm-up with smtp-source, then the timed smtp-source run with the latency probe beside it,
// then (optionally) the size mix from this repository's own client. Returns one Row per run.

import { type DnsProcess, startDnsProcess } from './dns-process.ts'
import { smtpSource } from './peers.ts'
import {
  type Dialect,
  HOSTED_DOMAIN,
  type InsideFigures,
  type MxUnderTest,
  publishSender,
  SENDER_DOMAIN,
  startMx,
} from './postern-mx.ts'
import {
  cpuBusyPct,
  cpuSnapshot,
  resetPeakRss,
  round2,
  rssSampler,
  statusMiB,
  summarize,
  waitQuiet,
} from './proc-stats.ts'
import { type ProfileSummary, startProfile } from './profile.ts'
import { type LoadReport, prepareMix, startProbe } from './smtp-load.ts'

const FROM = `sender@${SENDER_DOMAIN}`
const TO = `user1@${HOSTED_DOMAIN}`
const HELO = SENDER_DOMAIN
export const SIZE = 5120

export type Variant = 'off' | 'on'

export interface Row {
  run: string
  dialect: Dialect
  variant: Variant
  tool: 'smtp-source' | 'own-client-mix'
  messages: number
  sessions: number
  mean_message_bytes: number
  ok: boolean
  problems: string[]
  wall_s: number
  msgs_per_s: number
  /** How the latency figures were measured. */
  latency_from: string
  latency_ms: ReturnType<typeof summarize>
  idle_rss_mib: number
  peak_rss_mib: number
  sampled_peak_rss_mib: number
  stored: number
  expected: number
  stored_at_once: number
  machine_cpu_pct: number
  client_cpu_s: number | null
  dns_queries: number
  dns_queries_per_msg: number
  /** DNS questions the server received during the run, by "TYPE name". */
  dns_by_name: Record<string, number>
  auth_results: Record<string, number> | null
  inside: InsideFigures
  pre_idle: { busyPct: number; waitedS: number }
  /** With --profile DIR: the main thread's CPU profile of the timed run. */
  profile: ProfileSummary | null
}

export interface RunOptions {
  dialect: Dialect
  variant: Variant
  messages: number
  sessions: number
  warmup: number
  mixMessages: number
  probeIntervalMs: number
  dkimPub: string
  dkimPem: string
  profileDir: string | null
}

export async function runOne(o: RunOptions): Promise<Row[]> {
  const dns = await startDnsProcess()
  let mx: MxUnderTest | null = null
  try {
    publishSender(dns, o.dkimPub)
    mx = await startMx({ dialect: o.dialect, verifyAuth: o.variant === 'on', dns, sessions: o.sessions })
    const sourceTimeout = Math.max(300_000, o.messages * 50)
    if (o.warmup > 0) {
      const w = await smtpSource({
        port: mx.port,
        messages: o.warmup,
        sessions: o.sessions,
        length: SIZE,
        from: FROM,
        to: TO,
        helo: HELO,
        timeoutMs: sourceTimeout,
      })
      if (w.rc !== 0) throw new Error(`warm-up: smtp-source exited ${w.rc}: ${w.stderr}`)
    }
    const rows: Row[] = []
    rows.push(await sourceRun(mx, dns, o, sourceTimeout))
    if (o.mixMessages > 0) rows.push(await mixRun(mx, dns, o))
    return rows
  } finally {
    await mx?.close()
    await dns.close()
  }
}

/** Takes the figures around one timed run. */
async function measured(
  mx: MxUnderTest,
  dns: DnsProcess,
  profile: { dir: string; name: string } | null,
  body: () => Promise<{ wallS: number; clientCpuS: number | null; accepted: number }>,
) {
  const pre_idle = await waitQuiet(15, 120)
  const before = await mx.storedCount()
  const dnsBefore = await dns.stats()
  const idle = statusMiB('VmRSS')
  const peakReset = resetPeakRss()
  const sampler = rssSampler()
  const cpu0 = cpuSnapshot()
  mx.inside.reset()
  const profiler = profile ? await startProfile() : null
  const r = await body()
  const inside = mx.inside.snapshot()
  const prof = profile && profiler ? await profiler.stop(profile.dir, profile.name) : null
  const cpu1 = cpuSnapshot()
  const sampled = sampler.stop()
  const peak = peakReset ? statusMiB('VmHWM') : sampled
  const atOnce = (await mx.storedCount()) - before
  // Every 250 should already be counted; wait a little in case it is not, to say by how much.
  let stored = atOnce
  const until = Date.now() + 30_000
  while (stored < r.accepted && Date.now() < until) {
    await new Promise((res) => setTimeout(res, 250))
    stored = (await mx.storedCount()) - before
  }
  const dnsAfter = await dns.stats()
  const dnsByName: Record<string, number> = {}
  for (const [k, n] of Object.entries(dnsAfter.byName)) {
    const d = n - (dnsBefore.byName[k] ?? 0)
    if (d) dnsByName[k] = d
  }
  return {
    pre_idle,
    idle_rss_mib: idle,
    peak_rss_mib: peak,
    sampled_peak_rss_mib: sampled,
    machine_cpu_pct: cpuBusyPct(cpu0, cpu1),
    stored,
    stored_at_once: atOnce,
    profile: prof,
    dns_queries: dnsAfter.queries - dnsBefore.queries,
    dns_by_name: dnsByName,
    inside,
    ...r,
  }
}

async function sourceRun(
  mx: MxUnderTest,
  dns: DnsProcess,
  o: {
    dialect: Dialect
    variant: Variant
    messages: number
    sessions: number
    probeIntervalMs: number
    profileDir: string | null
  },
  timeoutMs: number,
): Promise<Row> {
  let source: Awaited<ReturnType<typeof smtpSource>> | null = null
  let probe: LoadReport | null = null
  const prof = o.profileDir ? { dir: o.profileDir, name: `smtp-inbound-${o.dialect}-${o.variant}` } : null
  const m = await measured(mx, dns, prof, async () => {
    const p = await startProbe({
      port: mx.port,
      env: { helo: HELO, from: FROM, to: TO },
      intervalMs: o.probeIntervalMs,
      length: SIZE,
      maxMessages: 1_000_000,
    })
    try {
      source = await smtpSource({
        port: mx.port,
        messages: o.messages,
        sessions: o.sessions,
        length: SIZE,
        from: FROM,
        to: TO,
        helo: HELO,
        timeoutMs,
      })
    } finally {
      probe = await p.stop()
    }
    const s = source as Awaited<ReturnType<typeof smtpSource>>
    return {
      wallS: s.wallS,
      clientCpuS: s.userS === null ? null : round2(s.userS + (s.sysS ?? 0)),
      accepted: o.messages + (probe as LoadReport).ok,
    }
  })
  const s = source as unknown as Awaited<ReturnType<typeof smtpSource>>
  const pr = probe as unknown as LoadReport
  const problems: string[] = []
  if (s.rc !== 0) problems.push(`smtp-source exited ${s.rc}${s.stderr ? `: ${s.stderr.split('\n')[0]}` : ''}`)
  if (pr.failed) problems.push(`probe: ${pr.failed} refused (${JSON.stringify(pr.codes)}; ${pr.firstError})`)
  const expected = o.messages + pr.ok
  if (m.stored !== expected) problems.push(`stored ${m.stored} of ${expected}`)
  else if (m.stored_at_once !== expected)
    problems.push(`only ${m.stored_at_once} of ${expected} stored at once`)
  return {
    run: `${o.dialect} ${o.variant}`,
    dialect: o.dialect,
    variant: o.variant,
    tool: 'smtp-source',
    messages: o.messages,
    sessions: o.sessions,
    mean_message_bytes: Math.round(pr.meanBytes),
    ok: problems.length === 0,
    problems,
    wall_s: round2(s.wallS),
    msgs_per_s: Math.round(o.messages / s.wallS),
    latency_from: `probe: ${pr.ok} sequential ${SIZE} B messages in its own process, end of DATA to 250`,
    latency_ms: summarize(pr.latencies),
    idle_rss_mib: m.idle_rss_mib,
    peak_rss_mib: m.peak_rss_mib,
    sampled_peak_rss_mib: m.sampled_peak_rss_mib,
    stored: m.stored,
    expected,
    stored_at_once: m.stored_at_once,
    machine_cpu_pct: m.machine_cpu_pct,
    client_cpu_s: m.clientCpuS,
    dns_queries: m.dns_queries,
    dns_queries_per_msg: round2(m.dns_queries / expected),
    dns_by_name: m.dns_by_name,
    auth_results: o.variant === 'on' ? await mx.authSummary() : null,
    inside: m.inside,
    pre_idle: m.pre_idle,
    profile: m.profile,
  }
}

async function mixRun(
  mx: MxUnderTest,
  dns: DnsProcess,
  o: {
    dialect: Dialect
    variant: Variant
    sessions: number
    mixMessages: number
    dkimPem: string
    profileDir: string | null
  },
): Promise<Row> {
  const mix = await prepareMix({
    port: mx.port,
    env: { helo: HELO, from: FROM, to: TO },
    sessions: o.sessions,
    messages: o.mixMessages,
    pool: Math.min(400, o.mixMessages),
    minBytes: 5 * 1024,
    maxBytes: 100 * 1024,
    seed: 20261121,
    dkimKeyPem: o.dkimPem,
  })
  const authBefore = o.variant === 'on' ? await mx.authSummary() : null
  let report: LoadReport | null = null
  const prof = o.profileDir ? { dir: o.profileDir, name: `smtp-inbound-${o.dialect}-${o.variant}-mix` } : null
  const m = await measured(mx, dns, prof, async () => {
    report = await mix.go(Math.max(300_000, o.mixMessages * 100))
    const rep = report as LoadReport
    return { wallS: rep.wallMs / 1000, clientCpuS: null, accepted: rep.ok }
  })
  const rep = report as unknown as LoadReport
  const problems: string[] = []
  if (rep.failed) problems.push(`${rep.failed} refused (${JSON.stringify(rep.codes)}; ${rep.firstError})`)
  if (m.stored !== rep.ok) problems.push(`stored ${m.stored} of ${rep.ok}`)
  else if (m.stored_at_once !== rep.ok) problems.push(`only ${m.stored_at_once} of ${rep.ok} stored at once`)
  let auth: Record<string, number> | null = null
  if (authBefore) {
    auth = {}
    for (const [k, n] of Object.entries(await mx.authSummary())) {
      const d = n - (authBefore[k] ?? 0)
      if (d) auth[k] = d
    }
  }
  return {
    run: `${o.dialect} ${o.variant} mix*`,
    dialect: o.dialect,
    variant: o.variant,
    tool: 'own-client-mix',
    messages: o.mixMessages,
    sessions: o.sessions,
    mean_message_bytes: Math.round(rep.meanBytes),
    ok: problems.length === 0,
    problems,
    wall_s: round2(rep.wallMs / 1000),
    msgs_per_s: Math.round(rep.ok / (rep.wallMs / 1000)),
    latency_from: 'every message of the mix client, end of DATA to 250',
    latency_ms: summarize(rep.latencies),
    idle_rss_mib: m.idle_rss_mib,
    peak_rss_mib: m.peak_rss_mib,
    sampled_peak_rss_mib: m.sampled_peak_rss_mib,
    stored: m.stored,
    expected: rep.ok,
    stored_at_once: m.stored_at_once,
    machine_cpu_pct: m.machine_cpu_pct,
    client_cpu_s: null,
    dns_queries: m.dns_queries,
    dns_queries_per_msg: rep.ok ? round2(m.dns_queries / rep.ok) : 0,
    dns_by_name: m.dns_by_name,
    auth_results: auth,
    inside: m.inside,
    pre_idle: m.pre_idle,
    profile: m.profile,
  }
}
