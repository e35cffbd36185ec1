// Benchmark `webhooks`: the outbound benchmark's load (messages POSTed to /v1/emails, composed,
// DKIM-signed, queued, delivered over SMTP to a loopback sink through a real MX lookup), run
// twice in the same process on the same installation: first with no webhook endpoint, then
// with 3 endpoints on loopback taking every email.* event (each message raises email.queued,
// email.delivered and email.sent, so 9 deliveries per message). Reports:
// - outbound throughput with and without webhooks: messages / (first request -> database shows
//   every message of the run sent), and the cost (the ratio);
// - webhook deliveries/s: deliveries / (first request -> last delivery received);
// - p50/p99/max from the event (its created_at, the body's `timestamp`) to its arrival at the
//   receiver, and whether every event arrived once at every endpoint (duplicates, missing).
// Postern runs in this process (SQLite by default, PostgreSQL with --dialect postgres and
// POSTERN_DATABASE_URL); the HTTP clients too (the same for both runs); the SMTP sink and the
// receivers in bench/lib/webhook-peers-child.ts, the DNS server in its own process.
// Options: --messages N (600) --concurrency N (10 HTTP clients) --endpoints N (3)
//   --webhook-concurrency N (webhooks.concurrency, 32) --poll-ms N (webhooks.poll_ms, 100); both
//   default to the config defaults
//   --dialect sqlite|postgres

import { type ChildProcess, fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { loadConfig } from '../src/config/load.ts'
import { type Postern, startPostern } from '../src/main.ts'
import { createConnectGuard } from '../src/net/connect-guard.ts'
import { Api } from '../test/helpers/api.ts'
import { loopbackEnv } from '../test/helpers/server.ts'
import { intOption } from './lib/args.ts'
import { startDnsProcess } from './lib/dns-process.ts'
import { benchOrgWithDomain, type Dialect, must, postgresUrl } from './lib/postern-mx.ts'
import { percentile, round2 } from './lib/proc-stats.ts'

const SENDER = 'bench-sender.test'
const REMOTE = 'remote.test'
const EVENTS_PER_MESSAGE = 3 // email.queued, email.delivered, email.sent

interface HookStats {
  messages: number
  unique: number
  duplicates: number
  first: number | null
  last: number | null
  latencies: number[]
}
interface PeerStats {
  sinkMessages: number
  sinkSessions: number
  cpuS: number
  hooks: HookStats[]
}

interface Peers {
  sinkPort: number
  hookUrls: string[]
  stats(): Promise<PeerStats>
  reset(): Promise<void>
  close(): void
}

async function startPeers(endpoints: number): Promise<Peers> {
  const child: ChildProcess = fork(
    new URL('./lib/webhook-peers-child.ts', import.meta.url),
    [String(endpoints)],
    {
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  )
  const ready = await new Promise<{ sinkPort: number; hookUrls: string[] }>((resolve, reject) => {
    child.once('message', (m: { sinkPort: number; hookUrls: string[] }) => resolve(m))
    child.once('exit', (code) => reject(new Error(`peers exited (${code})`)))
  })
  const ask = <T>(cmd: string, key: string) =>
    new Promise<T>((resolve) => {
      const on = (m: Record<string, unknown>) => {
        if (key in m) {
          child.off('message', on)
          resolve(m[key] as T)
        }
      }
      child.on('message', on)
      child.send({ cmd })
    })
  return {
    ...ready,
    stats: () => ask<PeerStats>('stats', 'stats'),
    reset: () => ask<void>('reset', 'reset'),
    close: () => child.send({ cmd: 'close' }),
  }
}

/** Sends `n` messages with `clients` concurrent HTTP clients; resolves when every one is accepted. */
async function sendLoad(url: string, key: string, n: number, clients: number, label: string) {
  let next = 0
  let refused = 0
  const text = `${'The quick brown fox jumps over the lazy dog. '.repeat(110)}\n`
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= n) return
      const r = await fetch(`${url}/v1/emails`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          from: `bench@${SENDER}`,
          to: `user1@${REMOTE}`,
          subject: `${label} ${i}`,
          text,
        }),
      })
      await r.arrayBuffer()
      if (r.status !== 202) refused++
    }
  }
  await Promise.all(Array.from({ length: clients }, worker))
  return refused
}

async function allSentAt(
  postern: Postern,
  label: string,
  n: number,
  timeoutMs: number,
): Promise<number | null> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const r = await postern.store.db
      .selectFrom('outbound_messages')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('subject', 'like', `${label} %`)
      .where('status', '=', 'sent')
      .executeTakeFirstOrThrow()
    if (Number(r.n) >= n) return Date.now()
    if (Date.now() > until) return null
    await new Promise((res) => setTimeout(res, 20))
  }
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      messages: { type: 'string' },
      concurrency: { type: 'string' },
      endpoints: { type: 'string' },
      'webhook-concurrency': { type: 'string' },
      'poll-ms': { type: 'string' },
      dialect: { type: 'string' },
    },
  })
  const messages = intOption(values.messages, 600, 'messages', 1)
  const clients = intOption(values.concurrency, 10, 'concurrency', 1)
  const endpoints = intOption(values.endpoints, 3, 'endpoints', 1)
  const hookConcurrency = intOption(values['webhook-concurrency'], 32, 'webhook-concurrency', 1)
  const pollMs = intOption(values['poll-ms'], 100, 'poll-ms', 5)
  const dialect = (values.dialect ?? 'sqlite') as Dialect
  if (dialect !== 'sqlite' && dialect !== 'postgres') throw new Error('--dialect: sqlite or postgres')
  const pgUrl = postgresUrl()
  if (dialect === 'postgres' && !pgUrl) throw new Error('--dialect postgres needs POSTERN_DATABASE_URL')
  console.log(
    `webhooks benchmark: ${messages} messages (${clients} HTTP clients) without, then with ${endpoints} endpoints ` +
      `taking email.* (${messages * EVENTS_PER_MESSAGE * endpoints} deliveries), ${dialect}, ` +
      `webhooks.concurrency ${hookConcurrency}, webhooks.poll_ms ${pollMs}`,
  )

  const dns = await startDnsProcess()
  const peers = await startPeers(endpoints)
  const dataDir = mkdtempSync(join(tmpdir(), 'postern-bench-hooks-'))
  const schema = dialect === 'postgres' ? `bench_${process.pid}_${randomBytes(4).toString('hex')}` : null
  let postern: Postern | null = null
  try {
    const env: Record<string, string> = {
      ...loopbackEnv(),
      POSTERN_DATA_DIR: dataDir,
      POSTERN_HOSTNAME: `mx.${SENDER}`,
      POSTERN_LOG_LEVEL: 'warn',
      POSTERN_DNS_SERVERS: dns.servers.join(','),
      POSTERN_NET_CONNECT_ALLOW: '127.0.0.0/8',
      POSTERN_OUTBOUND_MX_PORT: String(peers.sinkPort),
      POSTERN_RATE_LIMITS_SEND_KEY: '1000000/60s',
      POSTERN_OUTBOUND_ORG_HOURLY_CAP: '0',
      POSTERN_OUTBOUND_ORG_DAILY_CAP: '0',
      POSTERN_WEBHOOKS_CONCURRENCY: String(hookConcurrency),
      POSTERN_WEBHOOKS_POLL_MS: String(pollMs),
      ...(schema ? { POSTERN_DATABASE_URL: pgUrl as string, POSTERN_DATABASE_SCHEMA: schema } : {}),
    }
    const { config } = loadConfig({ env, args: [], cwd: dataDir })
    postern = await startPostern({
      config,
      connectGuard: createConnectGuard({ allow: ['127.0.0.0/8'] }),
      print: () => {},
    })
    dns.set(REMOTE, 'MX', [{ priority: 10, exchange: `mx.${REMOTE}` }])
    dns.set(`mx.${REMOTE}`, 'A', ['127.0.0.1'])
    const { api } = await benchOrgWithDomain(postern, dns, 'Bench', { name: SENDER })
    const key = (
      await must('key', api.post<{ key: string }>('/v1/api-keys', { name: 'b', scope: 'send' }), 201)
    ).key
    const url = postern.url as string

    // Warm-up: the same path, no endpoints.
    await sendLoad(url, key, Math.min(100, messages), clients, 'warmup')
    await allSentAt(postern, 'warmup', Math.min(100, messages), 60_000)

    const timed = async (label: string) => {
      await peers.reset()
      const t0 = Date.now()
      const refused = await sendLoad(url, key, messages, clients, label)
      const tAccepted = Date.now()
      const tSent = await allSentAt(postern as Postern, label, messages, Math.max(120_000, messages * 100))
      return { t0, tAccepted, tSent, refused }
    }

    const without = await timed('plain')
    const admin = new Api(url, {
      key: (
        await must('admin key', api.post<{ key: string }>('/v1/api-keys', { name: 'a', scope: 'admin' }), 201)
      ).key,
    })
    for (const hookUrl of peers.hookUrls) {
      const h = await must(
        'webhook',
        admin.post<{ webhook: { status: string } }>('/v1/webhooks', {
          url: hookUrl,
          event_types: ['email.*'],
        }),
        201,
      )
      if (h.webhook.status !== 'active') throw new Error(`endpoint ${hookUrl} did not verify`)
    }
    const withHooks = await timed('hooked')
    const expected = messages * EVENTS_PER_MESSAGE
    const deadline = Date.now() + Math.max(120_000, expected * endpoints * 20)
    let stats = await peers.stats()
    while (stats.hooks.some((h) => h.unique < expected) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100))
      stats = await peers.stats()
    }

    const rate = (n: number, from: number, to: number | null) =>
      to === null ? null : Math.round(n / ((to - from) / 1000))
    const sendPlain = rate(messages, without.t0, without.tSent)
    const sendHooked = rate(messages, withHooks.t0, withHooks.tSent)
    const lat = stats.hooks.flatMap((h) => h.latencies).sort((a, b) => a - b)
    const total = stats.hooks.reduce((n, h) => n + h.messages, 0)
    const lastArrival = Math.max(...stats.hooks.map((h) => h.last ?? 0))
    const deliveredPerS = rate(total, withHooks.t0, lastArrival || null)
    const pending = await postern.store.db
      .selectFrom('webhook_deliveries')
      .select((eb) => ['status', eb.fn.countAll<number | string>().as('n')])
      .groupBy('status')
      .execute()

    console.log('')
    console.log('run            msgs  accept s  sent s  sent/s  refused')
    for (const [name, r] of [
      ['no webhooks', without],
      [`${endpoints} endpoints`, withHooks],
    ] as const)
      console.log(
        `${name.padEnd(13)} ${String(messages).padStart(5)} ${String(round2((r.tAccepted - r.t0) / 1000)).padStart(9)} ${String(r.tSent === null ? '-' : round2((r.tSent - r.t0) / 1000)).padStart(7)} ${String(rate(messages, r.t0, r.tSent) ?? '-').padStart(7)} ${String(r.refused).padStart(8)}`,
      )
    console.log(
      `send rate with webhooks: ${sendPlain && sendHooked ? round2(sendHooked / sendPlain) : '?'}x the rate without (same run, same installation)`,
    )
    console.log(
      `webhook deliveries: ${total} received of ${expected * endpoints} expected (${stats.hooks.map((h) => `${h.unique} unique/${h.duplicates} dup`).join(', ')}), ` +
        `${deliveredPerS ?? '?'} deliveries/s (first request -> last arrival), ` +
        `event -> receiver p50 ${percentile(lat, 50)} ms, p99 ${percentile(lat, 99)} ms, max ${lat.at(-1) ?? '-'} ms`,
    )
    console.log(
      `outbox rows by status: ${JSON.stringify(Object.fromEntries(pending.map((p) => [p.status, Number(p.n)])))}; sink sessions ${stats.sinkSessions}`,
    )
    console.log(
      JSON.stringify({
        bench: 'webhooks',
        dialect,
        messages,
        clients,
        endpoints,
        webhook_concurrency: hookConcurrency,
        poll_ms: pollMs,
        sent_per_s_without: sendPlain,
        sent_per_s_with: sendHooked,
        send_rate_ratio: sendPlain && sendHooked ? round2(sendHooked / sendPlain) : null,
        deliveries_expected: expected * endpoints,
        deliveries_received: total,
        duplicates: stats.hooks.reduce((n, h) => n + h.duplicates, 0),
        deliveries_per_s: deliveredPerS,
        latency_ms: { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat.at(-1) ?? null },
      }),
    )
    if (stats.hooks.some((h) => h.unique < expected)) process.exitCode = 1
  } finally {
    await postern?.close()
    peers.close()
    await dns.close()
    rmSync(dataDir, { recursive: true, force: true })
    if (schema) {
      const c = new pg.Client({ connectionString: pgUrl as string })
      await c.connect()
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => c.end())
    }
  }
}
