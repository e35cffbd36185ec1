// startTestServer: a whole Postern over a private database, every listener on 127.0.0.1 port 0,
// the resolver pinned to a DNS server it starts on loopback, and close() that tears it all
// down (server, DNS server, database). The config goes through the real loader.

import type { FastifyPluginAsync } from 'fastify'
import { loadConfig } from '../../src/config/load.ts'
import type { Config } from '../../src/config/schema.ts'
import type { Zone } from '../../src/dns/static-zone.ts'
import { createLogger } from '../../src/log/logger.ts'
import { type Postern, startPostern } from '../../src/main.ts'
import { createConnectGuard } from '../../src/net/connect-guard.ts'
import type { JobDef } from '../../src/services/jobs/runner.ts'
import type { FileOps } from '../../src/store/blobs/file-ops.ts'
import type { Clock } from '../../src/time/clock.ts'
import { type Dialect, testDatabase } from './dialects.ts'
import { type DnsServer, startDnsServer } from './dns-server.ts'

export interface TestServerOptions {
  /** Extra POSTERN_* settings. */
  env?: Record<string, string>
  zone?: Zone
  httpPlugins?: FastifyPluginAsync[]
  jobs?: JobDef[]
  clock?: Clock
  /** Collects every log line (JSON text) at debug level, to check what reaches the logs. */
  logLines?: string[]
  fileOps?: FileOps
  onDeliveryCommit?: (jobs: number) => void
  /** A DNS server shared with other servers (two instances exchanging mail); not closed by this one. */
  dns?: DnsServer
}

export interface TestServer {
  postern: Postern
  config: Config
  dns: DnsServer
  /** http://127.0.0.1:<port> */
  url: string
  dataDir: string
  close(): Promise<void>
}

/** POSTERN_* settings that keep every listener on loopback and random ports. */
export function loopbackEnv(): Record<string, string> {
  return {
    POSTERN_HTTP_HOST: '127.0.0.1',
    POSTERN_HTTP_PORT: '0',
    POSTERN_HTTPS_PORT: '0',
    POSTERN_SMTP_HOST: '127.0.0.1',
    POSTERN_SMTP_MX_PORT: '0',
    POSTERN_SMTP_SUBMISSION_PORT: '0',
    POSTERN_SMTP_SUBMISSIONS_PORT: '0',
    POSTERN_IMAP_HOST: '127.0.0.1',
    POSTERN_IMAP_PORT: '0',
    POSTERN_IMAP_TLS_PORT: '0',
    POSTERN_HOSTNAME: 'mx.postern.test',
    POSTERN_LOG_LEVEL: process.env.POSTERN_TEST_LOG_LEVEL ?? 'silent',
    POSTERN_NET_CONNECT_ALLOW: '127.0.0.0/8,::1/128',
    POSTERN_EVENTS_POLL_MS: '20',
    // Cheap argon2 in tests; production cost comes from config.
    POSTERN_AUTH_ARGON2_MEMORY_KIB: '64',
    POSTERN_AUTH_ARGON2_TIME_COST: '1',
  }
}

export async function startTestServer(dialect: Dialect, opts: TestServerOptions = {}): Promise<TestServer> {
  const tdb = testDatabase(dialect)
  const shared = opts.dns
  const dns = shared ?? (await startDnsServer(opts.zone ?? {}))
  const closeDns = () => (shared ? Promise.resolve() : dns.close())
  try {
    const env = { ...loopbackEnv(), POSTERN_DNS_SERVERS: dns.servers.join(','), ...tdb.env, ...opts.env }
    const { config } = loadConfig({ env, args: [], cwd: tdb.dataDir })
    const postern = await startPostern({
      config,
      log: opts.logLines
        ? createLogger({
            level: 'debug',
            destination: { write: (line: string) => void opts.logLines?.push(line) },
          })
        : createLogger({ level: config.log.level }),
      clock: opts.clock,
      connectGuard: createConnectGuard({ allow: ['127.0.0.0/8', '::1/128'] }),
      httpPlugins: opts.httpPlugins,
      jobs: opts.jobs,
      fileOps: opts.fileOps,
      onDeliveryCommit: opts.onDeliveryCommit,
      print: () => {},
    })
    return {
      postern,
      config,
      dns,
      url: postern.url as string,
      dataDir: tdb.dataDir,
      async close() {
        await postern.close()
        await closeDns()
        await tdb.drop()
      },
    }
  } catch (err) {
    await closeDns()
    await tdb.drop()
    throw err
  }
}
