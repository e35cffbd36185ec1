// Two Postern instances exchange mail end to end: the sender's API queues a message, its
// worker finds the receiver through MX lookup in the loopback DNS, delivers over SMTP with
// STARTTLS, and the receiver's Authentication-Results shows DKIM, SPF and DMARC pass; Debian's
// python3-dkim verifies both signatures (RSA and Ed25519) independently. The trace and the
// events tell the story.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import { needs, TOOLS } from '../helpers/tools.ts'
import {
  mxPort,
  pythonDkimVerify,
  type Receiver,
  type Sender,
  startReceiver,
  startSender,
  waitForEmail,
} from './helpers.ts'

for (const dialect of DIALECTS) {
  describe(`outbound exchange (${dialect})`, () => {
    let dns: DnsServer
    let b: Receiver
    let a: Sender
    let delivered: Buffer | null = null
    before(async () => {
      dns = await startDnsServer({})
      b = await startReceiver(dialect, dns)
      a = await startSender(dialect, dns, mxPort(b.server))
    })
    after(async () => {
      await a?.server.close()
      await b?.server.close()
      await dns?.close()
    })

    it('delivers through MX lookup with DKIM, SPF and DMARC passing at the receiver', async () => {
      const sent = await a.send.post('/v1/emails', {
        from: 'Alice <alice@a.example>',
        to: `ann@${b.domain}`,
        subject: 'Quarterly figures',
        text: 'Numbers attached.\n.\nA line with a dot.',
        html: '<p>Numbers attached.</p>',
        tags: { campaign: 'q4' },
        attachments: [{ filename: 'figures.csv', content: Buffer.from('a,b\n1,2\n').toString('base64') }],
      })
      assert.equal(sent.status, 202, sent.text)
      assert.match(sent.body.id, /^eml_/)
      assert.equal(sent.body.status, 'queued')
      const email = await waitForEmail(a.api, sent.body.id, (e) => e.status === 'sent')
      assert.equal(email.recipients[0].state, 'delivered')
      assert.equal(email.recipients[0].last_code, 250)
      assert.equal(email.recipients[0].remote_mta, `mx.${b.domain}`)
      assert.deepEqual(
        email.events.map((e: { type: string }) => e.type),
        ['email.queued', 'email.sent', 'email.delivered'],
      )
      assert.deepEqual(email.tags, { campaign: 'q4' })

      const list = await b.api.get(`/v1/messages?mailbox=${b.ann}`)
      assert.equal(list.body.data.length, 1, list.text)
      const raw = Buffer.from((await b.api.get(`/v1/messages/${list.body.data[0].id}/raw`)).text, 'latin1')
      const head = raw.subarray(0, raw.indexOf('\r\n\r\n')).toString()
      assert.match(
        head,
        /Authentication-Results: mx\.b\.example;[\s\S]*dkim=pass[\s\S]*spf=pass[\s\S]*dmarc=pass/,
      )
      // Two signatures (RSA and Ed25519), From/To/Subject oversigned, no l=.
      const sigs = head.match(/^DKIM-Signature:[^\r\n]*(\r\n[ \t][^\r\n]*)*/gm) ?? []
      assert.equal(sigs.length, 2)
      for (const s of sigs) {
        const unfolded = s.replace(/\r\n[ \t]+/g, ' ')
        assert.match(unfolded, /c=relaxed\/relaxed/)
        assert.doesNotMatch(unfolded, /[; ]l=/)
        const h = /h=([^;]+)/.exec(unfolded)?.[1]?.replace(/\s/g, '').split(':') ?? []
        for (const f of ['from', 'to', 'subject'])
          assert.ok(h.filter((x) => x === f).length >= 2, `${f} oversigned in ${h}`)
      }
      assert.ok(sigs.some((s) => /a=rsa-sha256/.test(s)) && sigs.some((s) => /a=ed25519-sha256/.test(s)))
      delivered = raw
    })

    it(
      'has both signatures verified by an independent verifier (python3-dkim)',
      needs(TOOLS.python3Dkim),
      async () => {
        assert.ok(delivered, 'the delivery test above stores the message')
        const py = await pythonDkimVerify(delivered, dns.port)
        assert.equal(py.code, 0, py.out)
        assert.match(py.out, /0 pass\n1 pass/)
      },
    )

    it('records every step in the trace: DNS answers, connection, TLS, SMTP replies, final state', async () => {
      const sent = await a.send.post('/v1/emails', {
        from: 'alice@a.example',
        to: [`ann@${b.domain}`, `nobody@${b.domain}`],
        subject: 'Traced',
        text: 'hello',
      })
      assert.equal(sent.status, 202, sent.text)
      const email = await waitForEmail(a.api, sent.body.id, (e) => e.status === 'sent')
      const byAddr = Object.fromEntries(email.recipients.map((r: { address: string }) => [r.address, r]))
      assert.equal(byAddr[`ann@${b.domain}`].state, 'delivered')
      assert.equal(byAddr[`nobody@${b.domain}`].state, 'bounced')
      assert.equal(byAddr[`nobody@${b.domain}`].last_code, 550)
      const trace = await a.api.get(`/v1/emails/${sent.body.id}/trace`)
      assert.equal(trace.status, 200, trace.text)
      const kinds = trace.body.steps.map((s: { kind: string }) => s.kind)
      assert.equal(kinds[0], 'queued')
      const mx = trace.body.steps.find((s: any) => s.kind === 'dns' && s.detail.type === 'MX')
      assert.ok(mx, JSON.stringify(trace.body.steps))
      assert.ok(JSON.stringify(mx.detail.answers).includes(`mx.${b.domain}`), JSON.stringify(mx.detail))
      const tlsStep = trace.body.steps.find((s: any) => s.kind === 'tls' || s.kind === 'reuse')
      assert.ok(tlsStep, 'TLS negotiated (or a TLS session reused)')
      if (tlsStep.kind === 'tls') assert.match(tlsStep.detail.protocol, /^TLSv1\.[23]$/)
      else assert.match(tlsStep.detail.tls.protocol, /^TLSv1\.[23]$/)
      const connectOrReuse = trace.body.steps.find((s: any) => s.kind === 'connect' || s.kind === 'reuse')
      assert.ok(connectOrReuse)
      assert.equal(connectOrReuse.detail.ip, '127.0.0.1')
      const replies = trace.body.steps.filter((s: any) => s.kind === 'reply')
      assert.ok(replies.some((s: any) => s.detail.command === 'RCPT' && s.detail.code === 550))
      assert.ok(replies.some((s: any) => s.detail.command === 'DATA-END' && s.detail.code === 250))
      assert.equal(trace.body.final.status, 'sent')
      // The hard bounce put the address on the suppression list.
      const sup = await a.api.get('/v1/suppressions')
      assert.ok(
        sup.body.data.some((x: any) => x.address === `nobody@${b.domain}` && x.reason === 'hard_bounce'),
      )
    })
  })
}
