// SMTP smuggling (SEC Consult, December 2023; RFC 5321 2.3.8 and 4.1.1.4): an outbound server
// that passes odd line ends through lets its user end a message early at a receiver that
// accepts them, and "smuggle" a second envelope and message after it. Postern must see one
// message, end it only at CRLF.CRLF, refuse it when it holds a bare LF or CR, and stay in step.
// The payloads are the published end-of-data variants.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { openTransaction, RawClient, startSmtp, type TestSmtp } from './helpers.ts'

/** The published fake end-of-data sequences (and their relatives). */
const PAYLOADS: [name: string, seq: string][] = [
  ['<LF>.<LF>', '\n.\n'],
  ['<LF>.<CR><LF>', '\n.\r\n'],
  ['<CR>.<CR>', '\r.\r'],
  ['<CR>.<CR><LF>', '\r.\r\n'],
  ['<CR><LF>.<CR>', '\r\n.\r'],
  ['<CR><LF>.<LF>', '\r\n.\n'],
  ['<LF>.<CR>', '\n.\r'],
  ['<CR><LF>.<LF><CR>', '\r\n.\n\r'],
  ['<CR><CR><LF>.<CR><CR><LF>', '\r\r\n.\r\r\n'],
]

/** A message with a fake end, then a smuggled envelope and message, then the real end. */
function smuggle(seq: string): string {
  return (
    'From: alice@sender.example\r\nTo: bob@postern.test\r\nSubject: carrier\r\n\r\ncarrier body' +
    seq +
    'MAIL FROM:<admin@postern.test>\r\n' +
    'RCPT TO:<victim@postern.test>\r\n' +
    'DATA\r\n' +
    'From: admin@postern.test\r\nTo: victim@postern.test\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n' +
    '.\r\n'
  )
}

describe('SMTP smuggling', () => {
  let t: TestSmtp
  before(async () => {
    t = await startSmtp({ settings: { max_errors: 5 } })
  })
  after(() => t.close())

  for (const [name, seq] of PAYLOADS) {
    it(`${name} is not an end of data: one message, refused 550, session in step`, async () => {
      const c = await RawClient.greeted(t.port)
      await openTransaction(c)
      await c.cmd('DATA', '354')
      const calls = t.handler.calls.length
      c.write(smuggle(seq))
      await c.expect('550 5.6.0 Message refused: bare LF or bare CR is not allowed')
      // Exactly one reply for the whole text: nothing else is waiting or arrives.
      await c.cmd('NOOP', '250 2.0.0 OK')
      assert.equal(t.handler.calls.length, calls, 'the handler saw no smuggled command and no message')
      // The session continues normally.
      await c.cmd('MAIL FROM:<alice@sender.example>', '250 2.1.0')
      await c.cmd('RCPT TO:<bob@postern.test>', '250 2.1.5')
      await c.cmd('DATA', '354')
      c.write('Subject: clean\r\n\r\nok\r\n.\r\n')
      await c.expect('250 2.0.0')
      assert.equal(t.handler.messages().at(-1)!.toString(), 'Subject: clean\r\n\r\nok\r\n')
      await c.cmd('QUIT', '221')
      await c.closedByServer()
    })
  }

  for (const [name, seq, kept] of [
    ['<CR><LF><NUL>.<CR><LF>', '\r\n\x00.\r\n', '\r\n\x00.\r\n'],
    ['<CR><LF>.<NUL><CR><LF>', '\r\n.\x00\r\n', '\r\n\x00\r\n'], // the dot is stuffing
  ]) {
    it(`${name} is text: one message, the smuggled lines inside it`, async () => {
      const c = await RawClient.greeted(t.port)
      await openTransaction(c)
      await c.cmd('DATA', '354')
      const mails = t.handler.calls.filter((x) => x.kind === 'mail').length
      const text = smuggle(seq!)
      c.write(text)
      await c.expect('250 2.0.0')
      await c.cmd('NOOP', '250 2.0.0 OK')
      assert.equal(t.handler.calls.filter((x) => x.kind === 'mail').length, mails)
      assert.equal(t.handler.messages().at(-1)!.toString('latin1'), text.slice(0, -3).replace(seq!, kept!))
      c.close()
    })
  }

  it('all payloads pipelined in one connection stay one message each', async () => {
    const c = await RawClient.greeted(t.port)
    await c.cmd('EHLO client.example', '250')
    const before = t.handler.messages().length
    for (const [, seq] of PAYLOADS) {
      c.write('MAIL FROM:<alice@sender.example>\r\nRCPT TO:<bob@postern.test>\r\nDATA\r\n')
      await c.expect('250 2.1.0')
      await c.expect('250 2.1.5')
      await c.expect('354')
      c.write(smuggle(seq))
      await c.expect('550 5.6.0')
    }
    await c.cmd('QUIT', '221')
    assert.equal(t.handler.messages().length, before)
    assert.ok(!t.handler.calls.some((x) => x.kind === 'rcpt' && x.to.address === 'victim@postern.test'))
  })
})
