// Every lifecycle event of a send and of an inbound message reaches each endpoint exactly once:
// two Postern instances on one loopback DNS server (a sends to b through a real MX lookup);
// a's org has two endpoints (every type; email.* only), b's org one for email.received, whose
// payload is the parsed message (envelope, headers, addresses, text, html, attachment metadata
// with a download URL that works, authentication results, spam verdict, plus-address tag).

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import {
  type Receiver as MailReceiver,
  mxPort,
  type Sender,
  startReceiver as startMailReceiver,
  startSender,
  waitForEmail,
} from '../outbound/helpers.ts'
import { type Received, startReceiver, type TestReceiver, verifyWith } from './receiver.ts'

async function hook(api: Api, url: string, event_types?: string[]) {
  const r = await api.post('/v1/webhooks', { url, ...(event_types ? { event_types } : {}) })
  assert.equal(r.status, 201, r.text)
  assert.equal(r.body.webhook.status, 'active', r.text)
  return r.body as { webhook: { id: string }; secret: string }
}

const countBy = (msgs: Received[]) =>
  msgs.reduce<Record<string, number>>((acc, m) => {
    acc[m.json.type] = (acc[m.json.type] ?? 0) + 1
    return acc
  }, {})

for (const dialect of DIALECTS) {
  describe(`webhook lifecycle payloads (${dialect})`, () => {
    let dns: DnsServer
    let b: MailReceiver
    let a: Sender
    const rx: TestReceiver[] = []

    before(async () => {
      dns = await startDnsServer({})
      b = await startMailReceiver(dialect, dns, 'b.example')
      a = await startSender(dialect, dns, mxPort(b.server), { env: { POSTERN_WEBHOOKS_POLL_MS: '20' } })
    })
    after(async () => {
      for (const r of rx) await r.close()
      await a.server.close()
      await b.server.close()
      await dns.close()
    })

    it('sends each endpoint every lifecycle event once, and email.received with the parsed message', async () => {
      const all = await startReceiver()
      const emails = await startReceiver()
      const inbound = await startReceiver()
      rx.push(all, emails, inbound)
      const hAll = await hook(a.api, all.url)
      const hEmails = await hook(a.api, emails.url, ['email.*'])
      const hInbound = await hook(b.api, inbound.url, ['email.received'])

      const sent = await a.send.post('/v1/emails', {
        from: 'Alice <alice@a.example>',
        to: `ann+invoices@${b.domain}`,
        cc: `bob@${b.domain}`,
        subject: 'Invoice 42',
        text: 'Please find the invoice attached.',
        html: '<p>Please find the <b>invoice</b> attached.</p>',
        attachments: [
          {
            filename: 'invoice.txt',
            content: Buffer.from('total: 42').toString('base64'),
            content_type: 'text/plain',
          },
        ],
        tags: { campaign: 'billing' },
      })
      assert.equal(sent.status, 202, sent.text)
      const emailId = sent.body.id as string
      await waitForEmail(a.api, emailId, (e) => e.status === 'sent')

      const lifecycle = { 'email.queued': 1, 'email.delivered': 2, 'email.sent': 1 }
      const done = (r: TestReceiver) => () => {
        const c = countBy(r.messages().filter((m) => m.json.data.email_id === emailId))
        return Object.entries(lifecycle).every(([t, n]) => (c[t] ?? 0) >= n)
      }
      await all.waitFor(done(all), 20_000, 'the lifecycle at the every-type endpoint')
      await emails.waitFor(done(emails), 20_000, 'the lifecycle at the email.* endpoint')
      // b's org: one email.received per mailbox it reached (ann and bob).
      await inbound.waitFor(() => inbound.messages('email.received').length >= 2, 20_000, 'email.received')

      // A later event is delivered after all of those; then nothing was sent twice.
      assert.equal((await a.api.post('/v1/domains', { name: 'marker.a.example' })).status, 201)
      await all.waitFor(() =>
        all.messages('domain.created').some((m) => m.json.data.name === 'marker.a.example'),
      )
      for (const [r, h] of [
        [all, hAll],
        [emails, hEmails],
      ] as const) {
        const mine = r.messages().filter((m) => m.json.data.email_id === emailId)
        assert.deepEqual(countBy(mine), lifecycle, 'each lifecycle event exactly once')
        assert.equal(new Set(r.messages().map((m) => m.headers['webhook-id'])).size, r.messages().length)
        for (const m of mine) verifyWith(h.secret, m)
      }
      assert.ok(!emails.messages().some((m) => !m.json.type.startsWith('email.')), 'the filter holds')

      const delivered = all.messages('email.delivered').map((m) => m.json.data)
      const toAnn = delivered.find((d) => d.recipient === `ann+invoices@${b.domain}`)
      assert.ok(toAnn, JSON.stringify(delivered))
      assert.equal(toAnn.status, 'delivered')
      assert.equal(toAnn.email_id, emailId)
      assert.equal(toAnn.code, 250)
      assert.equal(typeof toAnn.response, 'string')
      assert.equal(toAnn.subject, 'Invoice 42')
      assert.equal(toAnn.from, 'Alice <alice@a.example>')
      assert.deepEqual(toAnn.tags, { campaign: 'billing' })
      assert.match(toAnn.message_id_header, /^<.+@a\.example>$/)

      // The inbound payload, built from the message b stored.
      const received = inbound.messages('email.received').map((m) => m.json.data)
      assert.equal(new Set(inbound.messages().map((m) => m.headers['webhook-id'])).size, 2)
      for (const m of inbound.messages()) verifyWith(hInbound.secret, m)
      const ann = received.find((d) => d.mailbox === `ann@${b.domain}`)
      assert.ok(ann, JSON.stringify(received.map((d) => d.mailbox)))
      assert.match(ann.message_id, /^msg_/)
      assert.equal(ann.subject, 'Invoice 42')
      assert.deepEqual(ann.from, { name: 'Alice', address: 'alice@a.example' })
      assert.deepEqual(
        ann.to.map((x: { address: string }) => x.address),
        [`ann+invoices@${b.domain}`],
      )
      assert.deepEqual(
        ann.cc.map((x: { address: string }) => x.address),
        [`bob@${b.domain}`],
      )
      assert.equal(ann.text.trim(), 'Please find the invoice attached.')
      assert.match(ann.html, /<b>invoice<\/b>/)
      assert.equal(ann.plus_tag, 'invoices')
      assert.equal(ann.folder, 'inbox')
      assert.deepEqual(ann.spam.is_spam, false)
      assert.match(ann.envelope.mail_from, /@a\.example$/)
      assert.ok(
        ann.envelope.recipients.some((r: { address: string }) => r.address === `ann+invoices@${b.domain}`),
        JSON.stringify(ann.envelope),
      )
      assert.equal(ann.envelope.client_ip, '127.0.0.1')
      assert.ok(
        ann.headers.some(
          (h: { name: string; value: string }) => h.name === 'Subject' && h.value === 'Invoice 42',
        ),
      )
      assert.match(ann.authentication.results, /dkim=pass/)
      assert.equal(ann.attachments.length, 1)
      const att = ann.attachments[0]
      assert.equal(att.filename, 'invoice.txt')
      assert.equal(att.content_type, 'text/plain')
      assert.match(att.url, new RegExp(`^${b.server.url}/v1/messages/${ann.message_id}/attachments/0$`))
      const download = await b.api.get(new URL(att.url).pathname)
      assert.equal(download.status, 200, download.text)
      assert.equal(download.text, 'total: 42')
      // No secrets: the payload carries neither the endpoint's secret nor any API key.
      for (const m of inbound.messages())
        assert.ok(!m.body.includes(hInbound.secret) && !m.body.includes('pst_'))
      const bob = received.find((d) => d.mailbox === `bob@${b.domain}`)
      assert.ok(bob)
      assert.equal(bob.plus_tag, null)
    })
  })
}
