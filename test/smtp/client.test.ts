// A real SMTP client (nodemailer) against the server on 127.0.0.1: plain, with STARTTLS and a
// self-signed certificate, with DSN parameters, UTF-8 addresses, dot-stuffing and refusals.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import nodemailer from 'nodemailer'
import { generateSelfSigned } from '../../src/tls/self-signed.ts'
import { HOST, RawClient, startSmtp, type TestSmtp } from './helpers.ts'

describe('nodemailer as the client', () => {
  let t: TestSmtp
  let tlsT: TestSmtp
  before(async () => {
    const pems = await generateSelfSigned(HOST, Date.now())
    t = await startSmtp()
    tlsT = await startSmtp({ tls: () => ({ key: pems.key, cert: pems.cert }) })
  })
  after(async () => {
    await t.close()
    await tlsT.close()
  })

  const plain = () =>
    nodemailer.createTransport({
      host: '127.0.0.1',
      port: t.port,
      secure: false,
      ignoreTLS: true,
      name: 'client.example',
    })

  it('sends a message without TLS', async () => {
    const text = 'Line one\n.starts with a dot\n..two dots\n.\nend'
    const info = await plain().sendMail({
      from: 'alice@sender.example',
      to: ['bob@postern.test', 'carol@postern.test'],
      subject: 'Hello',
      text,
    })
    assert.deepEqual(info.accepted, ['bob@postern.test', 'carol@postern.test'])
    assert.match(info.response, /^250 2\.0\.0 Ok: queued as TEST/)
    const m = t.handler.calls.findLast((c) => c.kind === 'message')
    assert.ok(m?.kind === 'message')
    assert.equal(m.from.address, 'alice@sender.example')
    assert.deepEqual(
      m.to.map((r) => r.address),
      ['bob@postern.test', 'carol@postern.test'],
    )
    assert.equal(m.s.helo, 'client.example')
    const raw = m.message.toString()
    assert.match(raw, /^Subject: Hello$/m)
    assert.ok(raw.includes('Line one\r\n.starts with a dot\r\n..two dots\r\n.\r\nend'), raw)
    assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(raw), 'CRLF line ends only')
  })

  it('passes DSN parameters and SMTPUTF8 through', async () => {
    await plain().sendMail({
      envelope: { from: 'j\u00f6rg@sender.example', to: ['bob@postern.test'] },
      from: 'j\u00f6rg@sender.example',
      to: 'bob@postern.test',
      subject: 'DSN',
      text: 'x',
      dsn: {
        id: 'env-1+2',
        return: 'headers',
        notify: ['success', 'failure'],
        recipient: 'bob@postern.test',
      },
    })
    const m = t.handler.calls.findLast((c) => c.kind === 'message')
    assert.ok(m?.kind === 'message')
    assert.equal(m.from.address, 'j\u00f6rg@sender.example')
    assert.equal(m.from.smtputf8, true)
    assert.equal(m.from.ret, 'HDRS')
    assert.equal(m.from.envid, 'env-1+2')
    assert.deepEqual(m.to[0], {
      address: 'bob@postern.test',
      notify: ['SUCCESS', 'FAILURE'],
      orcpt: 'rfc822;bob@postern.test',
    })
  })

  it('reports refused recipients with their codes', async () => {
    const info = await plain().sendMail({
      from: 'alice@sender.example',
      to: ['bob@postern.test', 'nobody@unknown.example'],
      subject: 'x',
      text: 'x',
    })
    assert.deepEqual(info.accepted, ['bob@postern.test'])
    assert.deepEqual(info.rejected, ['nobody@unknown.example'])
    await assert.rejects(
      plain().sendMail({
        from: 'alice@sender.example',
        to: 'nobody@unknown.example',
        subject: 'x',
        text: 'x',
      }),
      (err: { responseCode?: number; response?: string }) =>
        err.responseCode === 550 && /5\.1\.1 No such user here/.test(err.response ?? ''),
    )
  })

  it('sends over STARTTLS with a self-signed certificate', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: tlsT.port,
      secure: false,
      requireTLS: true,
      name: 'client.example',
      tls: { rejectUnauthorized: false },
    })
    const info = await transport.sendMail({
      from: 'alice@sender.example',
      to: 'bob@postern.test',
      subject: 'TLS',
      text: 'secret',
    })
    assert.match(info.response, /^250 /)
    const m = tlsT.handler.calls.findLast((c) => c.kind === 'message')
    assert.ok(m?.kind === 'message')
    assert.ok(m.s.tls, 'the session knows it is encrypted')
    assert.match(m.s.tls.protocol, /^TLSv1\.[23]$/)
    assert.ok(m.s.tls.cipher.length > 0)
    assert.equal(m.s.helo, 'client.example')
    assert.equal(m.s.esmtp, true)
  })

  it('offers STARTTLS only when TLS is configured', async () => {
    const c = await RawClient.greeted(tlsT.port)
    assert.match(await c.cmd('EHLO client.example', '250'), /\r\n250-DSN\r\n250 STARTTLS$/)
    c.close()
    const p = await RawClient.greeted(t.port)
    assert.doesNotMatch(await p.cmd('EHLO client.example', '250'), /STARTTLS/)
    await p.cmd('STARTTLS', '502 5.5.1 STARTTLS not available')
    p.close()
  })
})
