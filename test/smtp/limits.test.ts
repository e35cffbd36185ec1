// Connection limits, timeouts, the greeting pause and graceful shutdown, over real sockets.
// Timeouts are set small; nothing here asserts on how long anything took.

import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { describe, it } from 'node:test'
import { fakeHandler, openTransaction, RawClient, sleep, startSmtp } from './helpers.ts'

/** Polls until `check` holds (state that changes when a socket closes on the other side). */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await sleep(10)
  assert.ok(check(), what)
}

describe('timeouts', () => {
  it('closes an idle session with 421 4.4.2 after command_timeout_ms', async () => {
    const t = await startSmtp({ settings: { command_timeout_ms: 100 } })
    const c = await RawClient.greeted(t.port)
    await c.cmd('EHLO client.example', '250')
    await c.expect('421 4.4.2 mx.postern.test Timeout')
    await c.closedByServer()
    await t.close()
  })

  it('does not let a client that drips a partial line keep the session', async () => {
    const t = await startSmtp({ settings: { command_timeout_ms: 150 } })
    const c = await RawClient.greeted(t.port)
    for (let i = 0; i < 40 && !c.isClosed && c.pending === ''; i++) {
      c.write('N')
      await sleep(25)
    }
    await c.expect('421 4.4.2')
    await t.close()
  })

  it('does not count handler time as client idle time', async () => {
    const handler = fakeHandler({ rcpt: async () => sleep(300).then(() => null) })
    const t = await startSmtp({ handler, settings: { command_timeout_ms: 100 } })
    const c = await RawClient.greeted(t.port)
    await c.cmd('EHLO client.example', '250')
    await c.cmd('MAIL FROM:<a@b.example>', '250')
    await c.cmd('RCPT TO:<c@postern.test>', '250 2.1.5')
    await c.expect('421 4.4.2') // and then the idle timeout applies again
    await t.close()
  })

  it('closes with 421 4.4.2 when the message text takes longer than data_timeout_ms', async () => {
    const t = await startSmtp({ settings: { command_timeout_ms: 5000, data_timeout_ms: 150 } })
    const c = await RawClient.greeted(t.port)
    await openTransaction(c)
    await c.cmd('DATA', '354')
    for (let i = 0; i < 40 && !c.isClosed && c.pending === ''; i++) {
      c.write('Subject: slow\r\n') // steady progress, but never the end
      await sleep(25)
    }
    await c.expect('421 4.4.2')
    await c.closedByServer()
    assert.equal(t.handler.messages().length, 0)
    await t.close()
  })
})

describe('connection limits', () => {
  it('refuses connections over max_connections_per_ip with 421 4.7.0', async () => {
    const t = await startSmtp({ settings: { max_connections_per_ip: 2 } })
    const a = await RawClient.greeted(t.port)
    const b = await RawClient.greeted(t.port)
    assert.equal(t.server.connections, 2)
    const c = await RawClient.connect(t.port)
    await c.expect('421 4.7.0 mx.postern.test Too many connections from your address')
    await c.closedByServer()
    assert.equal(
      t.handler.calls.filter((x) => x.kind === 'connect').length,
      2,
      'no handler call for refused ones',
    )
    a.close()
    await until(() => t.server.connections === 1, 'the closed session frees its slot')
    const d = await RawClient.greeted(t.port)
    d.close()
    b.close()
    await until(() => t.server.connections === 0, 'all slots free')
    await t.close()
  })

  it('refuses connections over max_connections with 421 4.7.0', async () => {
    const t = await startSmtp({ settings: { max_connections: 2 } })
    const a = await RawClient.greeted(t.port)
    const b = await RawClient.greeted(t.port)
    const c = await RawClient.connect(t.port)
    await c.expect('421 4.7.0 mx.postern.test Too many connections, try again later')
    await c.closedByServer()
    a.close()
    b.close()
    await t.close()
  })
})

describe('greeting pause', () => {
  it('refuses a client that talks before the greeting with 554 5.5.0', async () => {
    const t = await startSmtp({ settings: { greeting_delay_ms: 200 } })
    const c = await RawClient.connect(t.port)
    c.send('EHLO hasty.example')
    assert.equal(await c.reply(), '554 5.5.0 Protocol error: talking before the greeting')
    await c.closedByServer()
    await t.close()
  })

  it('greets a client that waits', async () => {
    const t = await startSmtp({ settings: { greeting_delay_ms: 100 } })
    const c = await RawClient.connect(t.port)
    await c.expect('220 mx.postern.test Postern ESMTP')
    await c.cmd('EHLO patient.example', '250')
    c.close()
    await t.close()
  })
})

describe('close()', () => {
  it('answers 421 4.3.2 to idle sessions, closes them and stops listening', async () => {
    const t = await startSmtp()
    const a = await RawClient.greeted(t.port)
    const b = await RawClient.greeted(t.port)
    await openTransaction(b)
    b.write('NOO') // a partial command counts as idle
    await sleep(20)
    const closed = t.server.close(5000)
    await a.expect('421 4.3.2 mx.postern.test Service shutting down')
    await b.expect('421 4.3.2')
    await a.closedByServer()
    await b.closedByServer()
    await closed
    assert.equal(t.server.connections, 0)
    const refused = connect({ host: '127.0.0.1', port: t.port })
    await assert.rejects(
      new Promise((resolve, reject) => {
        refused.once('connect', resolve)
        refused.once('error', reject)
      }),
      { code: 'ECONNREFUSED' },
    )
  })

  it('waits for a message in flight, answers it, then 421 4.3.2', async () => {
    let stored = false
    const handler = fakeHandler({
      message: async () => {
        await sleep(200)
        stored = true
        return { code: 250, enhanced: '2.0.0', message: 'stored' }
      },
    })
    const t = await startSmtp({ handler })
    const c = await RawClient.greeted(t.port)
    await openTransaction(c)
    await c.cmd('DATA', '354')
    c.write('Subject: in flight\r\n\r\nx\r\n.\r\n')
    await until(() => handler.calls.some((x) => x.kind === 'message'), 'the handler has the message')
    const closing = t.server.close(5000)
    await c.expect('250 2.0.0 stored')
    await c.expect('421 4.3.2')
    await closing
    assert.ok(stored)
    assert.equal(t.server.connections, 0)
  })

  it('destroys what is left when the grace period runs out', async () => {
    const t = await startSmtp()
    const c = await RawClient.greeted(t.port)
    await openTransaction(c)
    await c.cmd('DATA', '354')
    c.write('Subject: never ends\r\n')
    await sleep(20)
    await t.server.close(100)
    await c.closedByServer()
    assert.equal(t.server.connections, 0)
    assert.equal(t.handler.messages().length, 0)
  })
})
