// The outbound SMTP client (src/smtp/client/) against real servers on 127.0.0.1: Postern's own
// SMTP server (plain and with STARTTLS) for delivery, refusals, TLS, extensions and broken
// connections, and a small scripted server for what ours never does (AUTH, implicit TLS, no
// EHLO, no SMTPUTF8, a STARTTLS that fails). Connections go through a connect guard that allows
// loopback only.

import assert from 'node:assert/strict'
import net, { createServer as createNetServer } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createConnectGuard } from '../../src/net/connect-guard.ts'
import {
  type DeliveryTarget,
  type OutgoingTransaction,
  type SessionOptions,
  type TraceStep,
  TransportError,
} from '../../src/services/outbound/transport.ts'
import { dataText, planEnvelope, xtext } from '../../src/smtp/client/envelope.ts'
import { ReplyParser } from '../../src/smtp/client/reply.ts'
import { createSmtpTransport, type SmtpTransportDeps } from '../../src/smtp/client/transport.ts'
import { generateSelfSigned } from '../../src/tls/self-signed.ts'
import { captureLogger, fakeHandler, HOST, sleep, startSmtp, type TestSmtp } from './helpers.ts'
import { basic, scripted } from './scripted-server.ts'

const TIMEOUTS = { connectMs: 2000, greetingMs: 2000, commandMs: 2000, dataMs: 5000 }

function transport(opts: { logLines?: string[]; ca?: string; timeouts?: Partial<typeof TIMEOUTS> } = {}) {
  const deps: SmtpTransportDeps = {
    connectGuard: createConnectGuard({ allow: ['127.0.0.1'] }),
    logger: captureLogger(opts.logLines ?? []),
    timeouts: { ...TIMEOUTS, ...opts.timeouts },
  }
  if (opts.ca) deps.ca = opts.ca
  return createSmtpTransport(deps)
}

const target = (port: number, host = HOST, ip = '127.0.0.1'): DeliveryTarget => ({
  domain: 'postern.test',
  host,
  ip,
  port,
})

function options(steps: TraceStep[], extra: Partial<SessionOptions> = {}): SessionOptions {
  return {
    helo: 'client.example',
    tls: 'none',
    verifyCertificate: false,
    onTrace: (s) => steps.push(s),
    ...extra,
  }
}

const message = (body = 'Hello\r\n', head = 'Subject: test\r\n'): Buffer =>
  Buffer.from(`From: alice@sender.example\r\nTo: bob@postern.test\r\n${head}\r\n${body}`, 'utf8')

const tx = (to: string[], msg = message(), from = 'alice@sender.example'): OutgoingTransaction => ({
  mailFrom: from,
  recipients: to.map((address) => ({ address })),
  message: msg,
})

const replies = (steps: TraceStep[]) => steps.filter((s) => s.kind === 'reply').map((s) => s.detail)
const commands = (steps: TraceStep[]) => replies(steps).map((d) => d.command)

async function rejects(p: Promise<unknown>, want: Partial<TransportError>): Promise<TransportError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof TransportError, `expected a TransportError, got ${String(err)}`)
    for (const [k, v] of Object.entries(want)) {
      assert.equal((err as unknown as Record<string, unknown>)[k], v, `${k} of ${err.message}`)
    }
    return err
  }
  assert.fail('expected a rejection')
}

// ---- tests -----------------------------------------------------------------------------------

describe('outbound SMTP client', () => {
  let pems: { key: string; cert: string }
  let t: TestSmtp
  let tlsT: TestSmtp
  before(async () => {
    pems = await generateSelfSigned(HOST, Date.now())
    t = await startSmtp()
    tlsT = await startSmtp({ tls: () => ({ key: pems.key, cert: pems.cert }) })
  })
  after(async () => {
    await t.close()
    await tlsT.close()
  })

  it('delivers to two recipients, one refused at RCPT, with every reply traced', async () => {
    const steps: TraceStep[] = []
    const before = t.handler.calls.length
    const session = await transport().open(target(t.port), options(steps))
    assert.equal(session.tls, null)
    assert.equal(session.usable, true)
    const result = await session.send(tx(['nobody@unknown.example', 'bob@postern.test']))
    assert.deepEqual(result.recipients, [
      { address: 'nobody@unknown.example', code: 550, enhanced: '5.1.1', message: 'No such user here' },
      { address: 'bob@postern.test', code: 250, enhanced: '2.0.0', message: 'Ok: queued as TEST' },
    ])
    await session.close()
    assert.equal(session.usable, false)

    const m = t.handler.calls.slice(before).find((c) => c.kind === 'message')
    assert.ok(m?.kind === 'message')
    assert.deepEqual(
      m.to.map((r) => r.address),
      ['bob@postern.test'],
    )
    assert.equal(m.s.helo, 'client.example')

    assert.deepEqual(steps[0]?.detail, { ip: '127.0.0.1', port: t.port, host: HOST })
    assert.equal(steps[0]?.kind, 'connect')
    assert.ok(steps.every((s) => typeof s.at === 'number' && s.at > 0))
    assert.deepEqual(commands(steps), [
      'greeting',
      'EHLO',
      'MAIL',
      'RCPT',
      'RCPT',
      'DATA',
      'DATA-END',
      'QUIT',
    ])
    const rcpts = replies(steps).filter((d) => d.command === 'RCPT')
    assert.deepEqual(rcpts[0], {
      command: 'RCPT',
      address: 'nobody@unknown.example',
      code: 550,
      enhanced: '5.1.1',
      message: 'No such user here',
    })
    assert.equal(rcpts[1]?.address, 'bob@postern.test')
    assert.equal(replies(steps)[0]?.code, 220)
  })

  it('sends the message bytes intact: dot-stuffed lines, 8-bit text, a final line without CRLF', async () => {
    const body = '.starts with a dot\r\n..two dots\r\n.\r\nmiddle\r\n. space\r\nGr\u00fc\u00dfe \u2603\r\n'
    const msg = message(body)
    const session = await transport().open(target(t.port), options([]))
    await session.send(tx(['bob@postern.test'], msg))
    const unterminated = Buffer.from('Subject: x\r\n\r\nno line end', 'utf8')
    await session.send(tx(['bob@postern.test'], unterminated))
    await session.close()
    const [a, b] = t.handler.messages().slice(-2)
    assert.ok(a && b)
    assert.ok(a.equals(msg), `got ${JSON.stringify(a.toString('utf8'))}`)
    assert.equal(b.toString('utf8'), 'Subject: x\r\n\r\nno line end\r\n')
  })

  it('runs two transactions over one session, with RSET between them', async () => {
    const steps: TraceStep[] = []
    const before = t.handler.calls.length
    const session = await transport().open(target(t.port), options(steps))
    const first = await session.send(tx(['bob@postern.test']))
    assert.equal(session.usable, true)
    const second = await session.send(tx(['carol@postern.test', 'dave@postern.test']))
    await session.close()
    assert.equal(first.recipients[0]?.code, 250)
    assert.deepEqual(
      second.recipients.map((r) => [r.address, r.code]),
      [
        ['carol@postern.test', 250],
        ['dave@postern.test', 250],
      ],
    )
    const msgs = t.handler.calls.slice(before).filter((c) => c.kind === 'message')
    assert.equal(msgs.length, 2)
    assert.equal(msgs[0]?.s.id, msgs[1]?.s.id, 'one SMTP session')
    const cmds = commands(steps)
    assert.deepEqual(cmds.slice(cmds.indexOf('DATA-END') + 1, cmds.indexOf('DATA-END') + 3), ['RSET', 'MAIL'])
  })

  it('negotiates STARTTLS and reports protocol and cipher', async () => {
    const steps: TraceStep[] = []
    const before = tlsT.handler.calls.length
    const session = await transport().open(target(tlsT.port), options(steps, { tls: 'starttls' }))
    assert.ok(session.tls)
    assert.match(session.tls.protocol, /^TLSv1\.[23]$/)
    const tlsStep = steps.find((s) => s.kind === 'tls')
    assert.ok(tlsStep)
    assert.equal(tlsStep.detail.protocol, session.tls.protocol)
    assert.equal(typeof tlsStep.detail.cipher, 'string')
    assert.equal(tlsStep.detail.cipher, session.tls.cipher)
    assert.ok(session.tls.cipher.length > 0)
    assert.deepEqual(commands(steps), ['greeting', 'EHLO', 'STARTTLS', 'EHLO'])
    const result = await session.send(tx(['bob@postern.test']))
    assert.equal(result.recipients[0]?.code, 250)
    await session.close()
    const m = tlsT.handler.calls.slice(before).find((c) => c.kind === 'message')
    assert.ok(m?.kind === 'message' && m.s.tls?.protocol === session.tls.protocol)
  })

  it("verifies the certificate when asked: 'require' with the right CA works, without it fails", async () => {
    const good = await transport({ ca: pems.cert }).open(
      target(tlsT.port),
      options([], { tls: 'require', verifyCertificate: true }),
    )
    assert.ok(good.tls)
    await good.close()
    const steps: TraceStep[] = []
    await rejects(
      transport().open(target(tlsT.port), options(steps, { tls: 'require', verifyCertificate: true })),
      { temporary: true, phase: 'tls' },
    )
    assert.ok(steps.some((s) => s.kind === 'error' && s.detail.phase === 'tls'))
    // the CA is right but the name is not the certificate's
    await rejects(
      transport({ ca: pems.cert }).open(
        target(tlsT.port, 'other.example'),
        options([], { tls: 'require', verifyCertificate: true }),
      ),
      { temporary: true, phase: 'tls' },
    )
  })

  it("refuses to go on without TLS under 'require' when STARTTLS is not offered", async () => {
    const steps: TraceStep[] = []
    const before = t.handler.calls.length
    await rejects(transport().open(target(t.port), options(steps, { tls: 'require' })), {
      temporary: true,
      phase: 'tls',
    })
    assert.ok(!commands(steps).includes('STARTTLS'))
    assert.ok(steps.some((s) => s.kind === 'error' && s.detail.phase === 'tls'))
    await sleep(20)
    assert.ok(!t.handler.calls.slice(before).some((c) => c.kind === 'mail'))
  })

  it("goes on in plain text when STARTTLS is not offered under 'starttls'", async () => {
    const session = await transport().open(target(t.port), options([], { tls: 'starttls' }))
    assert.equal(session.tls, null)
    assert.equal((await session.send(tx(['bob@postern.test']))).recipients[0]?.code, 250)
    await session.close()
  })

  it('retries in plain text on a new connection when the opportunistic TLS handshake fails', async () => {
    const s = await scripted(
      basic(['PIPELINING', 'STARTTLS'], (line) =>
        line === 'STARTTLS' ? { reply: '220 2.0.0 Ready', after: 'drop-next' } : undefined,
      ),
    )
    try {
      const steps: TraceStep[] = []
      const session = await transport().open(target(s.port), options(steps, { tls: 'starttls' }))
      assert.equal(session.tls, null)
      assert.equal((await session.send(tx(['bob@postern.test']))).recipients[0]?.code, 250)
      await session.close()
      assert.equal(s.sessions.length, 2)
      assert.deepEqual(s.sessions[0], ['EHLO client.example', 'STARTTLS'])
      assert.ok(!s.sessions[1]?.includes('STARTTLS'))
      assert.ok(
        steps.some((x) => x.kind === 'error' && String(x.detail.message).includes('retrying without TLS')),
      )
      assert.equal(steps.filter((x) => x.kind === 'connect').length, 2)
    } finally {
      await s.close()
    }
  })

  it('gives every recipient the reply to MAIL when MAIL is refused (4xx)', async () => {
    const s = await startSmtp({
      handler: fakeHandler({
        mail: async () => ({ code: 451, enhanced: '4.3.0', message: 'Try again later' }),
      }),
    })
    try {
      const steps: TraceStep[] = []
      const session = await transport().open(target(s.port), options(steps))
      const result = await session.send(tx(['bob@postern.test', 'carol@postern.test']))
      assert.deepEqual(
        result.recipients.map((r) => [r.address, r.code, r.enhanced, r.message]),
        [
          ['bob@postern.test', 451, '4.3.0', 'Try again later'],
          ['carol@postern.test', 451, '4.3.0', 'Try again later'],
        ],
      )
      assert.equal(session.usable, true)
      assert.ok(!commands(steps).includes('DATA'))
      await session.close()
      assert.ok(!s.handler.calls.some((c) => c.kind === 'message'))
    } finally {
      await s.close()
    }
  })

  it('sends no DATA when every recipient is refused, and RSETs instead', async () => {
    const steps: TraceStep[] = []
    const session = await transport().open(target(t.port), options(steps))
    const result = await session.send(tx(['a@unknown.example', 'b@unknown.example']))
    assert.deepEqual(
      result.recipients.map((r) => r.code),
      [550, 550],
    )
    assert.deepEqual(commands(steps).slice(2), ['MAIL', 'RCPT', 'RCPT', 'RSET'])
    // the session is still good for the next transaction, which needs no second RSET
    assert.equal((await session.send(tx(['bob@postern.test']))).recipients[0]?.code, 250)
    assert.deepEqual(commands(steps).slice(6), ['MAIL', 'RCPT', 'DATA', 'DATA-END'])
    await session.close()
  })

  it('fails a 554 greeting permanently', async () => {
    const s = await startSmtp({
      handler: fakeHandler({ connect: async () => ({ code: 554, enhanced: '5.7.1', message: 'Go away' }) }),
    })
    try {
      const steps: TraceStep[] = []
      const err = await rejects(transport().open(target(s.port), options(steps)), {
        temporary: false,
        phase: 'greeting',
        code: 554,
        enhanced: '5.7.1',
      })
      assert.match(err.message, /Go away/)
      assert.deepEqual(steps.at(-1)?.detail, { message: err.message, phase: 'greeting' })
    } finally {
      await s.close()
    }
  })

  it('fails a refused connection (closed port) temporarily', async () => {
    const srv = createNetServer()
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
    const port = (srv.address() as net.AddressInfo).port
    await new Promise<void>((resolve) => srv.close(() => resolve()))
    const steps: TraceStep[] = []
    const err = await rejects(transport().open(target(port), options(steps)), {
      temporary: true,
      phase: 'connect',
    })
    assert.match(err.message, /ECONNREFUSED/)
    assert.equal(steps.length, 1)
    assert.equal(steps[0]?.kind, 'error')
  })

  it('fails permanently, without a connection attempt, when the guard refuses the address', async () => {
    const calls: unknown[] = []
    const original = net.Socket.prototype.connect
    net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
      calls.push(args)
      return Reflect.apply(original, this, args) as net.Socket
    } as typeof original
    const steps: TraceStep[] = []
    try {
      const err = await rejects(
        transport().open(target(25, 'mx.elsewhere.example', '10.0.0.1'), options(steps)),
        {
          temporary: false,
          phase: 'connect',
        },
      )
      assert.match(err.message, /net\.connect_allow/)
    } finally {
      net.Socket.prototype.connect = original
    }
    assert.equal(calls.length, 0)
    assert.ok(!steps.some((s) => s.kind === 'connect'))
  })

  it('rejects with a temporary transaction error when the server drops the connection during DATA', async () => {
    let s: TestSmtp | null = null
    s = await startSmtp({
      handler: fakeHandler({
        message: () => {
          void s?.close() // destroys the busy session at once: grace is not long enough
          return new Promise(() => {})
        },
      }),
    })
    const close = s.server.close.bind(s.server)
    s.close = () => close(0)
    const steps: TraceStep[] = []
    const session = await transport().open(target(s.port), options(steps))
    await rejects(session.send(tx(['bob@postern.test'])), { temporary: true, phase: 'transaction' })
    assert.equal(session.usable, false)
    assert.equal(steps.at(-1)?.kind, 'error')
    await rejects(session.send(tx(['bob@postern.test'])), { temporary: true, phase: 'transaction' })
    await session.close()
  })

  it('rejects the same way when the server hangs up while the message is still being written', async () => {
    const s = await scripted(
      basic(['PIPELINING', 'SIZE 100000000'], (line) =>
        line === 'DATA' ? { reply: '354 Go ahead', after: 'drop-next' } : undefined,
      ),
    )
    try {
      const session = await transport().open(target(s.port), options([]))
      const big = message(`${'x'.repeat(998)}\r\n`.repeat(8000))
      await rejects(session.send(tx(['bob@postern.test'], big)), { temporary: true, phase: 'transaction' })
      assert.equal(session.usable, false)
      await session.close()
    } finally {
      await s.close()
    }
  })

  it('times out waiting for the reply to the message', async () => {
    const s = await startSmtp({ handler: fakeHandler({ message: () => new Promise(() => {}) }) })
    try {
      const session = await transport({ timeouts: { dataMs: 300 } }).open(target(s.port), options([]))
      const err = await rejects(session.send(tx(['bob@postern.test'])), { temporary: true, phase: 'timeout' })
      assert.match(err.message, /DATA-END within 300 ms/)
      assert.equal(session.usable, false)
    } finally {
      await s.server.close(0)
    }
  })

  it('asks for BODY=8BITMIME and SMTPUTF8 only when the message needs them, with SIZE and DSN', async () => {
    const before = t.handler.calls.length
    const session = await transport().open(target(t.port), options([]))
    const ascii = message()
    const body8 = message('Gr\u00fc\u00dfe\r\n')
    const head8 = message('Hi\r\n', 'Subject: Gr\u00fc\u00dfe\r\n')
    await session.send(tx(['bob@postern.test'], ascii))
    await session.send(tx(['bob@postern.test'], body8))
    await session.send(tx(['bob@postern.test'], head8))
    await session.send(tx(['bob@postern.test'], ascii, 'j\u00f6rg@sender.example'))
    await session.send({
      mailFrom: 'alice@sender.example',
      recipients: [
        { address: 'bob@postern.test', notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;bob+x=y@postern.test' },
        { address: 'carol@postern.test', notify: ['NEVER'] },
      ],
      message: ascii,
      envid: 'env 1+2',
      ret: 'HDRS',
    })
    await session.close()
    const mails = t.handler.calls.slice(before).flatMap((c) => (c.kind === 'mail' ? [c.from] : []))
    assert.deepEqual(
      mails.map((m) => [m.body, m.smtputf8, m.size]),
      [
        [null, false, ascii.length],
        ['8BITMIME', false, body8.length],
        ['8BITMIME', true, head8.length],
        [null, true, ascii.length],
        [null, false, ascii.length],
      ],
    )
    assert.equal(mails[3]?.address, 'j\u00f6rg@sender.example')
    assert.deepEqual([mails[4]?.ret, mails[4]?.envid], ['HDRS', 'env 1+2'])
    const rcpts = t.handler.calls.slice(before).flatMap((c) => (c.kind === 'rcpt' ? [c.to] : []))
    assert.deepEqual(rcpts.slice(-2), [
      { address: 'bob@postern.test', notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;bob+x=y@postern.test' },
      { address: 'carol@postern.test', notify: ['NEVER'], orcpt: null },
    ])
  })

  it('never sends a UTF-8 address to a server without SMTPUTF8: that recipient is refused with 553 5.6.7', async () => {
    const s = await scripted(basic(['PIPELINING', '8BITMIME', 'SIZE 1000000']))
    try {
      const session = await transport().open(target(s.port), options([]))
      const result = await session.send(tx(['j\u00f6rg@postern.test', 'bob@postern.test']))
      assert.deepEqual(
        result.recipients.map((r) => [r.address, r.code, r.enhanced]),
        [
          ['j\u00f6rg@postern.test', 553, '5.6.7'],
          ['bob@postern.test', 250, '2.0.0'],
        ],
      )
      await session.close()
      const lines = s.sessions[0] ?? []
      assert.ok(lines.includes('RCPT TO:<bob@postern.test>'))
      assert.ok(!lines.some((l) => l.includes('j\u00f6rg')))
      assert.ok(lines.includes(`MAIL FROM:<alice@sender.example> SIZE=${message().length}`))
    } finally {
      await s.close()
    }
  })

  it('falls back to HELO when EHLO is refused, and sends no extension parameters', async () => {
    const s = await scripted(
      basic([], (line) => (line.startsWith('EHLO') ? '502 5.5.2 No ESMTP here' : undefined)),
    )
    try {
      const steps: TraceStep[] = []
      const session = await transport().open(target(s.port), options(steps))
      const msg = message('Gr\u00fc\u00dfe\r\n')
      assert.equal((await session.send(tx(['bob@postern.test'], msg))).recipients[0]?.code, 250)
      await session.close()
      assert.deepEqual(s.sessions[0]?.slice(0, 3), [
        'EHLO client.example',
        'HELO client.example',
        'MAIL FROM:<alice@sender.example>',
      ])
      assert.ok(s.messages[0]?.equals(msg))
      assert.deepEqual(commands(steps).slice(0, 3), ['greeting', 'EHLO', 'HELO'])
    } finally {
      await s.close()
    }
  })

  describe('AUTH (Postern offers no AUTH on its MX port, so a scripted server stands in)', () => {
    const USER = 'smart-user'
    const PASS = 's3cret-Pa55word'
    const b64 = (s: string) => Buffer.from(s).toString('base64')
    const authAnswers = (mechanisms: string) => {
      let loginStep = 0
      return basic([`AUTH ${mechanisms}`, 'PIPELINING'], (line) => {
        if (line.startsWith('AUTH PLAIN ')) {
          return line === `AUTH PLAIN ${b64(`\0${USER}\0${PASS}`)}`
            ? '235 2.7.0 Authentication successful'
            : '535 5.7.8 Authentication credentials invalid'
        }
        if (line === 'AUTH LOGIN') {
          loginStep = 1
          return '334 VXNlcm5hbWU6'
        }
        if (loginStep === 1) {
          loginStep = line === b64(USER) ? 2 : 0
          return '334 UGFzc3dvcmQ6'
        }
        if (loginStep === 2) {
          loginStep = 0
          return line === b64(PASS) ? '235 2.7.0 Ok' : '535 5.7.8 No'
        }
        return undefined
      })
    }

    const leaks = (text: string) =>
      [PASS, b64(PASS), b64(`\0${USER}\0${PASS}`), b64(USER)].filter((secret) => text.includes(secret))

    it('authenticates with PLAIN over implicit TLS, and keeps credentials out of traces and logs', async () => {
      const s = await scripted(() => authAnswers('PLAIN LOGIN')(), pems)
      try {
        const steps: TraceStep[] = []
        const logLines: string[] = []
        const session = await transport({ logLines }).open(
          target(s.port),
          options(steps, { tls: 'implicit', auth: { user: USER, pass: PASS } }),
        )
        assert.ok(session.tls)
        assert.equal(steps.filter((x) => x.kind === 'tls').length, 1)
        assert.equal((await session.send(tx(['bob@postern.test']))).recipients[0]?.code, 250)
        await session.close()
        assert.ok(s.sessions[0]?.includes(`AUTH PLAIN ${b64(`\0${USER}\0${PASS}`)}`))
        assert.deepEqual(commands(steps).slice(0, 3), ['greeting', 'EHLO', 'AUTH'])
        assert.ok(
          logLines.some((l) => l.includes('AUTH PLAIN [redacted]')),
          'the transcript was logged',
        )
        assert.deepEqual(leaks(JSON.stringify(steps)), [])
        assert.deepEqual(leaks(logLines.join('\n')), [])
      } finally {
        await s.close()
      }
    })

    it('authenticates with LOGIN when PLAIN is not offered', async () => {
      const s = await scripted(() => authAnswers('LOGIN')(), pems)
      try {
        const steps: TraceStep[] = []
        const logLines: string[] = []
        const session = await transport({ logLines }).open(
          target(s.port),
          options(steps, { tls: 'implicit', auth: { user: USER, pass: PASS } }),
        )
        await session.close()
        assert.deepEqual(s.sessions[0]?.slice(1, 4), ['AUTH LOGIN', b64(USER), b64(PASS)])
        assert.deepEqual(leaks(JSON.stringify(steps)), [])
        assert.deepEqual(leaks(logLines.join('\n')), [])
      } finally {
        await s.close()
      }
    })

    it('fails temporarily (phase auth) on 535', async () => {
      const s = await scripted(() => authAnswers('PLAIN')(), pems)
      try {
        await rejects(
          transport().open(
            target(s.port),
            options([], { tls: 'implicit', auth: { user: USER, pass: 'wrong' } }),
          ),
          { temporary: true, phase: 'auth', code: 535, enhanced: '5.7.8' },
        )
      } finally {
        await s.close()
      }
    })

    it('does not send credentials over a connection without TLS unless the caller chose none', async () => {
      const s = await scripted(() => authAnswers('PLAIN')())
      try {
        await rejects(
          transport().open(
            target(s.port),
            options([], { tls: 'starttls', auth: { user: USER, pass: PASS } }),
          ),
          { temporary: true, phase: 'auth' },
        )
        assert.ok(!s.sessions[0]?.some((l) => l.startsWith('AUTH')))
        const session = await transport().open(
          target(s.port),
          options([], { tls: 'none', auth: { user: USER, pass: PASS } }),
        )
        await session.close()
        assert.ok(s.sessions[1]?.some((l) => l.startsWith('AUTH PLAIN')))
      } finally {
        await s.close()
      }
    })
  })
})

describe('outbound SMTP client pieces', () => {
  it('dot-stuffs, ends with CRLF . CRLF, and turns bare CR and LF into CRLF', () => {
    const text = (s: string) => Buffer.concat(dataText(Buffer.from(s, 'latin1')).data).toString('latin1')
    assert.equal(text('a\r\n.b\r\n'), 'a\r\n..b\r\n.\r\n')
    assert.equal(text('.\r\n'), '..\r\n.\r\n')
    assert.equal(text('a\nb\rc'), 'a\r\nb\r\nc\r\n.\r\n')
    assert.equal(text('x\n.\n'), 'x\r\n..\r\n.\r\n')
    assert.equal(text(''), '.\r\n')
    assert.equal(dataText(Buffer.from('a\nb')).size, 'a\r\nb\r\n'.length)
    assert.equal(dataText(Buffer.from('\u00e9')).eightBit, true)
  })

  it('writes xtext and refuses addresses that would break a command line', () => {
    assert.equal(xtext('a+b=c d\u00e9'), 'a+2Bb+3Dc+20d+C3+A9')
    const plan = planEnvelope(
      {
        mailFrom: 'a@b.example',
        recipients: [{ address: 'x@y.example>\r\nRSET' }, { address: 'ok@y.example' }],
        message: Buffer.from('x\r\n'),
      },
      new Map(),
    )
    assert.equal(plan.rcpts[0]?.refused?.code, 501)
    assert.equal(plan.rcpts[1]?.line, 'RCPT TO:<ok@y.example>')
  })

  it('reads multi-line replies split anywhere, with enhanced codes of the right class only', () => {
    const p = new ReplyParser()
    assert.deepEqual(p.feed(Buffer.from('250-mx.example\r\n250-PIPE')), [])
    const [ehlo, rcpt] = p.feed(Buffer.from('LINING\r\n250 SIZE 10\r\n550 5.1.1 No\r\n'))
    assert.deepEqual(ehlo?.lines, ['mx.example', 'PIPELINING', 'SIZE 10'])
    assert.deepEqual([rcpt?.code, rcpt?.enhanced, rcpt?.message], [550, '5.1.1', 'No'])
    const [odd] = p.feed(Buffer.from('451 5.0.0 class mismatch\n'))
    assert.deepEqual([odd?.enhanced, odd?.message], [null, '5.0.0 class mismatch'])
    assert.throws(() => p.feed(Buffer.from('hello\r\n')))
  })
})
