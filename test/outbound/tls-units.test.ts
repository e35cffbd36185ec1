// The small pieces of outbound TLS policy that need no server: REQUIRETLS on MAIL FROM only when
// asked for and offered (RFC 8689 4.2.1), and the connection pool never lending a session
// opened without certificate checks to a caller that requires them.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createConnectionPool } from '../../src/services/outbound/pool.ts'
import type { DeliveryTarget, SmtpSession, Transport } from '../../src/services/outbound/transport.ts'
import { planEnvelope } from '../../src/smtp/client/envelope.ts'

describe('REQUIRETLS on MAIL FROM', () => {
  const message = Buffer.from('Subject: x\r\n\r\nbody\r\n')
  const cases: [boolean, string[], string][] = [
    [true, ['REQUIRETLS', 'SIZE'], 'MAIL FROM:<a@x.example> SIZE=20 REQUIRETLS'],
    [true, ['SIZE'], 'MAIL FROM:<a@x.example> SIZE=20'],
    [false, ['REQUIRETLS'], 'MAIL FROM:<a@x.example>'],
  ]
  for (const [asked, offered, want] of cases)
    it(`asked ${asked}, offered ${offered.join(' ')}`, () => {
      const ext = new Map(offered.map((k) => [k, '']))
      const plan = planEnvelope(
        { mailFrom: 'a@x.example', recipients: [{ address: 'b@y.example' }], message, requireTls: asked },
        ext,
      )
      assert.equal(plan.mail, want)
    })
})

describe('connection pool and certificate checks', () => {
  it('opens a new session for a verified request instead of reusing an unverified one', async () => {
    let opened = 0
    const transport: Transport = {
      async open(target) {
        opened++
        const session: SmtpSession = {
          target,
          tls: { protocol: 'TLSv1.3', cipher: 'x', verified: false },
          usable: true,
          offers: () => false,
          send: async () => ({ recipients: [], dsn: false }),
          close: async () => {},
        }
        return session
      },
    }
    const pool = createConnectionPool({ transport, concurrency: 4, perDestination: 2 })
    const target: DeliveryTarget = { domain: 'y.example', host: 'mx.y.example', ip: '127.0.0.1', port: 25 }
    const opts = { helo: 'me.example', tls: 'starttls' as const, verifyCertificate: false }
    const first = await pool.acquire(target, opts, () => {})
    first.release(true)
    const again = await pool.acquire(target, opts, () => {})
    assert.equal(again.fresh, false, 'the same options reuse the idle session')
    again.release(true)
    const strict = await pool.acquire(target, { ...opts, tls: 'starttls', verifyCertificate: true }, () => {})
    assert.equal(strict.fresh, true)
    assert.equal(opened, 2)
    strict.release(false)
    await pool.close()
  })
})
