// The webhook outbox shared by real `postern serve` processes (workers role) on one database:
// two processes deliver each event exactly once per endpoint; a process killed with SIGKILL
// while deliveries are being retried (some attempts hanging at the receiver) loses none: the
// next process takes the expired leases over and every event is delivered.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadConfig } from '../../src/config/load.ts'
import { createLogger } from '../../src/log/logger.ts'
import { type Postern, startPostern } from '../../src/main.ts'
import { createConnectGuard } from '../../src/net/connect-guard.ts'
import { writeEvent } from '../../src/services/events/write.ts'
import { setupOwner } from '../accounts/helpers.ts'
import { type Child, runChild } from '../helpers/child.ts'
import { DIALECTS, testDatabase } from '../helpers/dialects.ts'
import { startDnsServer } from '../helpers/dns-server.ts'
import { loopbackEnv, type TestServer } from '../helpers/server.ts'
import { type Received, startReceiver, type TestReceiver, verifyWith } from './receiver.ts'

const BIN = new URL('../../bin/postern.mjs', import.meta.url)

async function waitUntil(what: string, f: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const until = Date.now() + ms
  while (!(await f())) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** An API-only Postern (no workers) on the test database, an owner, and an active webhook. */
async function installation(dialect: (typeof DIALECTS)[number], rx: TestReceiver) {
  const tdb = testDatabase(dialect)
  const dns = await startDnsServer({})
  const env: Record<string, string> = {
    ...loopbackEnv(),
    ...tdb.env,
    POSTERN_DNS_SERVERS: dns.servers.join(','),
    POSTERN_LOG_LEVEL: 'warn',
    POSTERN_WEBHOOKS_POLL_MS: '20',
    POSTERN_WEBHOOKS_RETRY_BASE_MS: '50',
    POSTERN_WEBHOOKS_LEASE_SECONDS: '2',
    POSTERN_WEBHOOKS_CONCURRENCY: '4',
  }
  const { config } = loadConfig({ env, args: [] })
  const api: Postern = await startPostern({
    config: { ...config, roles: ['http'] },
    log: createLogger({ level: 'silent' }),
    connectGuard: createConnectGuard({ allow: ['127.0.0.0/8'] }),
    print: () => {},
  })
  const owner = await setupOwner({ postern: api, url: api.url as string } as TestServer)
  const orgId = (await owner.get('/v1/me')).body.org_id as string
  const created = await owner.post('/v1/webhooks', { url: rx.url, event_types: ['org.updated'] })
  assert.equal(created.body.webhook?.status, 'active', created.text)
  const children: Child[] = []
  return {
    api,
    orgId,
    secret: created.body.secret as string,
    webhookId: created.body.webhook.id as string,
    async worker(logLevel = 'warn'): Promise<Child> {
      const child = runChild(BIN, ['serve'], {
        ...env,
        POSTERN_ROLES: 'workers',
        POSTERN_LOG_LEVEL: logLevel,
      })
      children.push(child)
      await child.waitFor(/is running/)
      return child
    },
    /** `n` events of the org, written as the services write them. */
    async events(n: number): Promise<string[]> {
      const now = Date.now()
      for (let i = 0; i < n; i++)
        await writeEvent(api.store.db, now, {
          org_id: orgId,
          type: 'org.updated',
          actor: 'test',
          ip: null,
          subject_id: orgId,
          payload: { n: i },
        })
      const rows = await api.store.db
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('event_type', '=', 'org.updated')
        .execute()
      return rows.map((r) => r.id)
    },
    async deliveries() {
      return api.store.db
        .selectFrom('webhook_deliveries')
        .select(['id', 'status', 'attempts'])
        .where('event_type', '=', 'org.updated')
        .execute()
    },
    async close() {
      for (const c of children) {
        if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM')
        await c.exited
      }
      await api.close()
      await dns.close()
      await tdb.drop()
    },
  }
}

for (const dialect of DIALECTS) {
  describe(`webhooks across processes (${dialect})`, () => {
    it('two worker processes deliver each event exactly once per endpoint', async () => {
      const rx = await startReceiver(async (r) => {
        if (r.json.type === 'webhook.verification') return { status: 200, body: r.json.data.challenge }
        await new Promise((res) => setTimeout(res, 5))
        return { status: 200, body: 'ok' }
      })
      const inst = await installation(dialect, rx)
      try {
        const workers = await Promise.all([inst.worker('debug'), inst.worker('debug')])
        const ids = await inst.events(60)
        assert.equal(ids.length, 60)
        await waitUntil('every delivery to succeed', async () =>
          (await inst.deliveries()).every((d) => d.status === 'succeeded'),
        )
        const got = rx.messages('org.updated')
        assert.equal(got.length, 60, 'one request per event, none twice')
        assert.deepEqual(new Set(got.map((m) => m.headers['webhook-id'])), new Set(ids))
        assert.deepEqual(
          got.map((m) => m.json.data.n).sort((x, y) => x - y),
          Array.from({ length: 60 }, (_, i) => i),
        )
        for (const m of got) verifyWith(inst.secret, m)
        assert.ok((await inst.deliveries()).every((d) => d.attempts === 1))
        // Both processes took part (each logs its attempts at debug level).
        for (const w of workers)
          assert.ok(/"msg":"webhook attempt"/.test(w.stdout() + w.stderr()), 'a worker attempted nothing')
      } finally {
        await inst.close()
        await rx.close()
      }
    })

    it('loses no event when the delivering process is killed mid-retry', async () => {
      let mode: 'failing' | 'healthy' = 'failing'
      const seen = new Map<string, number>()
      let hanging = 0
      const rx = await startReceiver(async (r: Received) => {
        if (r.json.type === 'webhook.verification') return { status: 200, body: r.json.data.challenge }
        const id = r.headers['webhook-id'] ?? ''
        const n = (seen.get(id) ?? 0) + 1
        seen.set(id, n)
        if (mode === 'healthy') return { status: 200, body: 'ok' }
        if (n === 1) return { status: 500, body: 'try again' }
        // The retry hangs: the process is killed with these attempts in flight.
        hanging++
        return new Promise<never>(() => {})
      })
      const inst = await installation(dialect, rx)
      try {
        const first = await inst.worker()
        const ids = await inst.events(30)
        await waitUntil('retries in flight', () => hanging >= 3)
        first.proc.kill('SIGKILL')
        await first.exited
        const pendingAtKill = (await inst.deliveries()).filter((d) => d.status !== 'succeeded').length
        assert.equal(pendingAtKill, 30, 'nothing had succeeded yet')

        mode = 'healthy'
        await inst.worker()
        await waitUntil('every delivery to succeed after the restart', async () =>
          (await inst.deliveries()).every((d) => d.status === 'succeeded'),
        )
        const ok = rx.messages('org.updated')
        for (const id of ids)
          assert.ok(
            ok.some((m) => m.headers['webhook-id'] === id),
            `${id} delivered`,
          )
        // The log: each delivery has exactly one successful attempt, after the failed first one.
        const attempts = await inst.api.store.db
          .selectFrom('webhook_attempts')
          .select(['delivery_id', 'status_code'])
          .execute()
        for (const id of ids) {
          const mine = attempts.filter((a) => a.delivery_id === id)
          assert.equal(mine.filter((a) => a.status_code === 200).length, 1, `${id}: ${JSON.stringify(mine)}`)
        }
        assert.ok(
          attempts.some((a) => a.status_code === 500),
          'the failed first attempts are logged',
        )
      } finally {
        await inst.close()
        await rx.close()
      }
    })
  })
}
