// PIPELINING (RFC 2920): commands sent in one write are answered in order, DATA's 354 comes
// after the replies before it, a large backlog is answered in full (back-pressure, not loss),
// and nothing after QUIT is executed.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { fakeHandler, RawClient, sleep, startSmtp, type TestSmtp } from './helpers.ts'

describe('PIPELINING', () => {
  let t: TestSmtp
  before(async () => {
    t = await startSmtp({ settings: { max_errors: 50 } })
  })
  after(() => t.close())

  it('answers a whole transaction sent in one write, in order', async () => {
    const c = await RawClient.greeted(t.port)
    c.write(
      'EHLO client.example\r\n' +
        'MAIL FROM:<alice@sender.example>\r\n' +
        'RCPT TO:<bob@postern.test>\r\n' +
        'RCPT TO:<nobody@unknown.example>\r\n' +
        'RCPT TO:<carol@postern.test>\r\n' +
        'DATA\r\n',
    )
    await c.expect('250-')
    await c.expect('250 2.1.0')
    await c.expect('250 2.1.5')
    await c.expect('550 5.1.1')
    await c.expect('250 2.1.5')
    await c.expect('354')
    c.write(
      'Subject: piped\r\n\r\nbody\r\n.\r\nMAIL FROM:<alice@sender.example>\r\nRCPT TO:<dave@postern.test>\r\nDATA\r\n',
    )
    await c.expect('250 2.0.0')
    await c.expect('250 2.1.0')
    await c.expect('250 2.1.5')
    await c.expect('354')
    c.write('\r\nsecond\r\n.\r\nQUIT\r\nNOOP\r\n')
    await c.expect('250 2.0.0')
    await c.expect('221')
    await c.closedByServer()
    assert.equal(await c.reply(), null, 'nothing after QUIT is answered')
    const messages = t.handler.calls.filter((x) => x.kind === 'message')
    const [first, second] = messages.slice(-2)
    assert.ok(first?.kind === 'message' && second?.kind === 'message')
    assert.deepEqual(
      first.to.map((r) => r.address),
      ['bob@postern.test', 'carol@postern.test'],
    )
    assert.equal(second.message.toString(), '\r\nsecond\r\n')
  })
})

describe('PIPELINING with a slow handler', () => {
  it('keeps replies in order while the handler takes its time', async () => {
    let n = 0
    const handler = fakeHandler({
      rcpt: async (to) => {
        await sleep(to.address.startsWith('slow') ? 30 : 0)
        n++
        return to.address.startsWith('no') ? { code: 550, enhanced: '5.1.1', message: `refused ${n}` } : null
      },
    })
    const t = await startSmtp({ handler })
    const c = await RawClient.greeted(t.port)
    c.write(
      'EHLO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<slow1@postern.test>\r\n' +
        'RCPT TO:<no1@postern.test>\r\nRCPT TO:<slow2@postern.test>\r\nRCPT TO:<no2@postern.test>\r\nDATA\r\n',
    )
    await c.expect('250-')
    await c.expect('250 2.1.0')
    await c.expect('250 2.1.5')
    await c.expect('550 5.1.1 refused 2')
    await c.expect('250 2.1.5')
    await c.expect('550 5.1.1 refused 4')
    await c.expect('354')
    c.close()
    await t.close()
  })

  it('holds a backlog larger than its buffer while the handler is busy, and answers all of it', async () => {
    const handler = fakeHandler({ rcpt: async () => sleep(100).then(() => null) })
    const t = await startSmtp({ handler })
    const c = await RawClient.greeted(t.port)
    const n = 60_000 // 360 kB of commands arrive while RCPT is in the handler: the socket is paused
    c.pause() // and the client reads nothing until all is sent
    c.write(
      `EHLO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@postern.test>\r\n${'NOOP\r\n'.repeat(n)}RSET\r\n`,
    )
    await sleep(200)
    c.resume()
    await c.expect('250-')
    await c.expect('250 2.1.0')
    await c.expect('250 2.1.5')
    for (let i = 0; i < n; i++) await c.expect('250 2.0.0 OK')
    await c.expect('250 2.0.0 Reset OK')
    c.close()
    await t.close()
  })
})
