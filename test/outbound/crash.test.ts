// kill -9 of a real `postern serve` process while it delivers: a message whose delivery was
// cut off before the remote's 250 is retried after a restart (its lease expires) and
// delivered; a message whose 250 was recorded is never sent again.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadConfig } from '../../src/config/load.ts'
import { createLogger } from '../../src/log/logger.ts'
import { startPostern } from '../../src/main.ts'
import { setupOwner } from '../accounts/helpers.ts'
import { verifiedDomain } from '../domains/helpers.ts'
import { Api } from '../helpers/api.ts'
import { runChild } from '../helpers/child.ts'
import { DIALECTS, testDatabase } from '../helpers/dialects.ts'
import { startDnsServer } from '../helpers/dns-server.ts'
import { loopbackEnv, type TestServer } from '../helpers/server.ts'
import { fakeHandler, startSmtp } from '../smtp/helpers.ts'
import { waitForEmail } from './helpers.ts'

const BIN = new URL('../../bin/postern.mjs', import.meta.url)

for (const dialect of DIALECTS) {
  describe(`outbound kill -9 (${dialect})`, () => {
    it('retries a delivery cut off by a crash, and never resends one whose 250 was recorded', async () => {
      const tdb = testDatabase(dialect)
      const dns = await startDnsServer({})
      // The remote holds the first "Stall" message forever (the sender dies waiting for the 250).
      let stalled = false
      const remote = await startSmtp({
        handler: fakeHandler({
          message: async (m) => {
            if (m.includes('Subject: Stall') && !stalled) {
              stalled = true
              return new Promise(() => {})
            }
            return { code: 250, enhanced: '2.0.0', message: 'Ok' }
          },
        }),
      })
      dns.set('remote.example', 'MX', [{ priority: 10, exchange: 'mx.remote.example' }])
      dns.set('mx.remote.example', 'A', ['127.0.0.1'])
      const env = {
        ...loopbackEnv(),
        ...tdb.env,
        POSTERN_HOSTNAME: 'mx.a.example',
        POSTERN_DNS_SERVERS: dns.servers.join(','),
        POSTERN_OUTBOUND_MX_PORT: String(remote.port),
        POSTERN_OUTBOUND_LEASE_SECONDS: '2',
        POSTERN_OUTBOUND_POLL_MS: '50',
        POSTERN_OUTBOUND_COMMAND_TIMEOUT_MS: '60000',
        POSTERN_LOG_LEVEL: 'warn',
      }
      let child: ReturnType<typeof runChild> | null = null
      try {
        const { config } = loadConfig({ env, args: [] })
        const setup = await startPostern({
          config: { ...config, roles: ['http'] },
          log: createLogger({ level: 'silent' }),
          print: () => {},
        })
        const owner = await setupOwner(
          { postern: setup, dns, url: setup.url as string } as TestServer,
          'owner@a.example',
        )
        await verifiedDomain(owner, dns, 'a.example')
        const key = (await owner.post('/v1/api-keys', { name: 'k', scope: 'send' })).body.key as string
        const adminKey = (await owner.post('/v1/api-keys', { name: 'a', scope: 'admin' })).body.key as string
        await setup.close()

        const start = async () => {
          const c = runChild(BIN, ['serve'], env)
          const port = Number((await c.waitFor(/http +http:\/\/127\.0\.0\.1:(\d+)/))[1])
          const api = new Api(`http://127.0.0.1:${port}`)
          return { c, send: api.withKey(key), admin: api.withKey(adminKey) }
        }
        const count = (subject: string) =>
          remote.handler.messages().filter((m) => m.includes(`Subject: ${subject}`)).length

        // 1. Delivered and recorded, then killed: never sent again.
        let s = await start()
        child = s.c
        const done = await s.send.post('/v1/emails', {
          from: 'a@a.example',
          to: 'x@remote.example',
          subject: 'Once',
          text: 'hi',
        })
        assert.equal(done.status, 202, done.text)
        await waitForEmail(s.admin, done.body.id, (e) => e.status === 'sent')
        assert.equal(count('Once'), 1)
        // 2. A delivery in flight (the remote is holding its 250) when the process dies.
        const cut = await s.send.post('/v1/emails', {
          from: 'a@a.example',
          to: 'y@remote.example',
          subject: 'Stall',
          text: 'hi',
        })
        assert.equal(cut.status, 202, cut.text)
        while (!stalled) await new Promise((r) => setTimeout(r, 20))
        child.proc.kill('SIGKILL')
        await child.exited

        s = await start()
        child = s.c
        // The restarted worker takes the stalled message over once its lease has expired.
        const e = await waitForEmail(s.admin, cut.body.id, (x) => x.status === 'sent', 20_000)
        assert.equal(e.recipients[0].state, 'delivered')
        assert.equal(count('Stall'), 2, 'the cut-off delivery is retried after the restart')
        await new Promise((r) => setTimeout(r, 3000)) // longer than a lease: a resend of "Once" would show
        assert.equal(count('Once'), 1, 'a recorded 250 is never sent again')
        child.proc.kill('SIGTERM')
        assert.equal(await child.exited, 0)
        child = null
      } finally {
        if (child) {
          child.proc.kill('SIGKILL')
          await child.exited
        }
        await remote.close()
        await dns.close()
        await tdb.drop()
      }
    })
  })
}
