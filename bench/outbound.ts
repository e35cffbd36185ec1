// Benchmark `outbound`: N messages (20,000) sent through Postern's HTTP API to a local receiving
// MX, Postfix's smtp-sink, end to end: API key auth, checks, composing, DKIM signing twice
// (RSA and Ed25519, the keys verifying bench-sender.test made), the durable enqueue, the queue
// worker's claim, MX lookup in a loopback DNS server (remote.test -> mx.remote.test ->
// 127.0.0.1), SMTP delivery to the sink and recording the 250. Compared in the same run with
// Postfix relaying the same load to the same kind of sink (--with-postfix).
// Postern runs inside the benchmark (listeners on 127.0.0.1, temp data folder, SQLite or a
// fresh PostgreSQL schema), each configuration in a fresh bench worker process
// (lib/outbound-worker.ts, lib/outbound-run.ts), so the figures are read from inside it. The
// HTTP clients, smtp-sink and its counter reader run in a process of their own
// (lib/outbound-load-child.ts), and the DNS server in another.
//
// Variants:
// - single: --concurrency (20) keep-alive clients, each POSTing /v1/emails one message at a time;
// - batch: --batch-clients (4) clients, each POSTing /v1/emails/batch with --batch-size (100);
// - submission: --concurrency (20) mail clients through SMTP submission (STARTTLS, AUTH, each
//   connection reused for up to 100 messages); bench/submission.ts runs it beside single.
// Each message: from bench@bench-sender.test to user1@remote.test, a distinct subject, about
// 5 KB of plain text (the composed, signed message is about 6 KB; smtp-source -l 5120 in the
// Postfix recipe sends about 5.3 KB).
//
// Per run it reports:
// - accepted/s: N / (first request written -> last 202 read); a 202 means durably queued;
// - delivered/s: N / (first request written -> smtp-sink counted the N-th message), read from
//   smtp-sink -c's running counter as it is written (the moment, as wait-sink.py notes it);
//   cross-checked in the database: every outbound message of the run `sent`, every recipient
//   `delivered`, and nothing more arrived at the sink than was accepted;
// - peak RSS of the process running Postern during the run (VmHWM reset before it; idle RSS
//   just before the run);
// - inside Postern, split at the last 202 into the accept phase (API and delivery both
//   running) and the drain phase (delivery only): CPU, event-loop delay, group commits; plus
//   the messages already delivered when the last 202 arrived, sink sessions (connections
//   Postern opened), DNS questions per message and request latencies.
// Send limits are lifted (rate_limits.send_key, outbound.org_*_cap): the pipeline is measured,
// not the policy. A warm-up (--warmup, 500) goes through the same path before each timed run.
//
// Options: --messages N (20000) --variant single|batch|submission|all, or a comma list (all:
//   single,batch) --dialect sqlite|postgres|all
//   (sqlite; all: PostgreSQL too when POSTERN_DATABASE_URL or POSTERN_TEST_DATABASE_URL is set)
//   --concurrency N (20, single) --batch-clients N (4) --batch-size N (100) --warmup N (500)
//   --per-destination N (20; outbound.per_destination) --outbound-concurrency N (20)
//   --poll-ms N (outbound.poll_ms; default: Postern's) --with-postfix (also run
//   bench-postfix-relay.sh once with the same N and print Postern/Postfix ratios from this
//   same run) --profile DIR (a CPU profile of Postern's main thread per timed run, summarized)
//   --push-back (the receiving side pushes back, below; --variant defaults to single)
//   --retry-intervals LIST (push-back: outbound.retry_intervals for the run, default 1s).
//
// Push-back (--push-back): the receiving MX is lib/pushback-sink.ts, not smtp-sink: message i goes
// to u<i>@remote.test, and by that number the sink refuses 2% with 550 5.1.1 (they bounce) and
// answers 5% with 451 4.2.0 on the first attempt and 250 on the retry, which Postern makes after
// --retry-intervals. delivered/s is then deliverable recipients / (first request -> the database
// shows every message final: delivered, or bounced for the refused); retries and bounces are
// counted in the database and at the sink. With --with-postfix the same load (injected over SMTP,
// message i to u<i>, since smtp-source cannot vary recipients) goes through the bench Postfix to
// the same sink, its retry timers set as short for the run (lib/outbound-postfix-pushback.ts).

import { fork } from 'node:child_process'
import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { intOption } from './lib/args.ts'
import { type PostfixRelayRun, runPostfixRelay } from './lib/outbound-postfix.ts'
import { type PostfixPushBackRun, runPostfixPushBack } from './lib/outbound-postfix-pushback.ts'
import type { Row, RunOptions, Variant } from './lib/outbound-run.ts'
import { type Dialect, postgresUrl } from './lib/postern-mx.ts'
import { round2 } from './lib/proc-stats.ts'

const SMTP_SINK = '/usr/sbin/smtp-sink'
/** The end-to-end targets: at least this share of Postfix's relay rate, per variant. */
export const TARGETS: Record<Variant, number> = { single: 1.0, batch: 0.5, submission: 1.0 }

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      messages: { type: 'string' },
      variant: { type: 'string' },
      dialect: { type: 'string' },
      concurrency: { type: 'string' },
      'batch-clients': { type: 'string' },
      'batch-size': { type: 'string' },
      warmup: { type: 'string' },
      'per-destination': { type: 'string' },
      'outbound-concurrency': { type: 'string' },
      'poll-ms': { type: 'string' },
      'with-postfix': { type: 'boolean' },
      profile: { type: 'string' },
      'push-back': { type: 'boolean' },
      'retry-intervals': { type: 'string' },
    },
  })
  const int = intOption
  const messages = int(values.messages, 20_000, 'messages', 1)
  const concurrency = int(values.concurrency, 20, 'concurrency', 1)
  const batchClients = int(values['batch-clients'], 4, 'batch-clients', 1)
  const batchSize = int(values['batch-size'], 100, 'batch-size', 1)
  const warmup = int(values.warmup, Math.min(500, messages), 'warmup')
  const perDestination = int(values['per-destination'], 20, 'per-destination', 1)
  const outboundConcurrency = int(values['outbound-concurrency'], 20, 'outbound-concurrency', 1)
  const pollMs = values['poll-ms'] === undefined ? null : int(values['poll-ms'], 0, 'poll-ms', 5)
  const profileDir = values.profile ?? null
  const pushBack = values['push-back'] === true
  const retryIntervals = values['retry-intervals'] ?? '1s'
  const variant = values.variant ?? (pushBack ? 'single' : 'all')
  const dialect = values.dialect ?? 'sqlite'
  const variants = (variant === 'all' ? 'single,batch' : variant).split(',') as Variant[]
  if (variants.some((v) => !(v in TARGETS)))
    throw new Error('--variant: single, batch, submission, all, or a comma list of them')
  if (!['sqlite', 'postgres', 'all'].includes(dialect)) throw new Error('--dialect: sqlite, postgres or all')
  const notes: string[] = []
  let dialects: Dialect[] = dialect === 'all' ? ['sqlite', 'postgres'] : [dialect as Dialect]
  if (dialects.includes('postgres') && !postgresUrl()) {
    if (dialect === 'postgres') throw new Error('--dialect postgres needs POSTERN_DATABASE_URL')
    dialects = ['sqlite']
    notes.push('PostgreSQL skipped: set POSTERN_DATABASE_URL (or POSTERN_TEST_DATABASE_URL) to run it')
  }
  if (!pushBack && !existsSync(SMTP_SINK))
    throw new Error(
      `${SMTP_SINK} is missing: install the peers first (as root): bash /work/shared/bench-peers/install-peers.sh`,
    )

  console.log(
    `outbound benchmark: ${messages} messages to ${pushBack ? `the push-back sink (defers 5%, rejects 2%; retry ${retryIntervals})` : 'smtp-sink'}, variants ${variants.join('+')} ` +
      `(single: ${concurrency} clients; batch: ${batchClients} clients x ${batchSize}), ${dialects.join('+')}, ` +
      `warm-up ${warmup}, outbound concurrency ${outboundConcurrency}, per destination ${perDestination}` +
      `${pollMs === null ? '' : `, poll ${pollMs} ms`}`,
  )

  let postfix: PostfixRelayRun | null = null
  let postfixPushBack: PostfixPushBackRun | null = null
  if (values['with-postfix'] && pushBack) {
    console.log(`postfix: relaying the same load to the push-back sink (backoff timers for the run)...`)
    try {
      postfixPushBack = await runPostfixPushBack({
        messages,
        sessions: 20,
        retryIntervals,
        timeoutMs: 600_000,
      })
      console.log(`  | ${JSON.stringify(postfixPushBack)}`)
      if (postfixPushBack.problems.length)
        notes.push(`Postfix push-back: ${postfixPushBack.problems.join('; ')}`)
      // The same shape as the relay recipe's figures, so the ratios below read the same.
      if (postfixPushBack.delivered_per_s)
        postfix = {
          accepted_per_s: postfixPushBack.accepted_per_s,
          delivered_per_s: postfixPushBack.delivered_per_s,
          fields: {
            n: String(messages),
            accept_secs: String(postfixPushBack.accept_s),
            relay_secs: String(postfixPushBack.deliver_s),
            postfix_cpu_s: String(postfixPushBack.postfix_cpu_s),
            sink_cpu_s: String(postfixPushBack.sink_cpu_s),
            machine_cpu_pct: String(postfixPushBack.machine_cpu_pct),
            idle_rss_kb: String(Math.round((postfixPushBack.idle_rss_mib ?? 0) * 1024)),
            loaded_rss_kb: String(Math.round((postfixPushBack.loaded_rss_mib ?? 0) * 1024)),
          },
          output: '',
          rc: 0,
        }
    } catch (err) {
      notes.push(`the Postfix push-back run failed: ${(err as Error).message.split('\n')[0]}`)
    }
  } else if (values['with-postfix']) {
    console.log('postfix: running bench-postfix-relay.sh (BENCH_RUNS=1)...')
    postfix = await runPostfixRelay({ messages, sessions: 20, timeoutMs: 1_800_000 })
    for (const line of postfix.output.split('\n')) console.log(`  | ${line}`)
    if (!(postfix.delivered_per_s > 0))
      notes.push(`the Postfix run gave no rate (exit ${postfix.rc}); see its output above`)
  }

  const rows: Row[] = []
  let failed = false
  for (const d of dialects)
    for (const v of variants) {
      const label = `${d} ${v}`
      console.log(`${label}: starting...`)
      let row: Row
      try {
        row = await inWorker({
          dialect: d,
          variant: v,
          messages,
          clients: v === 'batch' ? batchClients : concurrency,
          batchSize,
          warmup,
          perDestination,
          outboundConcurrency,
          pollMs,
          profileDir,
          pushBack,
          retryIntervals,
        })
      } catch (err) {
        // One failed configuration must not lose the others' figures.
        console.log(`${label}: FAILED: ${(err as Error).message}`)
        notes.push(`${label} failed: ${(err as Error).message.split('\n')[0]}`)
        failed = true
        continue
      }
      rows.push(row)
      console.log(`${label}: done (${row.problems.length ? row.problems.join('; ') : 'ok'})`)
    }

  const ratios =
    postfix && postfix.delivered_per_s > 0
      ? rows.map((r) => ({
          run: r.run,
          accepted: round2(r.accepted_per_s / postfix.accepted_per_s),
          delivered: r.delivered_per_s === null ? null : round2(r.delivered_per_s / postfix.delivered_per_s),
        }))
      : null
  print(rows, postfix, ratios, notes)
  console.log(
    JSON.stringify({
      bench: 'outbound',
      messages,
      concurrency,
      batch_clients: batchClients,
      batch_size: batchSize,
      warmup,
      per_destination: perDestination,
      outbound_concurrency: outboundConcurrency,
      poll_ms: pollMs,
      push_back: pushBack ? { retry_intervals: retryIntervals } : null,
      notes,
      rows,
      postfix: postfix
        ? {
            accepted_per_s: postfix.accepted_per_s,
            delivered_per_s: postfix.delivered_per_s,
            rc: postfix.rc,
            fields: postfix.fields,
          }
        : null,
      ratios,
      postfix_push_back: postfixPushBack,
      target_vs_postfix_delivered: TARGETS,
    }),
  )
  if (failed || rows.some((r) => !r.ok)) process.exitCode = 1
}

/** Runs one configuration in a fresh bench process (lib/outbound-worker.ts) with Postern inside it. */
async function inWorker(o: RunOptions): Promise<Row> {
  // The parent's flags (e.g. --cpu-prof) apply to the worker: that is where Postern runs.
  const child = fork(new URL('./lib/outbound-worker.ts', import.meta.url), [], {
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  try {
    return await new Promise<Row>((resolve, reject) => {
      child.on('message', (m: { ready?: boolean; row?: Row; error?: string }) => {
        if (m.ready) child.send(o)
        else if (m.row) resolve(m.row)
        else if (m.error) reject(new Error(`${o.dialect} ${o.variant}: ${m.error}`))
      })
      child.once('exit', (code) => reject(new Error(`${o.dialect} ${o.variant}: worker exited (${code})`)))
    })
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r))
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(timer)
    }
  }
}

const kbToMiB = (kb: string | undefined) => (kb ? round2(Number(kb) / 1024) : '?')
const pad = (v: unknown, n: number) => String(v ?? '-').padStart(n)

function print(
  rows: Row[],
  postfix: PostfixRelayRun | null,
  ratios: { run: string; accepted: number; delivered: number | null }[] | null,
  notes: string[],
): void {
  console.log('')
  console.log(
    'run                 msgs  reqs  accept s  accepted/s  e2e s  delivered/s  x postfix acc/e2e  idle MiB  peak MiB  db sent/rcpt delivered',
  )
  for (const r of rows) {
    const x = ratios?.find((q) => q.run === r.run)
    console.log(
      `${r.run.padEnd(16)} ${pad(r.messages, 7)} ${pad(r.requests, 5)} ${pad(r.accept_s, 9)} ${pad(r.accepted_per_s, 11)} ${pad(r.deliver_s, 6)} ${pad(r.delivered_per_s, 12)} ${pad(x ? `${x.accepted}/${x.delivered}` : '', 18)} ${pad(r.idle_rss_mib, 9)} ${pad(r.peak_rss_mib, 9)} ${pad(`${r.db_status.sent ?? 0}/${r.db_recipients.delivered ?? 0}`, 22)}`,
    )
  }
  if (postfix) {
    const f = postfix.fields
    console.log(
      `${'postfix relay'.padEnd(16)} ${pad(f.n, 7)} ${pad('', 5)} ${pad(f.accept_secs, 9)} ${pad(postfix.accepted_per_s, 11)} ${pad(f.relay_secs, 6)} ${pad(postfix.delivered_per_s, 12)} ${pad('1/1', 18)} ${pad(kbToMiB(f.idle_rss_kb), 9)} ${pad(kbToMiB(f.loaded_rss_kb), 9)}   (RSS of all Postfix processes; PSS ${kbToMiB(f.loaded_pss_kb)} MiB loaded)`,
    )
    console.log(
      `postfix (same run): CPU ${f.postfix_cpu_s ?? '?'} s, sink CPU ${f.sink_cpu_s ?? '?'} s, machine CPU ${f.machine_cpu_pct ?? '?'}%, smtp-source ${f.source_user ?? '?'}+${f.source_sys ?? '?'} s`,
    )
  }
  console.log('')
  console.log(
    'inside Postern    phase    secs  CPU%  user+sys s  loop p50/p99/max ms  commits  jobs/commit | delivered at last 202  sink sessions  dns q/msg  request p50/p99 ms',
  )
  for (const r of rows) {
    for (const [name, p] of [
      ['accept', r.accept_phase],
      ['drain', r.drain_phase],
    ] as const) {
      const tail =
        name === 'accept'
          ? ` | ${pad(r.delivered_at_accept, 21)} ${pad(r.sink_sessions, 14)} ${pad(r.dns_queries_per_msg, 10)} ${pad(`${r.request_ms.p50}/${r.request_ms.p99}`, 19)}`
          : ''
      console.log(
        `${(name === 'accept' ? r.run : '').padEnd(16)} ${name.padEnd(7)} ${pad(p.seconds, 6)} ${pad(p.cpu_pct, 5)} ${pad(`${p.cpu_user_s}+${p.cpu_sys_s}`, 11)} ${pad(`${p.event_loop_delay_ms.p50}/${p.event_loop_delay_ms.p99}/${p.event_loop_delay_ms.max}`, 20)} ${pad(p.commit_batches, 8)} ${pad(p.commit_mean_batch, 12)}${tail}`,
      )
    }
  }
  console.log('')
  console.log(
    'accepted/s: N / (first request -> last 202). delivered/s (e2e): N / (first request -> smtp-sink counted the N-th). ' +
      'accept phase: until the last 202 (API and delivery); drain: after it (delivery only).',
  )
  for (const r of rows)
    console.log(
      `timeline ${r.run} (s: accepted/delivered): ${r.timeline
        .filter((_, i, a) => a.length <= 40 || i % Math.ceil(a.length / 40) === 0 || i === a.length - 1)
        .map((t) => `${Math.round(t.s)}:${t.accepted}/${t.delivered}`)
        .join(' ')}`,
    )
  for (const r of rows)
    console.log(
      `${r.run}: mean message ${r.mean_message_bytes} B stored (signed); machine CPU ${r.machine_cpu_pct}% of all cores; ` +
        `CPU of the HTTP client process ${r.client_cpu_s} s, of ${r.push_back ? 'the push-back sink' : 'smtp-sink'} ${r.sink_cpu_s ?? '?'} s; dns questions ${JSON.stringify(r.dns_by_name)}`,
    )
  if (ratios)
    for (const q of ratios) {
      const target = TARGETS[rows.find((r) => r.run === q.run)?.variant ?? 'single']
      if (q.delivered !== null)
        console.log(
          `target ${q.run}: end to end ${q.delivered}x Postfix (target >= ${target}x): ${q.delivered >= target ? 'met' : 'NOT met'}`,
        )
    }
  for (const r of rows)
    if (r.pre_idle.busyPct >= 15)
      console.log(`WARNING ${r.run}: the machine was still ${r.pre_idle.busyPct}% busy when the run began`)
  for (const r of rows) if (r.problems.length) console.log(`PROBLEM ${r.run}: ${r.problems.join('; ')}`)
  for (const r of rows)
    if (r.profile) {
      console.log(
        `profile ${r.run} (${r.profile.sampled_s} s of main thread, ${r.profile.file}): ${r.profile.by_area
          .slice(0, 12)
          .map(([a, pct]) => `${a} ${pct}%`)
          .join(', ')}`,
      )
      console.log(
        `  functions: ${r.profile.by_function
          .slice(0, 15)
          .map(([f, pct]) => `${f} ${pct}%`)
          .join(', ')}`,
      )
    }
  for (const r of rows)
    if (r.push_back) {
      const p = r.push_back
      console.log(
        `push-back ${r.run}: retries ${p.retries} (sink gave ${p.sink_deferred} 451s, ${p.expected_deferred} expected), ` +
          `bounces ${p.bounces} (sink gave ${p.sink_rejected} 550s, ${p.expected_rejected} expected), delivered ${p.delivered}; ` +
          `sink counted the last deliverable at ${p.sink_done_s} s, database final at ${r.deliver_s} s (retry ${p.retry_intervals})`,
      )
    }
  for (const n of notes) console.log(`note: ${n}`)
}
