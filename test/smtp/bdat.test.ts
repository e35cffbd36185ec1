// CHUNKING (RFC 3030) over a raw socket (nodemailer does not speak BDAT): chunks assembled
// verbatim, BDAT 0 LAST, pipelined chunks, the order rules, and refused chunks read in full so
// the session stays in step.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { openTransaction, RawClient, startSmtp, type TestSmtp } from './helpers.ts'

describe('BDAT', () => {
  let t: TestSmtp
  before(async () => {
    t = await startSmtp({ settings: { max_message_bytes: 1000, max_errors: 50 } })
  })
  after(() => t.close())

  const lastMessage = () => t.handler.messages().at(-1)?.toString('latin1')

  it('assembles chunks verbatim, dots and all', async () => {
    const c = await RawClient.greeted(t.port)
    await openTransaction(c)
    const one = 'Subject: chunks\r\n\r\n'
    const two = '.\r\n..not stuffed\r\n\r\n.\r\n'
    c.write(`BDAT ${one.length}\r\n${one}`)
    await c.expect(`250 2.0.0 ${one.length} octets received`)
    c.write(`BDAT ${two.length} LAST\r\n${two}`)
    await c.expect('250 2.0.0 Ok: queued as TEST')
    assert.equal(lastMessage(), one + two)
    await c.cmd('NOOP', '250')
    c.close()
  })

  it('takes BDAT 0 LAST, after chunks and alone', async () => {
    const c = await RawClient.greeted(t.port)
    await openTransaction(c)
    c.write('BDAT 5\r\nab\r\n\r')
    await c.expect('250 2.0.0 5 octets received')
    c.write('BDAT 1\r\n\n')
    await c.expect('250 2.0.0 1 octets received') // a CRLF split over two chunks
    c.write('BDAT 0 LAST\r\n')
    await c.expect('250 2.0.0 Ok')
    assert.equal(lastMessage(), 'ab\r\n\r\n')
    await openTransaction(c)
    c.write('BDAT 0 LAST\r\n')
    await c.expect('250 2.0.0 Ok')
    assert.equal(lastMessage(), '')
    await openTransaction(c)
    c.write('BDAT 3 LAST\r\nab\r') // a message ending in a lone CR
    await c.expect('550 5.6.0')
    c.close()
  })

  it('pipelines commands and chunks in one write', async () => {
    const c = await RawClient.greeted(t.port)
    const text = 'Subject: p\r\n\r\nbody\r\n'
    c.write(
      `EHLO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@postern.test>\r\n` +
        `BDAT 12\r\n${text.slice(0, 12)}BDAT ${text.length - 12} LAST\r\n${text.slice(12)}QUIT\r\n`,
    )
    await c.expect('250-')
    await c.expect('250 2.1.0')
    await c.expect('250 2.1.5')
    await c.expect('250 2.0.0 12 octets received')
    await c.expect('250 2.0.0 Ok')
    await c.expect('221 2.0.0')
    assert.equal(lastMessage(), text)
  })

  it('refuses DATA and RCPT once BDAT started', async () => {
    const c = await RawClient.greeted(t.port)
    await openTransaction(c)
    c.write('BDAT 3\r\nab\n')
    await c.expect('550 5.6.0') // bare LF: the chunk fails the transaction
    await c.cmd('RSET', '250')
    await openTransaction(c, 'carol@postern.test')
    c.write('BDAT 4\r\nab\r\n')
    await c.expect('250 2.0.0 4 octets')
    await c.cmd('RCPT TO:<dave@postern.test>', '503 5.5.1 No RCPT after BDAT')
    await c.cmd('DATA', '503 5.5.1 DATA cannot follow BDAT')
    c.write('BDAT 0 LAST\r\n')
    await c.expect('250 2.0.0 Ok')
    assert.equal(lastMessage(), 'ab\r\n')
    c.close()
  })

  it('reads a refused chunk in full and stays in step', async () => {
    const c = await RawClient.greeted(t.port)
    await c.cmd('EHLO client.example', '250')
    c.write('BDAT 10\r\nNOOP\r\nNOOP') // no transaction: 503, and the 10 octets are not commands
    await c.expect('503 5.5.1 Send MAIL first')
    await c.cmd('MAIL FROM:<a@b.example>', '250')
    c.write('BDAT 6 LAST\r\nQUIT\r\n')
    await c.expect('554 5.5.1 No valid recipients')
    await c.cmd('NOOP', '250 2.0.0 OK')
    c.close()
  })

  it('answers 552 to the chunk that passes the size limit and refuses the pipelined rest', async () => {
    const c = await RawClient.greeted(t.port)
    await openTransaction(c)
    const chunk = `${'x'.repeat(598)}\r\n`
    const before = t.handler.messages().length
    c.write(`BDAT 600\r\n${chunk}BDAT 600\r\n${chunk}BDAT 600 LAST\r\n${chunk}NOOP\r\n`)
    await c.expect('250 2.0.0 600 octets')
    await c.expect('552 5.3.4 Message size exceeds the limit of 1000 octets')
    await c.expect('503 5.5.1 Transaction failed earlier, send RSET')
    await c.expect('250 2.0.0 OK')
    assert.equal(t.handler.messages().length, before)
    await c.cmd('MAIL FROM:<a@b.example>', '250 2.1.0') // a new transaction may start
    c.close()
  })
})
