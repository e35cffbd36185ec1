// Benchmark `footprint`: the resident memory of `postern serve` run as a user runs it (the bin
// with the flags of `npm start`, its own process, SQLite in a temp data folder, every listener
// on 127.0.0.1 with a random port, DNS pinned to a loopback server that knows nothing, so
// SPF/DKIM/DMARC run and find no records). Issue 13 item 3: at most 100 MB idle, and no growth
// under a sustained inbound load.
//
// Phases, each printing VmRSS of the server process (MiB):
// 1. first start on an empty data folder with an empty compile cache (as when the cache folder
//    in the temp dir was wiped since `npm install` warmed it), idle for --idle-seconds;
// 2. first start on an empty data folder with the compile cache warm (after `npm install`);
// 3. the README's first-mail set-up through the CLI (init, domain add, verify --trust-operator,
//    mailbox add), a new start, idle; then after the first API request (GET /v1/messages with
//    the mailbox key), the first SMTP delivery and the first IMAP session (LOGIN, SELECT,
//    FETCH);
// 4. the soak: --sessions clients in a closed loop of one 5 KB message per connection
//    (bench/lib/smtp-client.ts, as bench smtp-inbound's probe sends them) for --minutes, RSS
//    printed at the end of each minute, and the ratio of the last minute's RSS to the first's
//    (target: within 10%);
// 5. with --large N: N concurrent messages of --large-mb MB each (10 x 20 MB in issue 13), the
//    peak RSS (VmHWM, reset before) during them, and whether each arrived intact.
// Options: --minutes N (1) --sessions N (10) --idle-seconds N (10) --large N (0) --large-mb N (20)
//   --idle-only (phase 2 alone: what a user gets from the README's first `npm start`, for the
//   idle row of bench all; its JSON line's idle_rss_mib)
//   --node-flags "..." (instead of npm start's V8 flags, to compare: --node-flags '' is Node's
//   defaults)

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { intOption } from './lib/args.ts'
import { startDnsProcess } from './lib/dns-process.ts'
import { BenchImap } from './lib/imap-client.ts'
import { sourceLike } from './lib/mail-gen.ts'
import { statusMiB } from './lib/proc-stats.ts'
import { sendMessage, toDataBody } from './lib/smtp-client.ts'

const run$ = promisify(execFile)
const BIN = new URL('../bin/postern.mjs', import.meta.url).pathname
/** The V8 flags of `npm start` (package.json), so the figures are the ones a user gets. */
const NPM_START_FLAGS = ['--max-semi-space-size=2']
let START_FLAGS = NPM_START_FLAGS
const DOMAIN = 'bench.test'
const MAILBOX = `user1@${DOMAIN}`

interface Running {
  proc: ChildProcess
  pid: number
  http: number
  mx: number
  imap: number
  stop(): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const rss = (pid: number) => statusMiB('VmRSS', pid)

function serverEnv(dataDir: string, dnsServers: string[], extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    POSTERN_DATA_DIR: dataDir,
    POSTERN_LOG_LEVEL: 'warn',
    POSTERN_HTTP_PORT: '0',
    POSTERN_SMTP_HOST: '127.0.0.1',
    POSTERN_SMTP_MX_PORT: '0',
    POSTERN_SMTP_SUBMISSION_PORT: '0',
    POSTERN_SMTP_SUBMISSIONS_PORT: '0',
    POSTERN_IMAP_HOST: '127.0.0.1',
    POSTERN_IMAP_PORT: '0',
    POSTERN_IMAP_TLS_PORT: '0',
    POSTERN_DNS_SERVERS: dnsServers.join(','),
    ...extra,
  }
}

/** Starts `postern serve` and waits for its banner; ports are read from it. */
async function serve(env: NodeJS.ProcessEnv): Promise<Running> {
  const proc = spawn(process.execPath, [...START_FLAGS, BIN, 'serve'], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  const ports = await new Promise<{ http: number; mx: number; imap: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s: ${err}`)), 60_000)
    proc.stderr?.on('data', (d) => {
      err += d
      const http = err.match(/ http +http:\/\/127\.0\.0\.1:(\d+)/)
      const mx = err.match(/smtp-mx +smtp:\/\/127\.0\.0\.1:(\d+)/)
      const imap = err.match(/ imap +imap:\/\/127\.0\.0\.1:(\d+)/)
      if (http && mx && imap) {
        clearTimeout(timer)
        resolve({ http: Number(http[1]), mx: Number(mx[1]), imap: Number(imap[1]) })
      }
    })
    proc.on('exit', (code) => reject(new Error(`server exited (${code}): ${err}`)))
  })
  const exited = new Promise((r) => proc.once('exit', r))
  return {
    proc,
    pid: proc.pid as number,
    ...ports,
    async stop() {
      proc.kill('SIGTERM')
      await exited
    },
  }
}

async function cli(env: NodeJS.ProcessEnv, args: string[]): Promise<string> {
  const { stdout } = await run$(process.execPath, [BIN, ...args], { env, maxBuffer: 1 << 20 })
  return stdout
}

function message(n: number, bytes = 5120): Buffer {
  return toDataBody(sourceLike({ from: 'sender@client.test', to: MAILBOX, length: bytes, id: `fp${n}` }))
}

const envelope = { helo: 'client.test', from: 'sender@client.test', to: MAILBOX }

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      minutes: { type: 'string' },
      sessions: { type: 'string' },
      'idle-seconds': { type: 'string' },
      large: { type: 'string' },
      'large-mb': { type: 'string' },
      'node-flags': { type: 'string' },
      'idle-only': { type: 'boolean' },
    },
  })
  if (values['node-flags'] !== undefined) START_FLAGS = values['node-flags'].split(' ').filter(Boolean)
  const minutes = intOption(values.minutes, 1, 'minutes', 1)
  const sessions = intOption(values.sessions, 10, 'sessions', 1)
  const idleMs = intOption(values['idle-seconds'], 10, 'idle-seconds', 1) * 1000
  const large = intOption(values.large, 0, 'large')
  const largeMb = intOption(values['large-mb'], 20, 'large-mb', 1)

  const dns = await startDnsProcess()
  const scratch = mkdtempSync(join(tmpdir(), 'postern-footprint-'))
  const figures: Record<string, number | string | number[]> = {}
  const print = (label: string, mib: number) => {
    figures[label] = mib
    console.log(`${label.padEnd(44)} ${mib.toFixed(1).padStart(7)} MiB`)
  }
  let server: Running | null = null
  try {
    console.log(`footprint benchmark: node ${START_FLAGS.join(' ')} bin/postern.mjs serve, SQLite`)
    // 1 and 2: first starts on empty data folders, cold and warm compile cache.
    const idleOnly = values['idle-only'] === true
    for (const cache of idleOnly ? (['warm'] as const) : (['cold', 'warm'] as const)) {
      const dir = join(scratch, `first-${cache}`)
      const extra: Record<string, string> =
        cache === 'cold' ? { NODE_COMPILE_CACHE: join(scratch, 'compile-cache') } : {}
      server = await serve(serverEnv(dir, dns.servers, extra))
      await sleep(idleMs)
      print(`first start, ${cache} compile cache, idle`, rss(server.pid))
      await server.stop()
      server = null
    }
    if (idleOnly) {
      const idle = figures['first start, warm compile cache, idle'] as number
      const flags = START_FLAGS.join(' ')
      console.log(
        JSON.stringify({
          bench: 'footprint',
          db: 'sqlite',
          flags,
          idle_s: idleMs / 1000,
          idle_rss_mib: idle,
        }),
      )
      return
    }

    // 3. The README's first mail, then first use of each protocol.
    const dir = join(scratch, 'data')
    const env = serverEnv(dir, dns.servers, {})
    await cli(env, ['init', '--owner-email', 'owner@example.com', '--org', 'Bench'])
    await cli(env, ['domain', 'add', DOMAIN])
    await cli(env, ['domain', 'verify', DOMAIN, '--trust-operator'])
    const added = JSON.parse(await cli(env, ['mailbox', 'add', MAILBOX, '--json'])) as {
      password: string
      api_key: { key: string }
    }
    server = await serve(env)
    const s = server
    await sleep(idleMs)
    print('set-up done, new start, idle', rss(s.pid))
    const api = await fetch(`http://127.0.0.1:${s.http}/v1/messages`, {
      headers: { authorization: `Bearer ${added.api_key.key}` },
    })
    if (api.status !== 200) throw new Error(`GET /v1/messages: ${api.status}`)
    await api.arrayBuffer()
    await sleep(1000)
    print('after the first API request', rss(s.pid))
    const first = await sendMessage(s.mx, envelope, message(0))
    if (first.code !== 250) throw new Error(`first SMTP delivery: ${first.code} ${first.error ?? ''}`)
    await sleep(1000)
    print('after the first SMTP delivery', rss(s.pid))
    const imap = await BenchImap.open('127.0.0.1', s.imap)
    await imap.cmd(`LOGIN ${MAILBOX} ${added.password}`)
    await imap.cmd('SELECT INBOX')
    await imap.cmd('FETCH 1:* (FLAGS BODY.PEEK[])')
    await imap.cmd('LOGOUT').catch(() => '')
    await sleep(1000)
    print('after the first IMAP session', rss(s.pid))

    // 4. The soak.
    let sent = 0
    let failed = 0
    let stop = false
    const loop = async (c: number) => {
      for (let n = 0; !stop; n++) {
        const r = await sendMessage(s.mx, envelope, message(c * 1_000_000 + n))
        if (r.code === 250) sent++
        else failed++
      }
    }
    const clients = Array.from({ length: sessions }, (_, c) => loop(c + 1))
    const perMinute: number[] = []
    console.log(`soak: ${sessions} SMTP clients, one 5 KB message per connection, ${minutes} min`)
    for (let m = 1; m <= minutes; m++) {
      const before = sent
      await sleep(60_000)
      const now = rss(s.pid)
      perMinute.push(now)
      console.log(
        `  minute ${String(m).padStart(2)}: ${now.toFixed(1).padStart(7)} MiB, ${sent - before} messages`,
      )
    }
    stop = true
    await Promise.all(clients)
    figures.soak_rss_per_minute = perMinute
    figures.soak_messages = sent
    figures.soak_failed = failed
    const ratio = (perMinute.at(-1) as number) / (perMinute[0] as number)
    figures.soak_end_vs_first_minute = Math.round(ratio * 1000) / 1000
    console.log(`soak: ${sent} messages accepted, ${failed} not; end/first minute RSS ${ratio.toFixed(3)}`)
    await sleep(5000)
    print('after the soak, idle 5 s', rss(s.pid))

    // 5. Large messages at once.
    if (large > 0) {
      const body = toDataBody(
        sourceLike({ from: 'sender@client.test', to: MAILBOX, length: largeMb * 1024 * 1024, id: 'large' }),
      )
      writeFileSync(`/proc/${s.pid}/clear_refs`, '5') // VmHWM := VmRSS
      const before = rss(s.pid)
      const results = await Promise.all(
        Array.from({ length: large }, () => sendMessage(s.mx, envelope, body, 300_000)),
      )
      const ok = results.filter((r) => r.code === 250).length
      figures.large_peak_rss = statusMiB('VmHWM', s.pid)
      console.log(
        `large: ${large} x ${largeMb} MB at once, ${ok} accepted; RSS before ${before.toFixed(1)} MiB, peak ${statusMiB('VmHWM', s.pid).toFixed(1)} MiB`,
      )
      await sleep(5000)
      print('after the large messages, idle 5 s', rss(s.pid))
    }
    console.log(JSON.stringify({ bench: 'footprint', db: 'sqlite', sessions, minutes, ...figures }))
  } finally {
    await server?.stop().catch(() => {})
    await dns.close()
    rmSync(scratch, { recursive: true, force: true })
  }
}
