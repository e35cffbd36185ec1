// Benchmark `imap`: Postern's IMAP server, with the same client against Dovecot in the same
// run when asked (--with-dovecot; the peer from ../shared/bench-peers, 127.0.0.1:10143).
// Postern runs in a process of its own (bench/lib/imap-server-child.ts), the clients here.
//
// Modes (--mode idle|commands|all, default all):
// - idle: N sessions (--sessions, 1000) log in, SELECT INBOX and IDLE; reports the server's RSS
//   before and after, and the cost per session (the bar: 1,000 sessions under 100 MB).
// - commands: C clients (--clients, 10) loop over a mix of NOOP, FETCH 1:20 (FLAGS UID),
//   UID SEARCH UNSEEN, STORE +FLAGS \Seen, FETCH BODY.PEEK[] of one message, STATUS, FETCH of
//   the headers (FROM TO SUBJECT DATE) of 10 messages and SELECT INBOX, on an
//   INBOX of M messages (--messages, 10000, appended first over IMAP: APPENDs/s are reported
//   too), for S seconds (--seconds, 10); reports commands/s and p50/p99 latency.
//   --mix light leaves out SELECT and the header FETCH (the six-command mix of earlier runs;
//   Dovecot's Maildir pays a directory rescan per SELECT while other sessions STORE, so the
//   two mixes bound its figure from both sides).
// --dialect sqlite|postgres (sqlite; postgres needs POSTERN_DATABASE_URL or
// POSTERN_TEST_DATABASE_URL).
// Dovecot (--with-dovecot) is expected on 127.0.0.1:10143 as ../shared/bench-peers sets it up,
// with `protocol imap { mail_max_userip_connections = 1000 }` added to its dovecot.conf:
// its default of 10 sessions per user and address is fewer than the commands mode opens.
// Dovecot's RSS is that of its master process only (it forks a process per session).

import { fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { intOption } from './lib/args.ts'
import { BenchImap } from './lib/imap-client.ts'

interface Target {
  name: string
  host: string
  port: number
  user: string
  pass: string
  pid: number | null
  /** More log-ins for the idle mode (Dovecot limits sessions per user and address to 10). */
  users?: string[]
}

const rssMiB = (pid: number | null, field = 'VmRSS') => {
  if (!pid) return null
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`${field}:\\s+(\\d+) kB`))
  return Math.round((Number(m?.[1] ?? 0) / 1024) * 10) / 10
}

function message(i: number): Buffer {
  const body = `Benchmark message ${i}.\r\n${'The quick brown fox jumps over the lazy dog. '.repeat(40)}\r\n`
  return Buffer.from(
    `From: Bench ${i} <b${i}@client.test>\r\nTo: user1@bench.test\r\nSubject: Bench ${i}\r\nDate: Sat, 21 Nov 2026 08:00:00 +0000\r\nMessage-ID: <bench${i}.${Date.now()}@client.test>\r\n\r\n${body}`,
  )
}

async function startPostern(dialect: string) {
  const child = fork(new URL('./lib/imap-server-child.ts', import.meta.url), [dialect], {
    execArgv: process.env.BENCH_CPU_PROF
      ? [...process.execArgv, '--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
      : process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const info = await new Promise<{ port: number; user: string; pass: string; pid: number }>(
    (resolve, reject) => {
      child.on('message', (m: { ready?: boolean; error?: string } & Record<string, unknown>) => {
        if (m.ready) resolve(m as never)
        else if (m.error) reject(new Error(m.error))
      })
      child.once('exit', (code) => reject(new Error(`server exited (${code})`)))
    },
  )
  return {
    target: { name: `postern (${dialect})`, host: '127.0.0.1', ...info } as Target,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r))
      child.send({ stop: true })
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000)
      await exited
      clearTimeout(t)
    },
  }
}

function dovecotTarget(): Target {
  let pid: number | null = null
  try {
    pid = Number(readFileSync('/run/dovecot-bench/master.pid', 'utf8').trim()) || null
  } catch {}
  const users = Array.from({ length: 100 }, (_, i) => `test${i + 1}`)
  return { name: 'dovecot', host: '127.0.0.1', port: 10143, user: 'test1', pass: 'bench', pid, users }
}

/** A command that has not answered in 30 s is a hang: say which, instead of waiting forever. */
async function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in 30 s to ${what}`)), 30_000)
  })
  try {
    return await Promise.race([p, limit])
  } finally {
    clearTimeout(timer)
  }
}

async function idleRun(t: Target, sessions: number) {
  const before = rssMiB(t.pid)
  const clients: BenchImap[] = []
  const started = Date.now()
  for (let i = 0; i < sessions; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, sessions - i) }, async (_, k) => {
        const c = await BenchImap.open(t.host, t.port)
        const user = t.users ? t.users[(i + k) % t.users.length] : t.user
        await c.cmd(`LOGIN ${user} ${t.pass}`)
        await c.cmd('SELECT INBOX')
        await c.idle()
        clients.push(c)
      }),
    )
  }
  const openS = (Date.now() - started) / 1000
  await new Promise((r) => setTimeout(r, 3000))
  const after = rssMiB(t.pid)
  for (const c of clients) c.close()
  const delta = before !== null && after !== null ? Math.round((after - before) * 10) / 10 : null
  return {
    target: t.name,
    sessions: clients.length,
    open_s: Math.round(openS * 100) / 100,
    logins_per_s: Math.round(clients.length / openS),
    rss_before_mib: before,
    rss_after_mib: after,
    rss_delta_mib: delta,
    kib_per_session: delta !== null ? Math.round((delta * 1024) / clients.length) : null,
  }
}

async function commandsRun(t: Target, clients: number, messages: number, seconds: number, light = false) {
  const loader = await BenchImap.open(t.host, t.port)
  await loader.cmd(`LOGIN ${t.user} ${t.pass}`)
  await loader.cmd('SELECT INBOX')
  const t0 = Date.now()
  for (let i = 0; i < messages; i++) await loader.append('INBOX', message(i))
  const appendS = (Date.now() - t0) / 1000
  loader.close()
  const lat: number[] = []
  const perCommand = new Map<string, number[]>()
  let count = 0
  let errors = 0
  const until = Date.now() + seconds * 1000
  // IDLE with mail arriving: one session idles on INBOX while another appends every 100 ms;
  // the latency is from the APPEND's OK to the idler's EXISTS.
  const idler = await BenchImap.open(t.host, t.port)
  await idler.cmd(`LOGIN ${t.user} ${t.pass}`)
  await idler.cmd('SELECT INBOX')
  await idler.idle()
  const notify: number[] = []
  const arrivals = (async () => {
    const poster = await BenchImap.open(t.host, t.port)
    await poster.cmd(`LOGIN ${t.user} ${t.pass}`)
    let k = 0
    while (Date.now() < until - 200) {
      await poster.append('INBOX', message(messages + k++))
      const done = performance.now()
      for (;;) {
        const line = await withTimeout(idler.nextLine(), `${t.name}: IDLE waiting for EXISTS`)
        if (/^\* \d+ EXISTS/.test(line)) break
      }
      notify.push(performance.now() - done)
      await new Promise((r) => setTimeout(r, 100))
    }
    poster.close()
    idler.close()
  })()
  await Promise.all(
    Array.from({ length: clients }, async (_, k) => {
      const c = await BenchImap.open(t.host, t.port)
      await c.cmd(`LOGIN ${t.user} ${t.pass}`)
      await c.cmd('SELECT INBOX')
      let i = k
      const mix = [
        () => 'NOOP',
        () => 'FETCH 1:20 (FLAGS UID)',
        () => 'UID SEARCH UNSEEN',
        () => `STORE ${1 + (i % messages)} +FLAGS (\\Seen)`,
        () => `FETCH ${1 + ((i * 7) % messages)} BODY.PEEK[]`,
        () => 'STATUS INBOX (MESSAGES UNSEEN)',
        () =>
          `FETCH ${1 + ((i * 13) % (messages - 10))}:${10 + ((i * 13) % (messages - 10))} (UID BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])`,
        () => 'SELECT INBOX',
      ].slice(0, light ? 6 : 8)
      while (Date.now() < until) {
        const cmd = (mix[i % mix.length] as () => string)()
        const s = performance.now()
        try {
          await withTimeout(c.cmd(cmd), `${t.name}: ${cmd}`)
          count++
          const ms = performance.now() - s
          lat.push(ms)
          const verb =
            cmd
              .split(' ')
              .slice(0, cmd.startsWith('UID') ? 2 : 1)
              .join(' ') + (cmd.includes('HEADER.FIELDS') ? ' HEADERS' : cmd.includes('BODY') ? ' BODY' : '')
          const l = perCommand.get(verb) ?? []
          l.push(ms)
          perCommand.set(verb, l)
        } catch (err) {
          errors++
          if (errors <= 3) console.error(`  error: ${(err as Error).message}`)
        }
        i++
      }
      c.close()
    }),
  )
  await arrivals
  notify.sort((a, b) => a - b)
  lat.sort((a, b) => a - b)
  const q = (p: number) =>
    Math.round((lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0) * 100) / 100
  return {
    target: t.name,
    clients,
    messages,
    appends_per_s: Math.round(messages / appendS),
    commands: count,
    commands_per_s: Math.round(count / seconds),
    p50_ms: q(0.5),
    p99_ms: q(0.99),
    errors,
    idle_notify_ms: {
      n: notify.length,
      p50: Math.round((notify[Math.floor(notify.length / 2)] ?? 0) * 100) / 100,
      p99: Math.round((notify[Math.floor(notify.length * 0.99)] ?? 0) * 100) / 100,
    },
    peak_rss_mib: rssMiB(t.pid, 'VmHWM'),
    per_command: Object.fromEntries(
      [...perCommand].map(([verb, l]) => {
        l.sort((a, b) => a - b)
        const p = (q: number) =>
          Math.round((l[Math.min(l.length - 1, Math.floor(l.length * q))] ?? 0) * 100) / 100
        return [verb, { ops_per_s: Math.round(l.length / seconds), p50_ms: p(0.5), p99_ms: p(0.99) }]
      }),
    ),
  }
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      mode: { type: 'string' },
      sessions: { type: 'string' },
      clients: { type: 'string' },
      messages: { type: 'string' },
      seconds: { type: 'string' },
      dialect: { type: 'string' },
      'with-dovecot': { type: 'boolean' },
      mix: { type: 'string' },
    },
  })
  if (values.mix !== undefined && values.mix !== 'full' && values.mix !== 'light')
    throw new Error(`--mix is full or light, not ${values.mix}`)
  const mode = values.mode ?? 'all'
  const sessions = intOption(values.sessions, 1000, 'sessions', 1)
  const clients = intOption(values.clients, 10, 'clients', 1)
  const messages = intOption(values.messages, 10_000, 'messages', 1)
  const seconds = intOption(values.seconds, 10, 'seconds', 1)
  const dialect = values.dialect ?? 'sqlite'
  const server = await startPostern(dialect)
  const targets: Target[] = [server.target]
  if (values['with-dovecot']) targets.push(dovecotTarget())
  const idle = []
  const commands = []
  try {
    await new Promise((r) => setTimeout(r, 1000))
    const idleRss = rssMiB(server.target.pid)
    console.log(`imap benchmark: ${targets.map((t) => t.name).join(' vs ')}; Postern idle RSS ${idleRss} MiB`)
    for (const t of targets) {
      if (mode === 'commands' || mode === 'all') {
        const r = await commandsRun(t, clients, messages, seconds, values.mix === 'light')
        commands.push(r)
        console.log(
          `commands ${t.name.padEnd(18)} ${r.commands_per_s} cmd/s (p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, ${r.errors} errors), APPEND ${r.appends_per_s}/s, peak RSS ${r.peak_rss_mib} MiB`,
        )
        console.log(
          `  IDLE notify      ${r.idle_notify_ms.n} arrivals, APPEND OK -> EXISTS p50 ${r.idle_notify_ms.p50} ms, p99 ${r.idle_notify_ms.p99} ms`,
        )
        for (const [verb, v] of Object.entries(r.per_command))
          console.log(
            `  ${verb.padEnd(16)} ${String(v.ops_per_s).padStart(6)}/s  p50 ${v.p50_ms} ms  p99 ${v.p99_ms} ms`,
          )
      }
      if (mode === 'idle' || mode === 'all') {
        const r = await idleRun(t, sessions)
        idle.push(r)
        console.log(
          `idle     ${t.name.padEnd(18)} ${r.sessions} IDLE sessions: RSS ${r.rss_before_mib} -> ${r.rss_after_mib} MiB (+${r.rss_delta_mib} MiB, ${r.kib_per_session} KiB/session), ${r.logins_per_s} log-ins/s`,
        )
      }
    }
    const [p, d] = commands
    if (p && d)
      console.log(
        `ratio Postern/Dovecot commands/s ${Math.round((p.commands_per_s / d.commands_per_s) * 100) / 100}`,
      )
    console.log(JSON.stringify({ bench: 'imap', dialect, idle_rss_mib: idleRss, idle, commands }))
  } finally {
    await server.stop()
  }
}
