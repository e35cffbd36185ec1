// Postern as the MX under test, in the benchmark's own process (so the benchmark can look
// inside it), with the load generators in other processes. startMx() builds the config through
// the real loader (loopback listeners on random ports, a temp data folder, SQLite or a fresh
// PostgreSQL schema, dns.servers pinned to the loopback DNS server), starts Postern, creates
// the hosted domain and mailbox through the HTTP API as an operator would (setup, domain,
// published records, verify, mailbox with a quota big enough for the run), and wraps three
// seams of the delivery context to time what happens inside a delivery: the blob put (bytes
// fsynced), the group commit (queue wait + transaction + fsync/commit) and each DNS lookup.

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import pg from 'pg'
import { loadConfig } from '../../src/config/load.ts'
import type { Resolver } from '../../src/dns/resolver.ts'
import { type Postern, startPostern } from '../../src/main.ts'
import { createConnectGuard } from '../../src/net/connect-guard.ts'
import type { GroupCommitter } from '../../src/services/delivery/group-commit.ts'
import { publish } from '../../test/domains/helpers.ts'
import { Api, type ApiResponse } from '../../test/helpers/api.ts'
import type { DnsServer } from '../../test/helpers/dns-server.ts'
import { loopbackEnv } from '../../test/helpers/server.ts'
import type { DnsProcess } from './dns-process.ts'
import { round2, summarize } from './proc-stats.ts'

export type Dialect = 'sqlite' | 'postgres'

export const HOSTED_DOMAIN = 'bench.test'
export const SENDER_DOMAIN = 'client.test'

/** The database URL for PostgreSQL runs, when one is configured. */
export const postgresUrl = (): string | null =>
  process.env.POSTERN_DATABASE_URL || process.env.POSTERN_TEST_DATABASE_URL || null

/** Publishes the sending domain: SPF for 127.0.0.1, DMARC p=reject, DKIM s1, iprev (PTR + A). */
export function publishSender(dns: DnsProcess, dkimPublicKeyB64: string): void {
  dns.set(SENDER_DOMAIN, 'TXT', [['v=spf1 ip4:127.0.0.1 -all']])
  dns.set(`_dmarc.${SENDER_DOMAIN}`, 'TXT', [[`v=DMARC1; p=reject; rua=mailto:dmarc@${SENDER_DOMAIN}`]])
  dns.set(`s1._domainkey.${SENDER_DOMAIN}`, 'TXT', [[`v=DKIM1; k=rsa; p=${dkimPublicKeyB64}`]])
  dns.set(SENDER_DOMAIN, 'A', ['127.0.0.1'])
  dns.set(SENDER_DOMAIN, 'MX', [{ priority: 10, exchange: `mx.${SENDER_DOMAIN}` }])
  dns.set('127.0.0.1', 'PTR', [SENDER_DOMAIN])
}

/** Timings taken inside Postern since the last reset(). */
export interface Inside {
  reset(): void
  snapshot(): InsideFigures
}

export interface InsideFigures {
  blob_put_ms: ReturnType<typeof summarize>
  commit_ms: ReturnType<typeof summarize>
  dns_lookup_ms: ReturnType<typeof summarize>
  dns_lookups_by_type: Record<string, number>
  commit_batches: number
  commit_jobs: number
  commit_mean_batch: number
  commit_max_batch: number
  /** Database statements run (every kind: delivery, the queue, jobs) during the run. */
  statements: number
  event_loop_delay_ms: { p50: number; p99: number; max: number }
  cpu_user_s: number
  cpu_sys_s: number
}

export interface MxUnderTest {
  postern: Postern
  port: number
  dialect: Dialect
  mailboxId: string
  inside: Inside
  storedCount(): Promise<number>
  /** Messages of the mailbox by their stored authentication summary. */
  authSummary(): Promise<Record<string, number>>
  close(): Promise<void>
}

export async function startMx(opts: {
  dialect: Dialect
  verifyAuth: boolean
  dns: DnsProcess
  sessions: number
}): Promise<MxUnderTest> {
  const dataDir = mkdtempSync(join(tmpdir(), 'postern-bench-smtp-'))
  const pgUrl = postgresUrl()
  if (opts.dialect === 'postgres' && !pgUrl) throw new Error('PostgreSQL runs need POSTERN_DATABASE_URL')
  const schema = opts.dialect === 'postgres' ? `bench_${process.pid}_${randomBytes(4).toString('hex')}` : null
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
    POSTERN_HOSTNAME: 'mx.bench.test',
    POSTERN_LOG_LEVEL: 'warn',
    POSTERN_EVENTS_POLL_MS: '100',
    POSTERN_DNS_SERVERS: opts.dns.servers.join(','),
    POSTERN_SMTP_MAX_CONNECTIONS: String(Math.max(1000, opts.sessions * 4)),
    POSTERN_SMTP_MAX_CONNECTIONS_PER_IP: String(Math.max(200, opts.sessions * 4)),
    POSTERN_SMTP_MAX_TRANSACTIONS: '100000',
    POSTERN_SMTP_VERIFY_AUTH: String(opts.verifyAuth),
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
    const port = postern.listeners.find((l) => l.name === 'smtp-mx')?.port
    if (!port) throw new Error('Postern has no smtp-mx listener')
    const mailboxId = await hostDomain(postern, opts.dns)
    const p = postern
    const count = async () => {
      const r = await p.store.db
        .selectFrom('messages')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('mailbox_id', '=', mailboxId)
        .executeTakeFirstOrThrow()
      return Number(r.n)
    }
    return {
      postern,
      port,
      dialect: opts.dialect,
      mailboxId,
      inside: instrument(postern),
      storedCount: count,
      async authSummary() {
        const rows = await p.store.db
          .selectFrom('messages')
          .select((eb) => ['auth_results', eb.fn.countAll<number | string>().as('n')])
          .where('mailbox_id', '=', mailboxId)
          .groupBy('auth_results')
          .execute()
        return Object.fromEntries(rows.map((r) => [r.auth_results ?? 'null', Number(r.n)]))
      },
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

/** Throws unless the response has status `want`; returns its body. */
export async function must<T>(what: string, p: Promise<ApiResponse<T>>, want: number): Promise<T> {
  const r = await p
  if (r.status !== want) throw new Error(`${what}: ${r.status} ${r.text}`)
  return r.body
}

/**
 * The first owner and org (POST /v1/setup), then a domain created with `domain` (its name and
 * limits), its records published in the loopback DNS and verified. The signed-in owner's client
 * and the domain id.
 */
export async function benchOrgWithDomain(
  postern: Postern,
  dns: DnsProcess,
  orgName: string,
  domain: { name: string } & Record<string, unknown>,
): Promise<{ api: Api; domainId: string }> {
  const api = new Api(postern.url as string)
  await must(
    'setup',
    api.post('/v1/setup', {
      setup_token: postern.setupToken,
      org_name: orgName,
      email: 'owner@example.com',
      password: 'correct-horse-battery-9',
      name: 'Bench Owner',
    }),
    201,
  )
  const created = await must('create domain', api.post<{ id: string }>('/v1/domains', domain), 201)
  const records = await must(
    'dns records',
    api.get<{ records: Parameters<typeof publish>[1] }>(`/v1/domains/${created.id}/dns-records`),
    200,
  )
  publish(dns as unknown as DnsServer, records.records)
  await dns.stats() // every record is in the zone
  await must('verify', api.post(`/v1/domains/${created.id}/verify`), 200)
  return { api, domainId: created.id }
}

/** Setup, domain bench.test (records published, verified), mailbox user1 with a big quota. */
async function hostDomain(postern: Postern, dns: DnsProcess): Promise<string> {
  const quotaMb = 100_000
  const { api } = await benchOrgWithDomain(postern, dns, 'Bench', {
    name: HOSTED_DOMAIN,
    default_quota_mb: 1024,
    max_quota_mb: quotaMb,
    total_quota_mb: quotaMb,
  })
  const me = await must('me', api.get<{ id: string }>('/v1/me'), 200)
  const mailbox = await must(
    'create mailbox',
    api.post<{ mailbox: { id: string } }>('/v1/mailboxes', {
      domain: HOSTED_DOMAIN,
      local_part: 'user1',
      quota_mb: quotaMb,
      owner_user_id: me.id,
    }),
    201,
  )
  return mailbox.mailbox.id
}

/** Wraps the blob put, the group commit and the resolver of the delivery context with timers. */
function instrument(postern: Postern): Inside {
  const delivery = postern.delivery
  const putMs: number[] = []
  const commitMs: number[] = []
  const dnsMs: number[] = []
  const dnsByType: Record<string, number> = {}

  const blobs = delivery.blobs
  const put = blobs.put.bind(blobs)
  blobs.put = async (ns, source) => {
    const t = performance.now()
    try {
      return await put(ns, source)
    } finally {
      putMs.push(performance.now() - t)
    }
  }

  const committer = delivery.committer
  const timed: GroupCommitter = {
    get stats() {
      return committer.stats
    },
    drain: () => committer.drain(),
    async run(job) {
      const t = performance.now()
      try {
        return await committer.run(job)
      } finally {
        commitMs.push(performance.now() - t)
      }
    },
  }
  delivery.committer = timed

  const resolver = delivery.resolver
  const wrapped = {} as Record<string, unknown>
  for (const [name, type] of [
    ['resolveMx', 'MX'],
    ['resolveTxt', 'TXT'],
    ['resolve4', 'A'],
    ['resolve6', 'AAAA'],
    ['resolveCname', 'CNAME'],
    ['resolveSrv', 'SRV'],
    ['resolvePtr', 'PTR'],
  ] as const) {
    const fn = (resolver[name] as (n: string) => Promise<unknown>).bind(resolver)
    wrapped[name] = async (n: string) => {
      const t = performance.now()
      dnsByType[type] = (dnsByType[type] ?? 0) + 1
      try {
        return await fn(n)
      } finally {
        dnsMs.push(performance.now() - t)
      }
    }
  }
  delivery.resolver = wrapped as unknown as Resolver

  // The histogram holds whole timer intervals: subtract the resolution to get the delay.
  const resolution = 5
  const loop = monitorEventLoopDelay({ resolution })
  let cpu = process.cpuUsage()
  let base = { batches: 0, jobs: 0 }
  let statements0 = postern.store.statements.count
  const reset = () => {
    statements0 = postern.store.statements.count
    putMs.length = 0
    commitMs.length = 0
    dnsMs.length = 0
    for (const k of Object.keys(dnsByType)) delete dnsByType[k]
    const s = committer.stats
    base = { batches: s.batches, jobs: s.jobs }
    s.maxBatch = 0 // a plain counter object: restart its maximum for this run
    loop.disable()
    loop.reset()
    loop.enable()
    cpu = process.cpuUsage()
  }
  reset()
  return {
    reset,
    snapshot() {
      loop.disable()
      const used = process.cpuUsage(cpu)
      const s = committer.stats
      const batches = s.batches - base.batches
      const jobs = s.jobs - base.jobs
      const ms = (ns: number) => round2(Math.max(0, ns / 1e6 - resolution))
      return {
        blob_put_ms: summarize(putMs),
        commit_ms: summarize(commitMs),
        dns_lookup_ms: summarize(dnsMs),
        dns_lookups_by_type: { ...dnsByType },
        commit_batches: batches,
        commit_jobs: jobs,
        commit_mean_batch: batches ? round2(jobs / batches) : 0,
        commit_max_batch: s.maxBatch,
        statements: postern.store.statements.count - statements0,
        event_loop_delay_ms: {
          p50: ms(loop.percentile(50)),
          p99: ms(loop.percentile(99)),
          max: ms(loop.max),
        },
        cpu_user_s: round2(used.user / 1e6),
        cpu_sys_s: round2(used.system / 1e6),
      }
    },
  }
}
