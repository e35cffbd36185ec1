// Benchmark `smtp-inbound`: Postern's MX accepting mail into a hosted mailbox, loaded by the
// same generator as the Postfix peer benchmark (Postfix's smtp-source: -s 20 -m 20000 -l 5120,
// a new connection per message, HELO client.test, sender@client.test -> user1@bench.test).
// Postern runs inside the benchmark (listeners on 127.0.0.1, temp data folder, SQLite or a
// fresh PostgreSQL schema), so the benchmark reads figures from inside it: each configuration
// runs in a fresh bench worker process (lib/inbound-worker.ts, lib/inbound-run.ts) so memory
// and JIT state do not carry over between variants. smtp-source, the latency probe, the
// size-mix client and the DNS server each run in a process of their own.
//
// Per run it reports:
// - msgs/s: N / wall time of smtp-source (every 250 means stored: bytes and rows durable);
// - p50/p99 ms: end of DATA to the 250, measured by a probe client in its own process that
//   sends smtp-source-like 5 KB messages one at a time (at most one per --probe-interval-ms)
//   alongside smtp-source, timing from writing the final "." line to reading the reply;
// - peak RSS of the process running Postern during the run (VmHWM reset before it; idle RSS
//   is taken after the warm-up, just before the run);
// - stored: messages in the mailbox after the run minus before, against N + accepted probes,
//   counted right after smtp-source and the probe stopped (every 250 must already be there);
// - inside Postern: blob put and group-commit times, DNS lookups, event-loop delay, CPU.
// Variants: auth checks off (smtp.verify_auth=false) and on (SPF, DKIM, DMARC, iprev against
// a loopback DNS server pinned through dns.servers; client.test publishes SPF ip4:127.0.0.1
// -all, DMARC p=reject, a DKIM key and PTR/A records); on SQLite, and on PostgreSQL when
// POSTERN_DATABASE_URL (or POSTERN_TEST_DATABASE_URL) is set. smtp-source cannot vary the
// message size, so a 5-100 KB mix (log-uniform sizes, DKIM-signed, attachments above 30 KB) is
// sent by this repository's own client (bench/lib/smtp-load-child.ts) and labelled as such.
//
// Options: --messages N (20000) --sessions N (20) --variant off|on|all (all)
//   --dialect sqlite|postgres|all (all: PostgreSQL only when a URL is set) --warmup N (500,
//   smtp-source messages before each timed run) --mix-messages N (min(N, 5000); 0: no mix)
//   --probe-interval-ms N (50) --with-postfix (also run bench-postfix-mx.sh once with the same
//   N and sessions, and print Postern/Postfix ratios from this same run) --profile DIR (write
//   a CPU profile of Postern's main thread per timed run, and print where its time went).

import { fork } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { parseArgs } from 'node:util'
import { intOption } from './lib/args.ts'
import { type Row, type RunOptions, SIZE, type Variant } from './lib/inbound-run.ts'
import { type PostfixRun, runPostfixMx, SMTP_SOURCE } from './lib/peers.ts'
import { type Dialect, postgresUrl } from './lib/postern-mx.ts'
import { round2 } from './lib/proc-stats.ts'

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      messages: { type: 'string' },
      sessions: { type: 'string' },
      variant: { type: 'string' },
      dialect: { type: 'string' },
      warmup: { type: 'string' },
      'mix-messages': { type: 'string' },
      'probe-interval-ms': { type: 'string' },
      'with-postfix': { type: 'boolean' },
      profile: { type: 'string' },
    },
  })
  const int = intOption
  const messages = int(values.messages, 20_000, 'messages', 1)
  const sessions = int(values.sessions, 20, 'sessions', 1)
  const warmup = int(values.warmup, 500, 'warmup')
  const mixMessages = int(values['mix-messages'], Math.min(messages, 5000), 'mix-messages')
  const probeIntervalMs = int(values['probe-interval-ms'], 50, 'probe-interval-ms', 1)
  const profileDir = values.profile ?? null
  const variant = values.variant ?? 'all'
  const dialect = values.dialect ?? 'all'
  if (!['off', 'on', 'all'].includes(variant)) throw new Error('--variant: off, on or all')
  if (!['sqlite', 'postgres', 'all'].includes(dialect)) throw new Error('--dialect: sqlite, postgres or all')
  const variants: Variant[] = variant === 'all' ? ['off', 'on'] : [variant as Variant]
  const notes: string[] = []
  let dialects: Dialect[] = dialect === 'all' ? ['sqlite', 'postgres'] : [dialect as Dialect]
  if (dialects.includes('postgres') && !postgresUrl()) {
    if (dialect === 'postgres') throw new Error('--dialect postgres needs POSTERN_DATABASE_URL')
    dialects = ['sqlite']
    notes.push('PostgreSQL skipped: set POSTERN_DATABASE_URL (or POSTERN_TEST_DATABASE_URL) to run it')
  }
  await smtpSourceCheck()

  // The sending domain's DKIM key (the mix client signs with it; DNS publishes it).
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const dkimPub = (keys.publicKey.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64')
  const dkimPem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string

  console.log(
    `smtp-inbound benchmark: ${messages} messages of ${SIZE} B over ${sessions} sessions (smtp-source), ` +
      `variants ${variants.join('+')}, ${dialects.join('+')}, warm-up ${warmup}, mix ${mixMessages}`,
  )

  let postfix: PostfixRun | null = null
  if (values['with-postfix']) {
    console.log('postfix: running bench-postfix-mx.sh (BENCH_RUNS=1)...')
    postfix = await runPostfixMx({ messages, sessions, timeoutMs: 1_800_000 })
    for (const line of postfix.output.split('\n')) console.log(`  | ${line}`)
    if (!(postfix.accept_msgs_per_sec > 0))
      notes.push(`the Postfix run gave no rate (exit ${postfix.rc}); see its output above`)
  }

  const rows: Row[] = []
  for (const d of dialects)
    for (const v of variants) {
      const label = `${d} ${v}`
      console.log(`${label}: starting...`)
      rows.push(
        ...(await inWorker({
          dialect: d,
          variant: v,
          messages,
          sessions,
          warmup,
          mixMessages,
          probeIntervalMs,
          dkimPub,
          dkimPem,
          profileDir,
        })),
      )
      const problems = rows.filter((r) => r.dialect === d && r.variant === v).flatMap((r) => r.problems)
      console.log(`${label}: done (${problems.length ? problems.join('; ') : 'ok'})`)
    }

  print(rows, postfix, notes)
  const ratios = postfix
    ? rows
        .filter((r) => r.tool === 'smtp-source')
        .map((r) => ({
          run: r.run,
          vs_postfix_accept: round2(r.msgs_per_s / postfix.accept_msgs_per_sec),
          vs_postfix_delivered: round2(r.msgs_per_s / postfix.delivered_msgs_per_sec),
        }))
    : null
  if (ratios) {
    console.log(
      `postfix (same run): accepted ${postfix?.accept_msgs_per_sec}/s, delivered ${postfix?.delivered_msgs_per_sec}/s, ` +
        `postfix CPU ${postfix?.fields.postfix_cpu_s ?? '?'} s, loaded RSS ${kbToMiB(postfix?.fields.loaded_rss_kb)} MiB, ` +
        `PSS ${kbToMiB(postfix?.fields.loaded_pss_kb)} MiB`,
    )
    for (const r of ratios)
      console.log(
        `ratio ${r.run.padEnd(22)} Postern/Postfix accept ${r.vs_postfix_accept}, /delivered ${r.vs_postfix_delivered}`,
      )
  }
  console.log(
    JSON.stringify({
      bench: 'smtp-inbound',
      messages,
      sessions,
      message_bytes: SIZE,
      warmup,
      mix_messages: mixMessages,
      probe_interval_ms: probeIntervalMs,
      notes,
      rows,
      postfix: postfix
        ? {
            accept_msgs_per_sec: postfix.accept_msgs_per_sec,
            delivered_msgs_per_sec: postfix.delivered_msgs_per_sec,
            rc: postfix.rc,
            fields: postfix.fields,
          }
        : null,
      ratios,
    }),
  )
  if (rows.some((r) => !r.ok)) process.exitCode = 1
}

/** Runs one configuration in a fresh bench process (lib/inbound-worker.ts) with Postern inside it. */
async function inWorker(o: RunOptions): Promise<Row[]> {
  // The parent's flags (e.g. --cpu-prof) apply to the worker: that is where Postern runs.
  const child = fork(new URL('./lib/inbound-worker.ts', import.meta.url), [], {
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  try {
    return await new Promise<Row[]>((resolve, reject) => {
      child.on('message', (m: { ready?: boolean; rows?: Row[]; error?: string }) => {
        if (m.ready) child.send(o)
        else if (m.rows) resolve(m.rows)
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

async function smtpSourceCheck(): Promise<void> {
  const { existsSync } = await import('node:fs')
  if (!existsSync(SMTP_SOURCE))
    throw new Error(
      `${SMTP_SOURCE} is missing: install the peers first (as root): bash /work/shared/bench-peers/install-peers.sh`,
    )
}

const kbToMiB = (kb: string | undefined) => (kb ? round2(Number(kb) / 1024) : '?')
const pad = (v: unknown, n: number) => String(v).padStart(n)

function print(rows: Row[], postfix: PostfixRun | null, notes: string[]): void {
  console.log('')
  console.log(
    'run                      msgs     secs  msgs/s   p50 ms   p99 ms  lat n  idle MiB  peak MiB   stored/expected  mach CPU%  dns q/msg',
  )
  for (const r of rows)
    console.log(
      `${r.run.padEnd(22)} ${pad(r.messages, 6)} ${pad(r.wall_s, 8)} ${pad(r.msgs_per_s, 7)} ${pad(r.latency_ms.p50, 8)} ${pad(r.latency_ms.p99, 8)} ${pad(r.latency_ms.n, 6)} ${pad(r.idle_rss_mib, 9)} ${pad(r.peak_rss_mib, 9)} ${pad(`${r.stored}/${r.expected}`, 17)} ${pad(r.machine_cpu_pct, 10)} ${pad(r.dns_queries_per_msg, 10)}`,
    )
  if (postfix)
    console.log(
      `${'postfix (peer script)'.padEnd(22)} ${pad(postfix.fields.n ?? '?', 6)} ${pad(postfix.fields.accept_secs ?? '?', 8)} ${pad(postfix.accept_msgs_per_sec, 7)}   (accepted; ${postfix.delivered_msgs_per_sec}/s delivered to Maildir, deliver_secs ${postfix.fields.deliver_secs ?? '?'})`,
    )
  console.log('')
  console.log(
    'inside Postern           put p50/p99 ms   commit p50/p99 ms  batch mean/max  dns lookups/msg mean ms  loop delay p99/max ms  CPU user+sys s  statements/msg',
  )
  for (const r of rows) {
    const i = r.inside
    const dnsPerMsg = r.expected ? round2(i.dns_lookup_ms.n / r.expected) : 0
    console.log(
      `${r.run.padEnd(22)} ${pad(`${i.blob_put_ms.p50}/${i.blob_put_ms.p99}`, 16)} ${pad(`${i.commit_ms.p50}/${i.commit_ms.p99}`, 19)} ${pad(`${i.commit_mean_batch}/${i.commit_max_batch}`, 15)} ${pad(`${dnsPerMsg} ${i.dns_lookup_ms.mean}`, 24)} ${pad(`${i.event_loop_delay_ms.p99}/${i.event_loop_delay_ms.max}`, 22)} ${pad(`${i.cpu_user_s}+${i.cpu_sys_s}`, 15)} ${pad(r.expected ? round2(i.statements / r.expected) : 0, 14)}`,
    )
  }
  console.log('')
  console.log(
    'p50/p99: end of DATA to 250. smtp-source rows: a probe client in its own process sends one 5 KB message at a time alongside smtp-source; mix* rows: every message.',
  )
  console.log(
    'mix*: 5-100 KB messages (log-uniform, DKIM-signed, attachment above 30 KB) sent by bench/lib/smtp-load-child.ts, not smtp-source (it cannot vary sizes).',
  )
  for (const r of rows)
    if (r.auth_results) console.log(`auth results ${r.run}: ${JSON.stringify(r.auth_results)}`)
  for (const r of rows)
    if (r.dns_queries)
      console.log(
        `dns questions ${r.run}: ${JSON.stringify(r.dns_by_name)} (questions that reached the DNS server)`,
      )
  for (const r of rows)
    if (r.pre_idle.busyPct >= 15)
      console.log(`WARNING ${r.run}: the machine was still ${r.pre_idle.busyPct}% busy when the run began`)
  for (const r of rows) if (r.problems.length) console.log(`PROBLEM ${r.run}: ${r.problems.join('; ')}`)
  for (const r of rows)
    if (r.profile)
      console.log(
        `profile ${r.run} (${r.profile.sampled_s} s of main thread, ${r.profile.file}): ${r.profile.by_area
          .slice(0, 10)
          .map(([a, pct]) => `${a} ${pct}%`)
          .join(', ')}`,
      )
  for (const n of notes) console.log(`note: ${n}`)
}
