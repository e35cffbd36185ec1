// Sending limits and other ways in: the per-org cap (429 when a request cannot fit; queued
// mail over the cap is held, not dropped), the per-key limit counting each message of a
// batch, batches that are all or nothing, and system mail (invitations) drained through the
// queue, DKIM-signed when the host name is a verified domain.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { verifiedDomain } from '../domains/helpers.ts'
import { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import { fakeHandler, startSmtp, type TestSmtp } from '../smtp/helpers.ts'
import { type Sender, startSender, waitForEmail } from './helpers.ts'

const REMOTE = 'remote.example'
const msg = (to: string | string[], subject = 'Hi') => ({
  from: 'alice@a.example',
  to,
  subject,
  text: 'Hello',
})

for (const dialect of DIALECTS) {
  describe(`outbound limits (${dialect})`, () => {
    let dns: DnsServer
    let remote: TestSmtp
    before(async () => {
      dns = await startDnsServer({})
      remote = await startSmtp({ handler: fakeHandler() })
      dns.set(REMOTE, 'MX', [{ priority: 10, exchange: `mx.${REMOTE}` }])
      dns.set(`mx.${REMOTE}`, 'A', ['127.0.0.1'])
    })
    after(async () => {
      await remote?.close()
      await dns?.close()
    })

    describe('org cap', () => {
      let a: Sender
      before(async () => {
        a = await startSender(dialect, dns, remote.port, { env: { POSTERN_OUTBOUND_ORG_HOURLY_CAP: '3' } })
      })
      after(() => a?.server.close())

      it('holds queued mail over the cap and answers 429 to sends that cannot fit', async () => {
        await a.api.post('/v1/queue/pause')
        const first = await a.send.post('/v1/emails', msg([`c1@${REMOTE}`, `c2@${REMOTE}`]))
        const second = await a.send.post('/v1/emails', msg([`c3@${REMOTE}`, `c4@${REMOTE}`]))
        assert.equal(first.status, 202, first.text)
        assert.equal(second.status, 202, second.text)
        await a.api.post('/v1/queue/resume')
        // Both are claimed together: whichever reserves the cap first goes, the other is held.
        const settled = async (id: string) =>
          waitForEmail(a.api, id, (e) => e.status === 'sent' || e.status === 'held')
        const [e1, e2] = [await settled(first.body.id), await settled(second.body.id)]
        assert.deepEqual([e1.status, e2.status].sort(), ['held', 'sent'])
        const held = e1.status === 'held' ? e1 : e2
        assert.match(held.held_reason, /hourly cap of 3/)
        assert.ok(held.events.some((e: { type: string }) => e.type === 'email.held'))
        assert.ok(
          held.recipients.every((r: { state: string }) => r.state === 'queued'),
          'held, not dropped',
        )
        // Two of three used: one more recipient fits, two do not.
        const fits = await a.send.post('/v1/emails', msg(`c5@${REMOTE}`))
        assert.equal(fits.status, 202, fits.text)
        await waitForEmail(a.api, fits.body.id, (e) => e.status === 'sent')
        const over = await a.send.post('/v1/emails', msg([`c6@${REMOTE}`, `c7@${REMOTE}`]))
        assert.equal(over.status, 429, over.text)
        assert.equal(over.body.code, 'ORG_SEND_CAP')
        assert.ok(Number(over.headers.get('retry-after')) > 0)
        const q = await a.api.get('/v1/queue')
        assert.equal(q.body.messages.held, 1)
      })
    })

    describe('operator caps are ceilings', () => {
      let a: Sender
      let b: Api
      before(async () => {
        a = await startSender(dialect, dns, remote.port, {
          env: { POSTERN_OUTBOUND_ORG_HOURLY_CAP: '2', POSTERN_AUTH_SIGNUP: 'open' },
        })
        // A second org on the same server, through sign-up, with its own verified domain.
        b = new Api(a.server.url)
        const signup = await b.post('/v1/auth/signup', {
          email: 'owner@b2.example',
          password: 'correct-horse-battery-9',
          org_name: 'Org B2',
        })
        assert.equal(signup.status, 201, signup.text)
        await verifiedDomain(b, dns, 'b2.example')
      })
      after(() => a?.server.close())

      it('holds the operator cap when an org raises its own (above it) or sets 0', async () => {
        const raised = await a.api.patch('/v1/org', { settings: { send_hourly_cap: 100 } })
        assert.equal(raised.status, 200, raised.text)
        const zero = await b.patch('/v1/org', { settings: { send_hourly_cap: 0, send_daily_cap: 0 } })
        assert.equal(zero.status, 200, zero.text)
        for (const [api, reader, from] of [
          [a.send, a.api, 'alice@a.example'],
          [b, b, 'bob@b2.example'],
        ] as const) {
          const two = await api.post('/v1/emails', { ...msg([`x1@${REMOTE}`, `x2@${REMOTE}`]), from })
          assert.equal(two.status, 202, two.text)
          await waitForEmail(reader, two.body.id, (e) => e.status === 'sent')
          const third = await api.post('/v1/emails', { ...msg(`x3@${REMOTE}`), from })
          assert.equal(third.status, 429, `${from}: ${third.text}`)
          assert.equal(third.body.code, 'ORG_SEND_CAP')
          assert.match(third.body.detail, /2 recipients per hour/)
        }
      })

      it('refuses a cap setting that is not a whole number', async () => {
        const bad = await a.api.patch('/v1/org', { settings: { send_daily_cap: 'lots' } })
        assert.equal(bad.status, 422, bad.text)
        assert.equal(bad.body.code, 'INVALID_SETTING')
      })
    })

    describe('lifetime, delay notice and smart host', () => {
      let a: Sender
      let relay: TestSmtp
      before(async () => {
        relay = await startSmtp({
          handler: fakeHandler({
            rcpt: async (to) =>
              to.address.startsWith('stuck') ? { code: 451, enhanced: '4.4.1', message: 'Not now' } : null,
          }),
        })
        a = await startSender(dialect, dns, remote.port, {
          env: {
            POSTERN_OUTBOUND_LIFETIME_SECONDS: '2',
            POSTERN_OUTBOUND_DELAY_NOTICE_SECONDS: '1',
            POSTERN_OUTBOUND_SMART_HOST: `127.0.0.1:${relay.port}`,
            POSTERN_OUTBOUND_SMART_HOST_TLS: 'none',
          },
        })
      })
      after(async () => {
        await a?.server.close()
        await relay?.close()
      })

      it('relays everything through the smart host, and gives up after the lifetime with a delay notice first', async () => {
        const ok = await a.send.post('/v1/emails', msg(`relayed@${REMOTE}`))
        const e = await waitForEmail(a.api, ok.body.id, (x) => x.status === 'sent')
        assert.equal(e.recipients[0].remote_mta, '127.0.0.1')
        const rcpts = (h: TestSmtp) =>
          h.handler.calls.flatMap((c) => (c.kind === 'rcpt' ? [c.to.address] : []))
        assert.ok(rcpts(relay).includes(`relayed@${REMOTE}`))
        assert.ok(!rcpts(remote).includes(`relayed@${REMOTE}`), 'the MX was not used')
        const stuck = await a.send.post('/v1/emails', msg(`stuck@${REMOTE}`))
        const f = await waitForEmail(a.api, stuck.body.id, (x) => x.status === 'failed', 20_000)
        assert.equal(f.recipients[0].state, 'failed')
        assert.match(f.recipients[0].last_response, /gave up/)
        const types = f.events.map((x: { type: string }) => x.type)
        assert.ok(types.includes('email.deferred'))
        assert.ok(types.includes('email.delayed'), types.join(','))
        assert.ok(types.indexOf('email.delayed') < types.lastIndexOf('email.failed'))
      })
    })

    describe('batches, key limits and system mail', () => {
      let a: Sender
      before(async () => {
        a = await startSender(dialect, dns, remote.port, {
          env: { POSTERN_RATE_LIMITS_SEND_KEY: '5/60s', POSTERN_HOSTNAME: 'a.example' },
        })
      })
      after(() => a?.server.close())

      it('sends a batch all or nothing, and counts each of its messages against the key', async () => {
        const bad = await a.send.post('/v1/emails/batch', [
          msg(`b1@${REMOTE}`),
          { ...msg(`b2@${REMOTE}`), subject: 'x\r\ny' },
        ])
        assert.equal(bad.status, 422, bad.text)
        assert.match(bad.text, /\[1\]\.subject/)
        assert.equal(
          (await a.api.get(`/v1/emails?recipient=b1@${REMOTE}`)).body.data.length,
          0,
          'nothing queued',
        )
        const ok = await a.send.post('/v1/emails/batch', [
          msg(`b1@${REMOTE}`),
          msg(`b2@${REMOTE}`),
          msg(`b3@${REMOTE}`),
        ])
        assert.equal(ok.status, 202, ok.text)
        assert.equal(ok.body.data.length, 3)
        for (const r of ok.body.data) await waitForEmail(a.api, r.id, (e) => e.status === 'sent')
        const tooMany = await a.send.post('/v1/emails/batch', [
          msg(`b4@${REMOTE}`),
          msg(`b5@${REMOTE}`),
          msg(`b6@${REMOTE}`),
        ])
        assert.equal(tooMany.status, 429, tooMany.text)
        assert.equal(tooMany.body.code, 'RATE_LIMITED')
      })

      it('drains system mail (an invitation) through the queue, signed for the host name’s domain', async () => {
        const inv = await a.api.post('/v1/users/invite', { email: `newbie@${REMOTE}`, role: 'member' })
        assert.equal(inv.status, 201, inv.text)
        const until = Date.now() + 15_000
        let got: Buffer | undefined
        while (!got && Date.now() < until) {
          got = remote.handler.messages().find((m) => m.includes(`newbie@${REMOTE}`))
          if (!got) await new Promise((r) => setTimeout(r, 50))
        }
        assert.ok(got, 'the invitation reached the remote MX')
        const head = got.subarray(0, got.indexOf('\r\n\r\n')).toString()
        assert.match(head, /^DKIM-Signature:[\s\S]*d=a\.example/m)
        assert.match(head, /^From: Postern <postern@a\.example>/m)
        assert.match(head, /^Auto-Submitted: auto-generated/m)
        const row = await a.server.postern.store.db
          .selectFrom('system_mail')
          .selectAll()
          .where('to_address', '=', `newbie@${REMOTE}`)
          .executeTakeFirstOrThrow()
        const deadline = Date.now() + 5000
        let status = row.status
        while (status !== 'sent' && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50))
          status = (
            await a.server.postern.store.db
              .selectFrom('system_mail')
              .select('status')
              .where('id', '=', row.id)
              .executeTakeFirstOrThrow()
          ).status
        }
        assert.equal(status, 'sent')
      })
    })
  })
}
