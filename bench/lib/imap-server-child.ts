// The Postern under test for bench/imap, in a process of its own (so its RSS is Postern's
// alone): loopback listeners on random ports, a temp data folder, SQLite or a fresh PostgreSQL
// schema; one org, domain and mailbox made through the HTTP API. Tells the parent (IPC) the
// IMAP port, the log-in and its pid; stops on 'stop'.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { loadConfig } from '../../src/config/load.ts'
import { startPostern } from '../../src/main.ts'
import { createConnectGuard } from '../../src/net/connect-guard.ts'
import { trustDomainAsOperator } from '../../src/services/domains/domains.ts'
import { Api } from '../../test/helpers/api.ts'
import { loopbackEnv } from '../../test/helpers/server.ts'

const PASSWORD = 'bench-password-1234'

async function main(): Promise<void> {
  const dialect = process.argv[2] === 'postgres' ? 'postgres' : 'sqlite'
  const pgUrl = process.env.POSTERN_DATABASE_URL || process.env.POSTERN_TEST_DATABASE_URL || ''
  const dataDir = mkdtempSync(join(tmpdir(), 'postern-bench-imap-'))
  const schema = dialect === 'postgres' ? `bench_imap_${process.pid}` : null
  const env: Record<string, string> = {
    ...loopbackEnv(),
    POSTERN_DATA_DIR: dataDir,
    POSTERN_LOG_LEVEL: 'warn',
    POSTERN_IMAP_MAX_CONNECTIONS: '20000',
    POSTERN_IMAP_MAX_CONNECTIONS_PER_IP: '20000',
    POSTERN_AUTH_LOCKOUT_IP_AFTER: '1000000',
    ...(schema ? { POSTERN_DATABASE_URL: pgUrl, POSTERN_DATABASE_SCHEMA: schema } : {}),
  }
  const { config } = loadConfig({ env, args: [], cwd: dataDir })
  const postern = await startPostern({
    config,
    connectGuard: createConnectGuard({ allow: ['127.0.0.0/8'] }),
    print: () => {},
  })
  const api = new Api(postern.url as string)
  const setup = await api.post('/v1/setup', {
    setup_token: postern.setupToken,
    org_name: 'Bench',
    email: 'owner@example.com',
    password: 'correct-horse-battery-9',
    name: 'Bench Owner',
  })
  if (setup.status !== 201) throw new Error(`setup: ${setup.status} ${setup.text}`)
  const d = await api.post('/v1/domains', {
    name: 'bench.test',
    max_quota_mb: 100_000,
    total_quota_mb: 100_000,
  })
  if (d.status !== 201) throw new Error(`domain: ${d.status} ${d.text}`)
  // No DNS here: verified on the operator's word, as `postern domain verify --trust-operator` does.
  await trustDomainAsOperator(
    postern.domains,
    {
      kind: 'key',
      org_id: (await api.get('/v1/org')).body.id,
      user_id: null,
      role: null,
      session_id: null,
      key_id: 'bench',
      key_scope: 'admin',
      mailbox_id: null,
    },
    'bench.test',
  )
  const m = await api.post('/v1/mailboxes', {
    domain: 'bench.test',
    local_part: 'user1',
    password: PASSWORD,
    quota_mb: 100_000,
  })
  if (m.status !== 201) throw new Error(`mailbox: ${m.status} ${m.text}`)
  const imap = postern.listeners.find((l) => l.name === 'imap')
  process.send?.({
    ready: true,
    port: imap?.port,
    user: 'user1@bench.test',
    pass: PASSWORD,
    pid: process.pid,
  })
  process.on('message', async (msg: { stop?: boolean }) => {
    if (!msg.stop) return
    await postern.close()
    rmSync(dataDir, { recursive: true, force: true })
    if (schema) {
      const c = new pg.Client({ connectionString: pgUrl })
      await c.connect()
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await c.end()
    }
    process.exit(0)
  })
}

main().catch((err) => {
  process.send?.({ error: String(err?.stack ?? err) })
  process.exit(1)
})
