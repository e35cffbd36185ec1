// GET /v1/ws over real sockets with the `ws` client: refusals (no or bad credentials, a plain
// GET, a foreign Origin with the cookie, bad cursors and type filters), a delivery made by a
// second `postern serve` process on the same database reaching the socket, a reconnect with
// ?cursor (and with a resume frame) replaying exactly the missed events, and a mailbox key
// seeing only its mailbox, a revoked key closed at the next heartbeat (4401), and a consumer
// that does not read closed with 4429 instead of buffering without bound.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import { createLogger } from '../../src/log/logger.ts'
import type { Principal } from '../../src/services/accounts/principal.ts'
import { writeEvent } from '../../src/services/events/write.ts'
import { createFeedHub } from '../../src/services/feed/hub.ts'
import { idFloor } from '../../src/services/feed/rows.ts'
import { feedScope } from '../../src/services/feed/scope.ts'
import { createFeedSession } from '../../src/services/feed/session.ts'
import { hostedOrg } from '../delivery/helpers.ts'
import type { Api } from '../helpers/api.ts'
import { runChild } from '../helpers/child.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { loopbackEnv, startTestServer, type TestServer } from '../helpers/server.ts'
import { mxPort } from '../outbound/helpers.ts'
import { deliver, type FeedClient, type Frame, isReceived, openFeed, refusedFeed, wsUrl } from './helpers.ts'

const BIN = new URL('../../bin/postern.mjs', import.meta.url)

for (const dialect of DIALECTS) {
  describe(`live feed GET /v1/ws (${dialect})`, () => {
    let s: TestServer
    let api: Api
    let domain: string
    let ann: string
    let readKey: string
    let annKey: string
    const open: FeedClient[] = []
    const feed = async (query: string, key: string, protocols?: string[]) => {
      const c = await openFeed(
        wsUrl(s.url, query),
        protocols ? { protocols } : { headers: { authorization: `Bearer ${key}` } },
      )
      open.push(c)
      return c
    }

    before(async () => {
      s = await startTestServer(dialect, {
        env: {
          POSTERN_SMTP_VERIFY_AUTH: 'false',
          POSTERN_FEED_POLL_MS: '100',
          POSTERN_FEED_HEARTBEAT_SECONDS: '1',
        },
      })
      ;({ api, domain, ann } = await hostedOrg(s))
      const r = await api.post('/v1/api-keys', { name: 'feed', scope: 'read' })
      assert.equal(r.status, 201, r.text)
      readKey = r.body.key
      const m = await api.post('/v1/api-keys', { name: 'ann feed', scope: 'mailbox', mailbox_id: ann })
      assert.equal(m.status, 201, m.text)
      annKey = m.body.key
    })
    after(async () => {
      for (const c of open) await c.close()
      await s.close()
    })

    it('refuses the unauthenticated, bad keys, plain GETs, foreign origins and bad cursors, clearly', async () => {
      const url = wsUrl(s.url)
      const none = await refusedFeed(url)
      assert.equal(none.status, 401)
      assert.equal(none.body.code, 'AUTH_REQUIRED')
      const bad = await refusedFeed(url, { headers: { 'x-api-key': 'pst_made_up_key_xxxxxxxx' } })
      assert.equal(bad.status, 401)
      assert.equal(bad.body.code, 'INVALID_API_KEY')
      const badProtocol = await refusedFeed(url, { protocols: ['postern.v1', 'postern.key.pst_made_up_key'] })
      assert.equal(badProtocol.status, 401)

      // The session cookie works only from this server's own origin.
      const cookie = api.cookie as string
      const foreign = await refusedFeed(url, { headers: { cookie, origin: 'http://evil.example' } })
      assert.equal(foreign.status, 403)
      assert.equal(foreign.body.code, 'ORIGIN_NOT_ALLOWED')
      const noOrigin = await refusedFeed(url, { headers: { cookie } })
      assert.equal(noOrigin.status, 403)
      const own = await openFeed(url, { headers: { cookie, origin: s.url } })
      open.push(own)
      await own.next((f) => f.type === 'ready')

      const auth = { authorization: `Bearer ${readKey}` }
      const garbage = await refusedFeed(wsUrl(s.url, '?cursor=garbage'), { headers: auth })
      assert.equal(garbage.status, 400)
      assert.equal(garbage.body.code, 'INVALID_CURSOR')
      assert.match(garbage.body.detail, /not an event id/)
      const future = await refusedFeed(wsUrl(s.url, `?cursor=evt_zzzzzzzzzz${'0'.repeat(16)}`), {
        headers: auth,
      })
      assert.equal(future.status, 400)
      assert.match(future.body.detail, /future/)
      const type = await refusedFeed(wsUrl(s.url, '?types=email.delivered,email.nonsense'), { headers: auth })
      assert.equal(type.status, 400)
      assert.equal(type.body.code, 'INVALID_EVENT_TYPE')
      assert.match(type.body.detail, /email\.nonsense/)

      // A bad resume frame: an error frame, then close code 4400.
      const c = await feed('', readKey)
      await c.next((f) => f.type === 'ready')
      c.ws.send(JSON.stringify({ resume: 'not-a-cursor' }))
      const err = await c.next((f) => f.type === 'error')
      assert.equal(err.code, 'INVALID_CURSOR')
      assert.equal((await c.closed).code, 4400)
      const junk = await feed('', readKey)
      junk.ws.send('not json')
      assert.equal((await junk.closed).code, 4400)

      // A plain GET is told to upgrade.
      const plain = await api.withKey(readKey).get('/v1/ws')
      assert.equal(plain.status, 426)
      assert.equal(plain.body.code, 'UPGRADE_REQUIRED')
    })

    it('streams a delivery made by another process on the same database', async () => {
      const c = await feed('?types=email.received', readKey)
      await c.next((f) => f.type === 'ready')
      const db = s.config.database
      const child = runChild(BIN, ['serve'], {
        ...loopbackEnv(),
        POSTERN_DNS_SERVERS: s.dns.servers.join(','),
        POSTERN_DATA_DIR: s.dataDir,
        ...(db.url ? { POSTERN_DATABASE_URL: db.url, POSTERN_DATABASE_SCHEMA: db.schema } : {}),
        POSTERN_ROLES: 'smtp',
        POSTERN_SMTP_VERIFY_AUTH: 'false',
        POSTERN_LOG_LEVEL: 'warn',
      })
      try {
        const port = Number((await child.waitFor(/smtp-mx +smtp:\/\/127\.0\.0\.1:(\d+)/))[1])
        assert.notEqual(port, mxPort(s))
        await deliver(port, `ann@${domain}`, 'From the other process')
        const f = await c.next(isReceived('From the other process'))
        assert.equal(f.event?.mailbox_id, ann)
        assert.equal(f.cursor, f.event?.id)
      } finally {
        child.proc.kill('SIGTERM')
        await child.exited
      }
    })

    it('replays exactly the missed events after a reconnect, then goes live', async () => {
      const c = await feed('?types=email.received', readKey)
      await c.next((f) => f.type === 'ready')
      await deliver(mxPort(s), `ann@${domain}`, 'seen 1')
      await deliver(mxPort(s), `bob@${domain}`, 'seen 2')
      await c.next(isReceived('seen 1'))
      const last = await c.next(isReceived('seen 2'))
      await c.close()

      await deliver(mxPort(s), `ann@${domain}`, 'missed 1')
      await deliver(mxPort(s), `bob@${domain}`, 'missed 2')
      const again = await feed(`?types=email.received&cursor=${last.cursor}`, readKey)
      const ready = await again.next((f) => f.type === 'ready')
      assert.equal(ready.replayed, 2)
      const events = (fs: Frame[]) =>
        fs.filter((f) => f.type === 'event').map((f) => f.event?.payload.subject)
      assert.deepEqual(events(again.frames), ['missed 1', 'missed 2'])
      await deliver(mxPort(s), `ann@${domain}`, 'live after replay')
      await again.next(isReceived('live after replay'))
      assert.deepEqual(events(again.frames), ['missed 1', 'missed 2', 'live after replay'])

      // The same with a first {"resume": cursor} frame instead of ?cursor.
      const byFrame = await feed('?types=email.received', readKey)
      await byFrame.next((f) => f.type === 'ready')
      byFrame.ws.send(JSON.stringify({ resume: last.cursor }))
      const r2 = await byFrame.next((f) => f.type === 'ready')
      assert.equal(r2.replayed, 3)
      assert.deepEqual(events(byFrame.frames), ['missed 1', 'missed 2', 'live after replay'])
    })

    it('shows a mailbox key only its own mailbox, by header or by subprotocol', async () => {
      const org = await feed('', readKey)
      const mine = await feed('', annKey)
      const browser = await feed('', '', ['postern.v1', `postern.key.${annKey}`])
      assert.equal(browser.ws.protocol, 'postern.v1')
      for (const c of [org, mine, browser]) await c.next((f) => f.type === 'ready')
      await deliver(mxPort(s), `bob@${domain}`, 'for bob only')
      await deliver(mxPort(s), `ann@${domain}`, 'for ann')
      await org.next(isReceived('for bob only'))
      await org.next(isReceived('for ann'))
      for (const c of [mine, browser]) {
        await c.next(isReceived('for ann'))
        await c.next((f) => f.type === 'change' && f.topic === 'mail.changed' && f.mailbox_id === ann)
        const others = c.frames.filter(
          (f) => (f.event && f.event.mailbox_id !== ann) || (f.type === 'change' && f.mailbox_id !== ann),
        )
        assert.deepEqual(others, [], 'a mailbox key saw another mailbox')
        assert.ok(!c.frames.some(isReceived('for bob only')))
      }
      // The org key saw bob's change note too.
      await org.next((f) => f.type === 'change' && f.mailbox_id !== ann)
    })

    it('closes the feed of a revoked key at the next heartbeat with 4401', async () => {
      const k = await api.post('/v1/api-keys', { name: 'short-lived', scope: 'read' })
      assert.equal(k.status, 201, k.text)
      const c = await feed('', k.body.key)
      await c.next((f) => f.type === 'ready')
      assert.equal((await api.delete(`/v1/api-keys/${k.body.id}`)).status, 204)
      const err = await c.next((f) => f.type === 'error')
      assert.equal(err.code, 'CREDENTIALS_REVOKED')
      assert.equal((await c.closed).code, 4401)
      assert.equal(
        (await refusedFeed(wsUrl(s.url), { headers: { authorization: `Bearer ${k.body.key}` } })).status,
        401,
      )
    })

    it('paces a long replay to a reader that keeps reading, within the buffer bound', async () => {
      const principal = (await s.postern.accounts.keys.authenticate(readKey)) as Principal
      const start = Date.now()
      const cursor = idFloor(start - 1)
      for (let i = 0; i < 120; i++)
        await writeEvent(s.postern.store.db, start + i, {
          org_id: principal.org_id,
          type: 'domain.updated',
          actor: 'test',
          ip: null,
          subject_id: 'dom_paced',
          payload: { i, padding: 'x'.repeat(200) },
        })
      const hub = createFeedHub({
        store: s.postern.store,
        bus: s.postern.bus,
        clock: { now: () => Date.now() },
        log: createLogger({ level: 'silent' }),
        pollMs: 50,
        lookbackMs: 1000,
      })
      let backlog = 0
      let peak = 0
      let closed: number | null = null
      const got: number[] = []
      // The reader takes 1 KiB every 5 ms.
      const reader = setInterval(() => {
        backlog = Math.max(0, backlog - 1024)
      }, 5)
      const session = createFeedSession({
        store: s.postern.store,
        hub,
        clock: { now: () => Date.now() },
        scope: await feedScope(s.postern.store.db, principal),
        types: (t) => t === 'domain.updated',
        changes: false,
        maxBuffered: 4096,
        transport: {
          send: (text) => {
            backlog += text.length
            peak = Math.max(peak, backlog)
            const f = JSON.parse(text)
            if (f.type === 'event' && f.event.subject_id === 'dom_paced') got.push(f.event.payload.i)
          },
          buffered: () => backlog,
          close: (code) => {
            closed = code
          },
        },
      })
      try {
        await session.start(cursor)
        assert.equal(closed, null)
        assert.deepEqual(
          got,
          Array.from({ length: 120 }, (_, i) => i),
        )
        assert.ok(peak <= 4096, `the replay queued ${peak} bytes`)
      } finally {
        clearInterval(reader)
        session.stop()
        await hub.close()
      }
    })

    it('closes a consumer that does not keep up with 4429 rather than buffering', async () => {
      const principal = (await s.postern.accounts.keys.authenticate(readKey)) as Principal
      const hub = createFeedHub({
        store: s.postern.store,
        bus: s.postern.bus,
        clock: { now: () => Date.now() },
        log: createLogger({ level: 'silent' }),
        pollMs: 50,
        lookbackMs: 1000,
      })
      const sent: string[] = []
      let closed: { code: number; reason: string } | null = null
      let backlog = 0
      const session = createFeedSession({
        store: s.postern.store,
        hub,
        clock: { now: () => Date.now() },
        scope: await feedScope(s.postern.store.db, principal),
        types: null,
        changes: true,
        maxBuffered: 4096,
        transport: {
          // A socket whose peer reads nothing: every frame stays queued.
          send: (text) => {
            sent.push(text)
            backlog += text.length
          },
          buffered: () => backlog,
          close: (code, reason) => {
            closed = { code, reason }
          },
        },
      })
      try {
        await session.start(null)
        for (let i = 0; i < 30 && !closed; i++) await deliver(mxPort(s), `ann@${domain}`, `flood ${i}`)
        const until = Date.now() + 10_000
        while (!closed && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
        assert.deepEqual(closed, { code: 4429, reason: 'SLOW_CONSUMER' })
        assert.equal(JSON.parse(sent.at(-1) as string).code, 'SLOW_CONSUMER')
        assert.ok(backlog < 4096 + 8192, `kept queueing after the limit: ${backlog} bytes`)
        assert.equal(hub.listeners, 0, 'the closed session stopped listening')
      } finally {
        session.stop()
        await hub.close()
      }
    })
  })
}

describe('live feed over the HTTPS listener', () => {
  it('upgrades on the TLS listener too', async () => {
    const s = await startTestServer('sqlite', { env: { POSTERN_HTTPS_ENABLED: 'true' } })
    try {
      const { api } = await hostedOrg(s)
      const key = (await api.post('/v1/api-keys', { name: 'tls feed', scope: 'read' })).body.key as string
      const https = s.postern.listeners.find((l) => l.name === 'https')
      assert.ok(https)
      const ws = new WebSocket(`wss://127.0.0.1:${https.port}/v1/ws`, [], {
        headers: { authorization: `Bearer ${key}` },
        rejectUnauthorized: false,
      })
      const first = await new Promise<Frame>((resolve, reject) => {
        ws.once('message', (d) => resolve(JSON.parse(String(d)) as Frame))
        ws.once('error', reject)
      })
      assert.equal(first.type, 'ready')
      ws.close()
      await new Promise((r) => ws.once('close', r))
    } finally {
      await s.close()
    }
  })
})
