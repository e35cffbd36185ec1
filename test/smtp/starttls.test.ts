// STARTTLS over a raw socket: the upgrade, the state reset after it (RFC 3207 4.2), the
// command injection defence (CVE-2011-0411: commands pipelined after STARTTLS in plaintext are
// discarded), the refusals, and a failed handshake.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { generateSelfSigned } from '../../src/tls/self-signed.ts'
import { HOST, RawClient, sleep, startSmtp, type TestSmtp } from './helpers.ts'

describe('STARTTLS', () => {
  let t: TestSmtp
  before(async () => {
    const pems = await generateSelfSigned(HOST, Date.now())
    t = await startSmtp({ tls: () => ({ key: pems.key, cert: pems.cert }) })
  })
  after(() => t.close())

  it('upgrades, forgets the EHLO, and stops offering STARTTLS', async () => {
    const c = await RawClient.greeted(t.port)
    await c.cmd('EHLO client.example', '250')
    await c.cmd('STARTTLS', '220 2.0.0 Ready to start TLS')
    await c.startTls()
    await c.cmd('MAIL FROM:<a@b.example>', '503 5.5.1 Send EHLO or HELO first')
    const ehlo = await c.cmd('EHLO client.example', '250')
    assert.doesNotMatch(ehlo, /STARTTLS/)
    await c.cmd('STARTTLS', '503 5.5.1 TLS already active')
    await c.cmd('MAIL FROM:<a@b.example>', '250')
    await c.cmd('RCPT TO:<bob@postern.test>', '250')
    await c.cmd('DATA', '354')
    c.write('Subject: over TLS\r\n\r\nx\r\n.\r\n')
    await c.expect('250 2.0.0')
    await c.cmd('QUIT', '221')
    await c.closedByServer()
    const m = t.handler.calls.findLast((x) => x.kind === 'message')
    assert.ok(m?.kind === 'message' && m.s.tls !== null)
    for (let i = 0; i < 100 && t.server.connections > 0; i++) await sleep(10)
    assert.equal(t.server.connections, 0, 'a TLS session frees its slot when it closes')
  })

  it('discards commands pipelined after STARTTLS before the handshake (CVE-2011-0411)', async () => {
    const c = await RawClient.greeted(t.port)
    await c.cmd('EHLO client.example', '250')
    const mailsBefore = t.handler.calls.filter((x) => x.kind === 'mail').length
    // The injected plaintext arrives in the same packet as STARTTLS.
    c.write('STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\nRSET\r\n')
    await c.expect('220 2.0.0')
    await sleep(20)
    assert.equal(c.pending, '', 'no reply to the injected commands before the handshake')
    await c.startTls()
    // The first reply inside TLS must answer our NOOP, not an injected command.
    await c.cmd('NOOP', '250 2.0.0 OK')
    await c.cmd('EHLO client.example', '250')
    await c.cmd('MAIL FROM:<a@b.example>', '250 2.1.0') // no transaction was opened by the injection
    assert.equal(t.handler.calls.filter((x) => x.kind === 'mail').length, mailsBefore + 1)
    assert.ok(!t.handler.calls.some((x) => x.kind === 'mail' && x.from.address === 'injected@evil.example'))
    c.close()
  })

  it('discards injected commands that arrive in a later packet, before the handshake', async () => {
    const c = await RawClient.greeted(t.port)
    await c.cmd('EHLO client.example', '250')
    await c.cmd('STARTTLS', '220 2.0.0')
    c.write('MAIL FROM:<injected@evil.example>\r\n') // plaintext where the ClientHello belongs
    await c.closedByServer()
    assert.ok(!t.handler.calls.some((x) => x.kind === 'mail' && x.from.address === 'injected@evil.example'))
  })

  it('refuses STARTTLS with arguments or inside a transaction', async () => {
    const c = await RawClient.greeted(t.port)
    await c.cmd('EHLO client.example', '250')
    await c.cmd('STARTTLS now', '501 5.5.4')
    await c.cmd('MAIL FROM:<a@b.example>', '250')
    await c.cmd('STARTTLS', '503 5.5.1 Finish or reset the mail transaction first')
    await c.cmd('RSET', '250')
    await c.cmd('STARTTLS', '220')
    await c.startTls()
    await c.cmd('NOOP', '250')
    c.close()
  })

  it('close() answers TLS sessions inside TLS and destroys unfinished ones', async () => {
    const pems = await generateSelfSigned(HOST, Date.now())
    const s = await startSmtp({ tls: () => ({ key: pems.key, cert: pems.cert }) })
    const idle = await RawClient.greeted(s.port)
    await idle.cmd('STARTTLS', '220')
    await idle.startTls()
    const busy = await RawClient.greeted(s.port)
    await busy.cmd('STARTTLS', '220')
    await busy.startTls()
    await busy.cmd('EHLO client.example', '250')
    await busy.cmd('MAIL FROM:<a@b.example>', '250')
    await busy.cmd('RCPT TO:<c@postern.test>', '250')
    await busy.cmd('DATA', '354')
    busy.write('Subject: never ends\r\n')
    await sleep(20)
    const closing = s.server.close(200)
    await idle.expect('421 4.3.2')
    await closing
    await busy.closedByServer()
    assert.equal(s.server.connections, 0)
  })

  it('survives a client that never completes the handshake', async () => {
    const c = await RawClient.greeted(t.port)
    await c.cmd('STARTTLS', '220')
    c.write('this is not TLS\r\n')
    await c.closedByServer()
    const d = await RawClient.greeted(t.port)
    await d.cmd('NOOP', '250')
    d.close()
  })
})
