// One timed configuration of the outbound benchmark (bench/outbound.ts), run by
// outbound-worker.ts in a fresh process per configuration, with Postern inside that process so
// its peak RSS, CPU, event-loop delay and (with --profile) CPU profile are read from inside.
// Steps: a loopback DNS server process; the client process (outbound-load-child.ts) with
// smtp-sink; Postern configured through the real loader (loopback listeners, temp data folder,
// SQLite or a fresh PostgreSQL schema, outbound.mx_port = the sink's port, send limits lifted);
// the sending org set up through the HTTP API as an operator would (setup, domain
// bench-sender.test with its records published and verified: RSA and Ed25519 DKIM keys, a send
// key); remote.test's MX published as mx.remote.test -> 127.0.0.1; a warm-up through the same
// path; then the timed run. After the sink counted every message, the database must show every
// outbound message `sent` and every recipient `delivered`. The `submission` variant sends the
// same load as mail clients through SMTP submission (587, STARTTLS, AUTH as the mailbox
// bench@bench-sender.test, connections reused), which also files each message in Sent.
// Push-back runs (o.pushBack) deliver to pushback-sink.ts instead of smtp-sink: message i goes to
// u<i>@remote.test (w<i> in the warm-up), 2% are refused with a 550 and bounce, 5% get a 451 and
// are retried after outbound.retry_intervals (o.retryIntervals, short); the run ends when the
// database shows every message final: the deliverable recipients `delivered`, the refused ones
// `bounced`.

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import pg from 'pg'
import { loadConfig } from '../../src/config/load.ts'
import { type Postern, startPostern } from '../../src/main.ts'
import { createConnectGuard } from '../../src/net/connect-guard.ts'
import { loopbackEnv } from '../../test/helpers/server.ts'
import { type DnsProcess, startDnsProcess } from './dns-process.ts'
import { type OutboundLoad, type RunReport, startOutboundLoad } from './outbound-load.ts'
import { benchOrgWithDomain, type Dialect, must, postgresUrl } from './postern-mx.ts'
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
import { countAmong, DEFER_ONCE, REJECT } from './pushback-rule.ts'

export const SENDER_DOMAIN = 'bench-sender.test'
export const RECIPIENT_DOMAIN = 'remote.test'
const FROM = `bench@${SENDER_DOMAIN}`
const TO = `user1@${RECIPIENT_DOMAIN}`
/** Text part size: the composed, signed message comes to about 6 KB (smtp-source -l 5120 sends ~5.3 KB). */
export const TEXT_BYTES = 5000

export type Variant = 'single' | 'batch' | 'submission'

export interface RunOptions {
  dialect: Dialect
  variant: Variant
  messages: number
  /** Concurrent HTTP clients. */
  clients: number
  batchSize: number
  warmup: number
  perDestination: number
  outboundConcurrency: number
  pollMs: number | null
  profileDir: string | null
  /** The receiving side pushes back (pushback-sink.ts); retries wait `retryIntervals`. */
  pushBack: boolean
  retryIntervals: string
}

export interface Phase {
  seconds: number
  cpu_user_s: number
  cpu_sys_s: number
  /** Postern's CPU share of one core in this phase, %. */
  cpu_pct: number
  event_loop_delay_ms: { p50: number; p99: number; max: number }
  commit_batches: number
  commit_jobs: number
  commit_mean_batch: number
}

export interface Row {
  run: string
  dialect: Dialect
  variant: Variant
  messages: number
  clients: number
  batch_size: number
  requests: number
  mean_message_bytes: number
  ok: boolean
  problems: string[]
  accept_s: number
  accepted_per_s: number
  deliver_s: number | null
  delivered_per_s: number | null
  /** Messages the sink already had when the last 202 arrived. */
  delivered_at_accept: number
  request_ms: ReturnType<typeof summarize>
  idle_rss_mib: number
  peak_rss_mib: number
  sampled_peak_rss_mib: number
  machine_cpu_pct: number
  /** CPU seconds of the HTTP client process and of smtp-sink during the run. */
  client_cpu_s: number
  sink_cpu_s: number | null
  /** Sessions the sink saw in the run (connections Postern opened). */
  sink_sessions: number
  sink_messages: number
  /** After the sink counted N: outbound_messages of the run by status, recipients by state. */
  db_status: Record<string, number>
  db_recipients: Record<string, number>
  /** Seconds from the first request until the database showed every message sent. */
  db_all_sent_s: number | null
  dns_queries_per_msg: number
  dns_by_name: Record<string, number>
  accept_phase: Phase
  drain_phase: Phase
  timeline: RunReport['timeline']
  pre_idle: { busyPct: number; waitedS: number }
  profile: ProfileSummary | null
  /** Push-back runs: what the sink refused and what the database recorded. */
  push_back: PushBackFigures | null
}

export interface PushBackFigures {
  retry_intervals: string
  /** Recipients the rule defers once / rejects, of this run's N. */
  expected_deferred: number
  expected_rejected: number
  /** 451s and 550s the sink gave in the run, bounces (MAIL FROM:<>) it received. */
  sink_deferred: number
  sink_rejected: number
  sink_dsn: number
  /** Database: delivery attempts beyond the first, per recipient, summed; recipients bounced. */
  retries: number
  bounces: number
  delivered: number
  /** Seconds from the first request until the sink counted every deliverable message. */
  sink_done_s: number | null
}

interface Sender {
  postern: Postern
  key: string
  /** The submission log-in (port 587 stand-in) of the sending mailbox. */
  smtp: { port: number; user: string; pass: string }
  close(): Promise<void>
}

export async function runOne(o: RunOptions): Promise<Row> {
  const dns = await startDnsProcess()
  let load: OutboundLoad | null = null
  let sender: Sender | null = null
  try {
    load = await startOutboundLoad({ pushBack: o.pushBack })
    sender = await startSender(o, dns, load.port)
    const timeoutMs = Math.max(600_000, o.messages * 60)
    const label = `bench-${o.variant}`
    if (o.warmup > 0) {
      const w = await load.run({
        url: sender.postern.url as string,
        key: sender.key,
        smtp: sender.smtp,
        mode: o.variant,
        messages: o.warmup,
        clients: o.clients,
        batchSize: o.batchSize,
        from: FROM,
        to: TO,
        ...(o.pushBack
          ? {
              toPattern: `w{i}@${RECIPIENT_DOMAIN}`,
              expectDelivered: o.warmup - countAmong(o.warmup, REJECT),
            }
          : {}),
        textBytes: TEXT_BYTES,
        label: `${label}-warmup`,
        timeoutMs,
      })
      if (w.refused || w.tDelivered === null)
        throw new Error(
          `warm-up: ${w.refused} refused (${w.firstError ?? 'no error'}), ${w.sinkEnd.mesg - w.sinkBase.mesg} of ${o.warmup} delivered`,
        )
      // Push-back: the bounces and retries of the warm-up finish before the timed run.
      await waitAllSent(sender.postern, 60_000)
    }
    return await timedRun(o, sender, dns, load, label, timeoutMs)
  } finally {
    await sender?.close()
    await load?.close()
    await dns.close()
  }
}

async function timedRun(
  o: RunOptions,
  sender: Sender,
  dns: DnsProcess,
  load: OutboundLoad,
  label: string,
  timeoutMs: number,
): Promise<Row> {
  const postern = sender.postern
  const pre_idle = await waitQuiet(15, 120)
  const rejected = o.pushBack ? countAmong(o.messages, REJECT) : 0
  const dnsBefore = await dns.stats()
  const idle = statusMiB('VmRSS')
  const peakReset = resetPeakRss()
  const sampler = rssSampler()
  const cpu0 = cpuSnapshot()
  const meter = phaseMeter(postern)
  const profiler = o.profileDir ? await startProfile() : null
  let acceptPhase: Phase | null = null
  const r = await load.run(
    {
      url: postern.url as string,
      key: sender.key,
      smtp: sender.smtp,
      mode: o.variant,
      messages: o.messages,
      clients: o.clients,
      batchSize: o.batchSize,
      from: FROM,
      to: TO,
      ...(o.pushBack
        ? { toPattern: `u{i}@${RECIPIENT_DOMAIN}`, expectDelivered: o.messages - rejected }
        : {}),
      textBytes: TEXT_BYTES,
      label,
      timeoutMs,
    },
    () => {
      acceptPhase = meter.cut()
    },
  )
  const drainPhase = meter.cut()
  const prof = profiler
    ? await profiler.stop(o.profileDir as string, `outbound-${o.dialect}-${o.variant}`)
    : null
  const cpu1 = cpuSnapshot()
  const sampled = sampler.stop()
  const peak = peakReset ? statusMiB('VmHWM') : sampled
  // The sink has every message; the database should say so too (the 250 is recorded right after).
  // Push-back runs end there: the bounces and the last retries are only final in the database.
  const allSent = await waitAllSent(postern, 60_000, label, o.pushBack ? 10 : 100)
  const db = await runCounts(postern, label)
  const dnsAfter = await dns.stats()
  const dnsByName: Record<string, number> = {}
  for (const [k, n] of Object.entries(dnsAfter.byName)) {
    const d = n - (dnsBefore.byName[k] ?? 0)
    if (d) dnsByName[k] = d
  }
  const acceptS = (r.tAccepted - r.t0) / 1000
  const sinkDoneS = r.tDelivered === null ? null : (r.tDelivered - r.t0) / 1000
  const deliverS = !o.pushBack
    ? sinkDoneS
    : sinkDoneS === null || allSent === null
      ? null
      : (Math.max(r.tDelivered as number, allSent) - r.t0) / 1000
  const deliverable = r.accepted - rejected
  const problems: string[] = []
  if (r.refused) problems.push(`${r.refused} refused (${JSON.stringify(r.codes)}; ${r.firstError})`)
  const sinkMessages = r.sinkEnd.mesg - r.sinkBase.mesg
  if (r.tDelivered === null) problems.push(`the sink counted ${sinkMessages} of ${deliverable} in time`)
  if (sinkMessages > deliverable)
    problems.push(`the sink counted ${sinkMessages} for ${deliverable} deliverable`)
  if ((db.status.sent ?? 0) !== deliverable || (db.status.failed ?? 0) !== rejected)
    problems.push(`database: ${JSON.stringify(db.status)} (want ${deliverable} sent, ${rejected} failed)`)
  if ((db.recipients.delivered ?? 0) !== deliverable || (db.recipients.bounced ?? 0) !== rejected)
    problems.push(`database recipients: ${JSON.stringify(db.recipients)}`)
  let pushBack: PushBackFigures | null = null
  if (o.pushBack) {
    pushBack = {
      retry_intervals: o.retryIntervals,
      expected_deferred: countAmong(o.messages, DEFER_ONCE),
      expected_rejected: rejected,
      sink_deferred: r.sinkEnd.defer - r.sinkBase.defer,
      sink_rejected: r.sinkEnd.reject - r.sinkBase.reject,
      sink_dsn: r.sinkEnd.dsn - r.sinkBase.dsn,
      retries: db.retries,
      bounces: db.recipients.bounced ?? 0,
      delivered: db.recipients.delivered ?? 0,
      sink_done_s: sinkDoneS === null ? null : round2(sinkDoneS),
    }
    if (pushBack.sink_deferred < pushBack.expected_deferred)
      problems.push(`the sink deferred ${pushBack.sink_deferred} of ${pushBack.expected_deferred} expected`)
    if (pushBack.sink_rejected < rejected)
      problems.push(`the sink rejected ${pushBack.sink_rejected} of ${rejected} expected`)
  }
  const meanBytes = await meanSize(postern, label)
  return {
    run: `${o.dialect} ${o.variant}${o.pushBack ? ' push-back' : ''}`,
    dialect: o.dialect,
    variant: o.variant,
    messages: o.messages,
    clients: o.clients,
    batch_size: o.variant === 'batch' ? o.batchSize : 1,
    requests: r.requests,
    mean_message_bytes: meanBytes,
    ok: problems.length === 0,
    problems,
    accept_s: round2(acceptS),
    accepted_per_s: Math.round(r.accepted / acceptS),
    deliver_s: deliverS === null ? null : round2(deliverS),
    delivered_per_s: deliverS === null ? null : Math.round(deliverable / deliverS),
    delivered_at_accept: r.deliveredAtAccept,
    request_ms: summarize(r.latencies),
    idle_rss_mib: idle,
    peak_rss_mib: peak,
    sampled_peak_rss_mib: sampled,
    machine_cpu_pct: cpuBusyPct(cpu0, cpu1),
    client_cpu_s: r.clientCpuS,
    sink_cpu_s: r.sinkCpuS,
    sink_sessions: r.sinkEnd.sess - r.sinkBase.sess,
    sink_messages: sinkMessages,
    db_status: db.status,
    db_recipients: db.recipients,
    db_all_sent_s: allSent === null ? null : round2((allSent - r.t0) / 1000),
    dns_queries_per_msg: round2((dnsAfter.queries - dnsBefore.queries) / Math.max(1, r.accepted)),
    dns_by_name: dnsByName,
    accept_phase: acceptPhase ?? drainPhase,
    drain_phase: drainPhase,
    timeline: r.timeline,
    pre_idle,
    profile: prof,
    push_back: pushBack,
  }
}

/** CPU, event-loop delay and group commits of this process, cut into consecutive phases. */
function phaseMeter(postern: Postern): { cut(): Phase } {
  const resolution = 5
  const loop = monitorEventLoopDelay({ resolution })
  loop.enable()
  const stats = postern.delivery.committer.stats
  let cpu = process.cpuUsage()
  let t = performance.now()
  let base = { batches: stats.batches, jobs: stats.jobs }
  // The histogram holds whole timer intervals: subtract the resolution to get the delay.
  const ms = (ns: number) => round2(Math.max(0, ns / 1e6 - resolution))
  return {
    cut() {
      const used = process.cpuUsage(cpu)
      const seconds = (performance.now() - t) / 1000
      const batches = stats.batches - base.batches
      const jobs = stats.jobs - base.jobs
      const phase: Phase = {
        seconds: round2(seconds),
        cpu_user_s: round2(used.user / 1e6),
        cpu_sys_s: round2(used.system / 1e6),
        cpu_pct: seconds > 0 ? Math.round((100 * (used.user + used.system)) / 1e6 / seconds) : 0,
        event_loop_delay_ms: {
          p50: ms(loop.percentile(50)),
          p99: ms(loop.percentile(99)),
          max: ms(loop.max),
        },
        commit_batches: batches,
        commit_jobs: jobs,
        commit_mean_batch: batches ? round2(jobs / batches) : 0,
      }
      loop.reset()
      cpu = process.cpuUsage()
      t = performance.now()
      base = { batches: stats.batches, jobs: stats.jobs }
      return phase
    },
  }
}

/** outbound_messages of one run (by subject prefix) by status, and their recipients by state. */
async function runCounts(
  postern: Postern,
  label: string,
): Promise<{ status: Record<string, number>; recipients: Record<string, number>; retries: number }> {
  const db = postern.store.db
  const like = `${label} %`
  const status = await db
    .selectFrom('outbound_messages')
    .select((eb) => ['status', eb.fn.countAll<number | string>().as('n')])
    .where('subject', 'like', like)
    .groupBy('status')
    .execute()
  const recipients = await db
    .selectFrom('outbound_recipients as r')
    .innerJoin('outbound_messages as m', 'm.id', 'r.outbound_id')
    .select((eb) => ['r.state', eb.fn.countAll<number | string>().as('n')])
    .where('m.subject', 'like', like)
    .groupBy('r.state')
    .execute()
  const attempts = await db
    .selectFrom('outbound_recipients as r')
    .innerJoin('outbound_messages as m', 'm.id', 'r.outbound_id')
    .select((eb) => [
      eb.fn.sum<number | string>('r.attempts').as('attempts'),
      eb.fn.countAll<number | string>().as('n'),
    ])
    .where('m.subject', 'like', like)
    .executeTakeFirst()
  return {
    status: Object.fromEntries(status.map((s) => [s.status, Number(s.n)])),
    recipients: Object.fromEntries(recipients.map((s) => [s.state, Number(s.n)])),
    retries: Number(attempts?.attempts ?? 0) - Number(attempts?.n ?? 0),
  }
}

async function meanSize(postern: Postern, label: string): Promise<number> {
  const r = await postern.store.db
    .selectFrom('outbound_messages')
    .select((eb) => eb.fn.avg<number | string>('size').as('avg'))
    .where('subject', 'like', `${label} %`)
    .executeTakeFirst()
  return Math.round(Number(r?.avg ?? 0))
}

/** Waits until no outbound message (of the run, when `label` is given) is unfinished; epoch ms or null. */
async function waitAllSent(
  postern: Postern,
  ms: number,
  label?: string,
  everyMs = 100,
): Promise<number | null> {
  const until = Date.now() + ms
  for (;;) {
    let q = postern.store.db
      .selectFrom('outbound_messages')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('status', 'not in', ['sent', 'failed'])
    if (label) q = q.where('subject', 'like', `${label} %`)
    const r = await q.executeTakeFirstOrThrow()
    if (Number(r.n) === 0) return Date.now()
    if (Date.now() > until) return null
    await new Promise((res) => setTimeout(res, everyMs))
  }
}

/** Postern in this process, sending to the sink's port; the org, verified domain and send key made through the API. */
async function startSender(o: RunOptions, dns: DnsProcess, sinkPort: number): Promise<Sender> {
  const dataDir = mkdtempSync(join(tmpdir(), 'postern-bench-out-'))
  const pgUrl = postgresUrl()
  if (o.dialect === 'postgres' && !pgUrl) throw new Error('PostgreSQL runs need POSTERN_DATABASE_URL')
  const schema = o.dialect === 'postgres' ? `bench_${process.pid}_${randomBytes(4).toString('hex')}` : null
  const dropDatabase = async () => {
    rmSync(dataDir, { recursive: true, force: true })
    if (!schema) return
    const c = new pg.Client({ connectionString: pgUrl as string })
    await c.connect()
    try {
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    } finally {
      await c.end()
    }
  }
  // A clean environment: nothing from the caller's POSTERN_* settings leaks into the run.
  const env: Record<string, string> = {
    ...loopbackEnv(),
    POSTERN_DATA_DIR: dataDir,
    POSTERN_HOSTNAME: `mx.${SENDER_DOMAIN}`,
    POSTERN_LOG_LEVEL: 'warn',
    POSTERN_EVENTS_POLL_MS: '100',
    POSTERN_DNS_SERVERS: dns.servers.join(','),
    POSTERN_NET_CONNECT_ALLOW: '127.0.0.0/8',
    POSTERN_OUTBOUND_MX_PORT: String(sinkPort),
    POSTERN_OUTBOUND_PER_DESTINATION: String(o.perDestination),
    POSTERN_OUTBOUND_CONCURRENCY: String(o.outboundConcurrency),
    ...(o.pollMs !== null ? { POSTERN_OUTBOUND_POLL_MS: String(o.pollMs) } : {}),
    ...(o.pushBack ? { POSTERN_OUTBOUND_RETRY_INTERVALS: o.retryIntervals } : {}),
    // Lift the send limits: the benchmark measures the pipeline, not the policy.
    POSTERN_RATE_LIMITS_SEND_KEY: '1000000/60s',
    POSTERN_OUTBOUND_ORG_HOURLY_CAP: '0',
    POSTERN_OUTBOUND_ORG_DAILY_CAP: '0',
    // Only the owner's password at setup is hashed; keep that cheap.
    POSTERN_AUTH_ARGON2_MEMORY_KIB: '64',
    POSTERN_AUTH_ARGON2_TIME_COST: '1',
    ...(schema ? { POSTERN_DATABASE_URL: pgUrl as string, POSTERN_DATABASE_SCHEMA: schema } : {}),
  }
  let postern: Postern | null = null
  try {
    const { config } = loadConfig({ env, args: [], cwd: dataDir })
    postern = await startPostern({
      config,
      connectGuard: createConnectGuard({ allow: ['127.0.0.0/8'] }),
      print: () => {},
    })
    const { key, smtp } = await setUpSending(postern, dns)
    const p = postern
    return {
      postern,
      key,
      smtp,
      async close() {
        try {
          await p.close()
        } finally {
          await dropDatabase()
        }
      },
    }
  } catch (err) {
    await postern?.close().catch(() => {})
    await dropDatabase()
    throw err
  }
}

/** Setup, domain bench-sender.test (records published, verified), a send key, mailbox bench with a password; remote.test's MX. */
async function setUpSending(
  postern: Postern,
  dns: DnsProcess,
): Promise<{ key: string; smtp: Sender['smtp'] }> {
  dns.set(RECIPIENT_DOMAIN, 'MX', [{ priority: 10, exchange: `mx.${RECIPIENT_DOMAIN}` }])
  dns.set(`mx.${RECIPIENT_DOMAIN}`, 'A', ['127.0.0.1'])
  const { api } = await benchOrgWithDomain(postern, dns, 'Bench Sender', { name: SENDER_DOMAIN })
  const key = await must(
    'api key',
    api.post<{ key: string }>('/v1/api-keys', { name: 'bench', scope: 'send' }),
    201,
  )
  const mailbox = await must(
    'mailbox',
    api.post<{ mailbox: { id: string } }>('/v1/mailboxes', { domain: SENDER_DOMAIN, local_part: 'bench' }),
    201,
  )
  const pass = 'tall-granite-submit-9417'
  await must('mailbox password', api.patch(`/v1/mailboxes/${mailbox.mailbox.id}`, { password: pass }), 200)
  const port = postern.listeners.find((l) => l.name === 'smtp-submission')?.port
  if (!port) throw new Error('no smtp-submission listener')
  return { key: key.key, smtp: { port, user: FROM, pass } }
}
