// SMTP sessions as transcripts over real sockets on 127.0.0.1, with a handler that records its
// calls: the greeting and EHLO exactly, every command, the order rules, every refusal code, the
// handler's answers, the per-session limits, and what reaches the logs.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { SmtpReply } from '../../src/smtp/handler.ts'
import {
  type FakeHandler,
  fakeHandler,
  HOST,
  openTransaction,
  RawClient,
  startSmtp,
  type TestSmtp,
} from './helpers.ts'

const EHLO_LINES = [
  `250-${HOST}`,
  '250-PIPELINING',
  '250-8BITMIME',
  '250-SMTPUTF8',
  '250-SIZE 1000000',
  '250-ENHANCEDSTATUSCODES',
  '250-CHUNKING',
  '250 DSN',
].join('\r\n')

describe('SMTP session', () => {
  let t: TestSmtp
  const logLines: string[] = []
  before(async () => {
    t = await startSmtp({ logLines, settings: { max_errors: 50 } })
  })
  after(() => t.close())

  const connectTo = () => RawClient.greeted(t.port)
  const callsOf = (s: string) => t.handler.calls.filter((c) => c.kind !== 'connect' && c.s.id === s)

  it('greets and answers EHLO and HELO exactly', async () => {
    const c = await RawClient.connect(t.port)
    assert.equal(await c.reply(), `220 ${HOST} Postern ESMTP`)
    assert.equal(await c.cmd('EHLO client.example', '250'), EHLO_LINES)
    assert.equal(await c.cmd('HELO client.example', '250'), `250 ${HOST}`)
    assert.equal(await c.cmd('QUIT', '221'), `221 2.0.0 ${HOST} closing connection`)
    await c.closedByServer()
  })

  it('takes a message: envelope, session facts and unstuffed text reach the handler', async () => {
    const c = await connectTo()
    await c.cmd('EHLO client.example', '250')
    await c.cmd(
      'MAIL FROM:<alice@sender.example> SIZE=42 BODY=8BITMIME RET=HDRS ENVID=id+2B1',
      '250 2.1.0 Sender OK',
    )
    await c.cmd(
      'RCPT TO:<bob@postern.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob+2Bx@postern.test',
      '250 2.1.5',
    )
    await c.cmd('RCPT TO:<carol@postern.test>', '250 2.1.5 Recipient OK')
    await c.cmd('DATA', '354 End data with <CR><LF>.<CR><LF>')
    c.write('Subject: hi\r\n\r\n..leading dot\r\n.\r\n')
    assert.equal(await c.reply(), '250 2.0.0 Ok: queued as TEST')
    await c.cmd('QUIT', '221 2.0.0')
    await c.closedByServer()

    const message = t.handler.calls.findLast((x) => x.kind === 'message')
    assert.ok(message?.kind === 'message')
    assert.equal(message.message.toString(), 'Subject: hi\r\n\r\n.leading dot\r\n')
    assert.deepEqual(message.from, {
      address: 'alice@sender.example',
      size: 42,
      body: '8BITMIME',
      smtputf8: false,
      ret: 'HDRS',
      envid: 'id+1',
      requireTls: false,
    })
    assert.deepEqual(message.to, [
      { address: 'bob@postern.test', notify: ['SUCCESS', 'DELAY'], orcpt: 'rfc822;bob+x@postern.test' },
      { address: 'carol@postern.test', notify: null, orcpt: null },
    ])
    assert.match(message.s.id, /^smtp_[A-Za-z0-9_-]{16}$/)
    assert.equal(message.s.remoteAddress, '127.0.0.1')
    assert.equal(message.s.localAddress, '127.0.0.1')
    assert.equal(message.s.localPort, t.port)
    assert.equal(message.s.helo, 'client.example')
    assert.equal(message.s.esmtp, true)
    assert.equal(message.s.tls, null)
    const rcpts = callsOf(message.s.id).filter((x) => x.kind === 'rcpt')
    assert.deepEqual(
      rcpts.map((x) => x.kind === 'rcpt' && x.accepted.length),
      [0, 1],
    )
  })

  it('refuses commands out of order with 503 5.5.1 and goes on', async () => {
    const c = await connectTo()
    await c.cmd('MAIL FROM:<a@b.example>', '503 5.5.1 Send EHLO or HELO first')
    await c.cmd('RCPT TO:<a@b.example>', '503 5.5.1')
    await c.cmd('DATA', '503 5.5.1')
    await c.cmd('EHLO client.example', '250')
    await c.cmd('RCPT TO:<a@b.example>', '503 5.5.1 Send MAIL first')
    await c.cmd('DATA', '503 5.5.1 Send MAIL first')
    await c.cmd('MAIL FROM:<a@b.example>', '250 2.1.0')
    await c.cmd('MAIL FROM:<a@b.example>', '503 5.5.1 Sender already given')
    await c.cmd('DATA', '554 5.5.1 No valid recipients')
    await c.cmd('RCPT TO:<x@unknown.example>', '550 5.1.1 No such user here')
    await c.cmd('DATA', '554 5.5.1 No valid recipients')
    await c.cmd('RCPT TO:<bob@postern.test>', '250 2.1.5')
    await c.cmd('RSET', '250 2.0.0')
    await c.cmd('DATA', '503 5.5.1 Send MAIL first')
    await c.cmd('QUIT', '221')
  })

  it('EHLO in a transaction resets it (RFC 5321 4.1.4)', async () => {
    const c = await connectTo()
    await openTransaction(c)
    await c.cmd('EHLO again.example', '250')
    await c.cmd('DATA', '503 5.5.1')
    await c.cmd('MAIL FROM:<a@b.example>', '250 2.1.0')
    c.close()
  })

  it('answers bad commands with the right codes', async () => {
    const c = await connectTo()
    await c.cmd('EHLO client.example', '250')
    await c.cmd('FROB', '500 5.5.2 Command not recognized')
    await c.cmd('EXPN staff', '502 5.5.1 Command not implemented')
    await c.cmd('AUTH PLAIN AGJvYgBzZWNyZXQ=', '502 5.5.1 AUTH not available')
    await c.cmd(
      'MAIL FROM:<a@b.example> SIZE=x',
      '501 5.5.4 Syntax error in parameters or arguments: SIZE needs a number',
    )
    await c.cmd('MAIL FROM:<a@b..example>', '501 5.1.7 Bad sender address syntax')
    await c.cmd(
      'MAIL FROM:<a@b.example> XFOO=1',
      '555 5.5.4 Parameter not recognized or not implemented: XFOO',
    )
    await c.cmd('MAIL FROM:<j\u00f6rg@b.example>', '553 5.6.7')
    await c.cmd('MAIL FROM:<a@b.example>', '250')
    await c.cmd('RCPT TO:<bob>', '501 5.1.3 Bad recipient address syntax')
    await c.cmd('RCPT TO:<b\u00f6b@postern.test>', '553 5.6.7')
    await c.cmd('RCPT TO:<bob@postern.test> ORCPT=x', '501 5.5.4')
    c.write('NO\x00OP\r\n')
    await c.expect('500 5.5.2 Command line has control characters')
    c.write('NOOP\nRSET\r\n') // a bare LF does not end a command line
    await c.expect('500 5.5.2')
    await c.cmd('VRFY bob', '252 2.5.0')
    await c.cmd('HELP', '214-2.0.0 Commands:')
    await c.cmd('NOOP', '250 2.0.0 OK')
    c.close()
  })

  it('refuses a declared SIZE over the limit with 552 5.3.4', async () => {
    const c = await connectTo()
    await c.cmd('EHLO client.example', '250')
    await c.cmd(
      'MAIL FROM:<a@b.example> SIZE=1000001',
      '552 5.3.4 Declared message size exceeds the limit of 1000000 octets',
    )
    await c.cmd('MAIL FROM:<a@b.example> SIZE=1000000', '250 2.1.0')
    c.close()
  })

  it('takes SMTPUTF8 addresses when MAIL says SMTPUTF8', async () => {
    const c = await connectTo()
    await c.cmd('EHLO client.example', '250')
    await c.cmd('MAIL FROM:<j\u00f6rg@b\u00fccher.example> SMTPUTF8', '250 2.1.0')
    await c.cmd('RCPT TO:<\u00f8le@postern.test>', '250 2.1.5')
    await c.cmd('DATA', '354')
    c.write(Buffer.from('Subject: \u00e9t\u00e9\r\n\r\nok\r\n.\r\n'))
    const reply = await c.expect('250 2.0.0')
    assert.ok(reply)
    const m = t.handler.calls.findLast((x) => x.kind === 'message')
    assert.ok(m?.kind === 'message')
    assert.equal(m.from.address, 'j\u00f6rg@b\u00fccher.example')
    assert.equal(m.to[0]!.address, '\u00f8le@postern.test')
    assert.equal(m.message.toString('utf8'), 'Subject: \u00e9t\u00e9\r\n\r\nok\r\n')
    c.close()
  })

  it('takes <Postmaster> without a domain as postmaster of this host, and source routes', async () => {
    const c = await connectTo()
    await c.cmd('EHLO client.example', '250')
    await c.cmd('MAIL FROM:<@relay.example:alice@sender.example>', '250')
    await c.cmd('RCPT TO:<Postmaster>', '250 2.1.5')
    const r = t.handler.calls.findLast((x) => x.kind === 'rcpt')
    assert.ok(r?.kind === 'rcpt')
    assert.equal(r.to.address, `postmaster@${HOST}`)
    assert.equal(r.from.address, 'alice@sender.example')
    c.close()
  })

  it('refuses command lines over max_line_bytes with 500 5.5.6 and stays in step', async () => {
    const c = await connectTo()
    await c.cmd(`NOOP ${'x'.repeat(993)}`, '250') // 1000 octets with CRLF
    await c.cmd(`NOOP ${'x'.repeat(994)}`, '500 5.5.6 Line too long')
    c.write(`NOOP ${'x'.repeat(200_000)}\r\nNOOP\r\n`)
    await c.expect('500 5.5.6')
    await c.expect('250 2.0.0')
    c.close()
  })

  it('refuses message lines over max_line_bytes after DATA with 552 5.3.4, in step', async () => {
    const c = await connectTo()
    await openTransaction(c)
    await c.cmd('DATA', '354')
    c.write(`Subject: x\r\n\r\n${'y'.repeat(998)}\r\n${'z'.repeat(999)}\r\n.\r\n`)
    await c.expect('552 5.3.4 Message has a line longer than 1000 octets')
    await c.cmd('MAIL FROM:<a@b.example>', '250 2.1.0') // the transaction is over
    c.close()
  })

  it('close an HTTP request at once', async () => {
    const c = await connectTo()
    c.write('POST / HTTP/1.1\r\nHost: x\r\n\r\n')
    await c.expect('500 5.5.2 This is an SMTP server')
    await c.closedByServer()
  })

  it('writes the transcript at trace level, without AUTH secrets or message text', async () => {
    const c = await connectTo()
    await c.cmd('AUTH PLAIN c2VjcmV0LXBhc3N3b3Jk', '502')
    await c.cmd('AUTH PL@IN c2VjcmV0LXBhc3N3b3Jk', '501') // unparsable: redacted all the same
    await openTransaction(c)
    await c.cmd('DATA', '354')
    c.write('Subject: the-secret-body\r\n\r\nclassified\r\n.\r\n')
    await c.expect('250')
    await c.cmd('QUIT', '221')
    await c.closedByServer()
    const all = logLines.join('')
    assert.ok(all.includes('"c":"AUTH PLAIN [redacted]"'))
    assert.ok(all.includes('"c":"AUTH PL [redacted]"') || all.includes('"c":"AUTH [redacted]"'))
    assert.ok(all.includes('"c":"MAIL FROM:<alice@sender.example>"'))
    assert.ok(all.includes('"s":"250 2.1.0 Sender OK"'))
    assert.ok(all.includes('"cid":"smtp_'))
    assert.ok(!all.includes('c2VjcmV0LXBhc3N3b3Jk'))
    assert.ok(!all.includes('the-secret-body'))
    assert.ok(!all.includes('classified'))
  })
})

describe('SMTP message limits', () => {
  let t: TestSmtp
  before(async () => {
    t = await startSmtp({ settings: { max_message_bytes: 2000, max_header_bytes: 1024 } })
  })
  after(() => t.close())

  it('reads an oversized message to its end and answers 552 5.3.4', async () => {
    const c = await RawClient.greeted(t.port)
    await openTransaction(c)
    await c.cmd('DATA', '354')
    const before = t.handler.messages().length
    for (let i = 0; i < 50; i++) c.write(`${'x'.repeat(98)}\r\n`) // 5000 octets
    c.write('.\r\nNOOP\r\n')
    await c.expect('552 5.3.4 Message size exceeds the limit of 2000 octets')
    await c.expect('250 2.0.0 OK')
    assert.equal(t.handler.messages().length, before)
    c.close()
  })

  it('refuses a header section over max_header_bytes with 552 5.3.4', async () => {
    const c = await RawClient.greeted(t.port)
    await openTransaction(c)
    await c.cmd('DATA', '354')
    for (let i = 0; i < 12; i++) c.write(`X-H${i}: ${'h'.repeat(90)}\r\n`)
    c.write('\r\nbody\r\n.\r\n')
    await c.expect('552 5.3.4 Header section exceeds the limit of 1024 octets')
    await c.cmd('NOOP', '250')
    c.close()
  })

  it('limits recipients with 452 4.5.3', async () => {
    const c = await RawClient.greeted(t.port)
    await c.cmd('EHLO client.example', '250')
    await c.cmd('MAIL FROM:<a@b.example>', '250')
    for (let i = 0; i < 5; i++) await c.cmd(`RCPT TO:<r${i}@postern.test>`, '250 2.1.5')
    await c.cmd('RCPT TO:<r5@postern.test>', '452 4.5.3 Too many recipients')
    await c.cmd('DATA', '354')
    c.write('\r\nx\r\n.\r\n')
    await c.expect('250')
    const m = t.handler.calls.findLast((x) => x.kind === 'message')
    assert.equal(m?.kind === 'message' && m.to.length, 5)
    c.close()
  })
})

describe('SMTP session limits', () => {
  it('closes after max_errors bad commands with 421 4.7.0', async () => {
    const t = await startSmtp({ settings: { max_errors: 3 } })
    const c = await RawClient.greeted(t.port)
    await c.cmd('FOO', '500')
    await c.cmd('BAR', '500')
    await c.cmd('BAZ', '500')
    await c.expect('421 4.7.0 mx.postern.test Too many errors')
    await c.closedByServer()
    await t.close()
  })

  it('closes after max_unknown_recipients refusals with 421 4.7.0', async () => {
    const t = await startSmtp({ settings: { max_unknown_recipients: 2, max_errors: 100 } })
    const c = await RawClient.greeted(t.port)
    await c.cmd('EHLO client.example', '250')
    await c.cmd('MAIL FROM:<a@b.example>', '250')
    await c.cmd('RCPT TO:<a@unknown.example>', '550 5.1.1')
    await c.cmd('RCPT TO:<ok@postern.test>', '250')
    await c.cmd('RCPT TO:<b@unknown.example>', '550 5.1.1')
    await c.expect('421 4.7.0 mx.postern.test Too many unknown recipients')
    await c.closedByServer()
    await t.close()
  })

  it('answers 421 4.7.0 to MAIL after max_transactions', async () => {
    const t = await startSmtp({ settings: { max_transactions: 2 } })
    const c = await RawClient.greeted(t.port)
    await c.cmd('EHLO client.example', '250')
    await c.cmd('MAIL FROM:<a@b.example>', '250')
    await c.cmd('RSET', '250')
    await c.cmd('MAIL FROM:<a@b.example>', '250')
    await c.cmd('RCPT TO:<ok@postern.test>', '250')
    await c.cmd('DATA', '354')
    c.write('\r\n.\r\n')
    await c.expect('250')
    await c.cmd('MAIL FROM:<a@b.example>', '421 4.7.0 mx.postern.test Too many messages in one connection')
    await c.closedByServer()
    await t.close()
  })
})

describe('SMTP handler answers', () => {
  async function withHandler(handler: FakeHandler, run: (c: RawClient, t: TestSmtp) => Promise<void>) {
    const t = await startSmtp({ handler })
    try {
      await run(await RawClient.connect(t.port), t)
    } finally {
      await t.close()
    }
  }
  const reply = (code: number, enhanced: string, message: string): SmtpReply => ({ code, enhanced, message })

  it('a refusal at connect is sent instead of the greeting, then the connection closes', async () => {
    const h = fakeHandler({ connect: async () => reply(554, '5.7.1', 'Go away') })
    await withHandler(h, async (c) => {
      assert.equal(await c.reply(), '554 5.7.1 Go away')
      await c.closedByServer()
    })
  })

  it('a handler that throws at connect gets 421 4.3.0', async () => {
    const h = fakeHandler({
      connect: async () => {
        throw new Error('db down')
      },
    })
    await withHandler(h, async (c) => {
      await c.expect('421 4.3.0')
      await c.closedByServer()
    })
  })

  it('refused senders start no transaction; handler replies pass through with defaults', async () => {
    let n = 0
    const h = fakeHandler({
      mail: async () => (n++ === 0 ? reply(550, '5.7.1', 'Sender blocked') : null),
      rcpt: async (to) =>
        to.address.startsWith('later') ? { code: 450, message: 'Greylisted\nTry later' } : null,
      message: async () => ({ code: 554, enhanced: '5.6.0', message: 'Spam' }),
    })
    await withHandler(h, async (c) => {
      await c.expect('220')
      await c.cmd('EHLO client.example', '250')
      await c.cmd('MAIL FROM:<a@b.example>', '550 5.7.1 Sender blocked')
      await c.cmd('RCPT TO:<x@postern.test>', '503 5.5.1 Send MAIL first')
      await c.cmd('MAIL FROM:<a@b.example>', '250 2.1.0')
      assert.equal(
        await c.cmd('RCPT TO:<later@postern.test>', '450'),
        '450-4.0.0 Greylisted\r\n450 4.0.0 Try later',
      )
      await c.cmd('RCPT TO:<now@postern.test>', '250')
      await c.cmd('DATA', '354')
      c.write('\r\n.\r\n')
      await c.expect('554 5.6.0 Spam')
    })
  })

  it('a handler that throws, or answers nonsense, gets 451 4.3.0', async () => {
    const h = fakeHandler({
      rcpt: async () => {
        throw new Error('boom')
      },
      mail: async () => ({ code: 999, message: 'what' }),
    })
    await withHandler(h, async (c) => {
      await c.expect('220')
      await c.cmd('EHLO client.example', '250')
      await c.cmd('MAIL FROM:<a@b.example>', '451 4.3.0 Local error in processing')
    })
    const h2 = fakeHandler({
      rcpt: async () => {
        throw new Error('boom')
      },
    })
    await withHandler(h2, async (c) => {
      await c.expect('220')
      await c.cmd('EHLO client.example', '250')
      await c.cmd('MAIL FROM:<a@b.example>', '250')
      await c.cmd('RCPT TO:<a@postern.test>', '451 4.3.0')
    })
  })
})
