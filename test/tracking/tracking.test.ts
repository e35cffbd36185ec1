// Tracking and one-click unsubscribe end to end: a send through the real API with
// track_opens, track_clicks and list_unsubscribe, delivered to a loopback SMTP sink; the
// delivered MIME is parsed, its DKIM signatures verified (mailauth, keys from the loopback
// DNS), and its pixel, click and unsubscribe URLs fetched with fetch. Tampered tokens are
// refused with nothing written, a click goes only to the URL that was in the mail, bot opens
// are flagged, a GET never unsubscribes and a POST does, once.

import assert from 'node:assert/strict'
import { Resolver } from 'node:dns/promises'
import { after, before, describe, it } from 'node:test'
import { dkimVerify } from 'mailauth/lib/dkim/verify.js'
import { simpleParser } from 'mailparser'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import { type Sender, startSender, waitForEmail } from '../outbound/helpers.ts'
import { fakeHandler, startSmtp, type TestSmtp } from '../smtp/helpers.ts'

const REMOTE = 'remote.example'
const HUMAN =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15'
const HTML =
  '<html><body><p>Hello <a href="https://shop.example/deal?x=1&amp;y=2">the deal</a>, ' +
  '<a href=\'http://docs.example/guide\'>the guide</a>, <a href="mailto:help@a.example">help</a>.</p></body></html>'

interface Delivered {
  raw: Buffer
  html: string
  pixel: string
  clicks: string[]
  unsubscribe: string | null
}

for (const dialect of DIALECTS) {
  describe(`tracking and one-click unsubscribe (${dialect})`, () => {
    let dns: DnsServer
    let sink: TestSmtp
    let a: Sender
    let n = 0

    before(async () => {
      dns = await startDnsServer({})
      sink = await startSmtp({ handler: fakeHandler() })
      dns.set(REMOTE, 'MX', [{ priority: 10, exchange: `mx.${REMOTE}` }])
      dns.set(`mx.${REMOTE}`, 'A', ['127.0.0.1'])
      a = await startSender(dialect, dns, sink.port, {
        env: { POSTERN_TRACKING_PREFETCH_WINDOW_MS: '0', POSTERN_RATE_LIMITS_TRACKING_MESSAGE: '10/1h' },
      })
    })
    after(async () => {
      await a.server.close()
      await sink.close()
      await dns.close()
    })

    const events = (type: string) =>
      a.server.postern.store.db
        .selectFrom('events')
        .selectAll()
        .where('type', '=', type)
        .orderBy('id')
        .execute()

    /** Sends a tracked message to `to` and returns what the sink received. */
    async function sendTracked(
      to: string,
      extra: Record<string, unknown> = {},
    ): Promise<Delivered & { id: string }> {
      const before = sink.handler.messages().length
      const r = await a.send.post('/v1/emails', {
        from: 'alice@a.example',
        to,
        subject: `Tracked ${++n}`,
        text: 'Hello in text',
        html: HTML,
        track_opens: true,
        track_clicks: true,
        list_unsubscribe: true,
        ...extra,
      })
      assert.equal(r.status, 202, r.text)
      await waitForEmail(a.api, r.body.id, (e) => e.status === 'sent')
      const raw = sink.handler.messages()[before] as Buffer
      assert.ok(raw, 'the sink got the message')
      const parsed = await simpleParser(raw)
      const html = String(parsed.html)
      const pixel = /<img src="([^"]+\/t\/o\/[^"]+)"/.exec(html)?.[1] as string
      const clicks = [...html.matchAll(/href="([^"]+\/t\/c\/[^"]+)"/g)].map((m) => m[1] as string)
      const head = raw.subarray(0, raw.indexOf('\r\n\r\n')).toString()
      const unsubscribe = /^List-Unsubscribe:\s*<([^>]+)>\r$/m.exec(head)?.[1] ?? null
      return { id: r.body.id, raw, html, pixel, clicks, unsubscribe }
    }

    let first: Delivered & { id: string }

    it('rewrites the HTML before signing: DKIM verifies, links and pixel point at the tracking host', async () => {
      first = await sendTracked(`carol@${REMOTE}`)
      assert.ok(first.pixel.startsWith(`${a.server.url}/t/o/`), first.pixel)
      assert.equal(first.clicks.length, 2)
      assert.match(first.html, /href="mailto:help@a\.example"/, 'mailto links stay')
      assert.doesNotMatch(first.html, /shop\.example|docs\.example/, 'no original URL left in the HTML')
      const head = first.raw.subarray(0, first.raw.indexOf('\r\n\r\n')).toString()
      assert.match(head, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$/m)
      assert.ok(first.unsubscribe?.startsWith(`${a.server.url}/t/u/`), String(first.unsubscribe))

      const resolver = new Resolver()
      resolver.setServers(dns.servers)
      const v = await dkimVerify(first.raw, {
        resolver: (name: string, type: string) => resolver.resolve(name, type as 'TXT'),
      })
      const results = v.results as { status: { result: string }; signingHeaders?: { keys: string } }[]
      assert.equal(results.length, 2)
      for (const r of results) {
        assert.equal(r.status.result, 'pass', JSON.stringify(r))
        assert.match(r.signingHeaders?.keys ?? '', /List-Unsubscribe: *List-Unsubscribe-Post/i)
      }
    })

    it('answers the pixel with a GIF nobody caches, and records the open', async () => {
      const res = await fetch(first.pixel, { headers: { 'user-agent': HUMAN } })
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('content-type'), 'image/gif')
      assert.match(res.headers.get('cache-control') ?? '', /no-store/)
      assert.equal(
        Buffer.from(await res.arrayBuffer())
          .subarray(0, 6)
          .toString(),
        'GIF89a',
      )
      const opened = await events('email.opened')
      assert.equal(opened.length, 1)
      const p = JSON.parse(opened[0]?.payload as string)
      assert.equal(p.email_id, first.id)
      assert.equal(p.recipient, `carol@${REMOTE}`)
      assert.equal(p.user_agent, HUMAN)
      assert.equal(p.ip, '127.0.0.1')
      assert.equal(p.bot, false)
    })

    it('redirects each click to the URL that was in the mail, whatever the request adds', async () => {
      const go = (url: string, ua = HUMAN) =>
        fetch(url, { redirect: 'manual', headers: { 'user-agent': ua } })
      const r0 = await go(first.clicks[0] as string)
      assert.equal(r0.status, 302)
      assert.equal(r0.headers.get('location'), 'https://shop.example/deal?x=1&y=2')
      const r1 = await go(first.clicks[1] as string)
      assert.equal(r1.headers.get('location'), 'http://docs.example/guide')
      // No open redirect: a URL in the query, or a link index changed in the token, goes nowhere else.
      const withUrl = await go(`${first.clicks[0]}?url=https://evil.example/&redirect=https://evil.example/`)
      assert.equal(withUrl.status, 302)
      assert.equal(withUrl.headers.get('location'), 'https://shop.example/deal?x=1&y=2')
      const clicked = await events('email.clicked')
      assert.deepEqual(
        clicked.map((e) => JSON.parse(e.payload as string).url),
        [
          'https://shop.example/deal?x=1&y=2',
          'http://docs.example/guide',
          'https://shop.example/deal?x=1&y=2',
        ],
      )
      assert.deepEqual(
        clicked.map((e) => JSON.parse(e.payload as string).link_index),
        [0, 1, 0],
      )
    })

    it('refuses tampered tokens with a 404 and writes nothing', async () => {
      const opens = (await events('email.opened')).length
      const clicks = (await events('email.clicked')).length
      const c0 = first.clicks[0] as string
      const [base, token] = [c0.slice(0, c0.lastIndexOf('/') + 1), c0.slice(c0.lastIndexOf('/') + 1)]
      const [key, , sig] = token.split('.')
      const flip = (s: string) => s.slice(0, 5) + (s[5] === 'A' ? 'B' : 'A') + s.slice(6)
      for (const bad of [
        `${base}${key}.1.${sig}`, // link 0's signature on link 1
        `${base}${key}.0.${flip(sig as string)}`,
        `${base}${key}.0`,
        `${base}nonsense`,
        first.pixel.replace('/t/o/', '/t/c/'), // an open token as a click
      ]) {
        const res = await fetch(bad, { redirect: 'manual' })
        assert.equal(res.status, 404, bad)
        assert.equal(res.headers.get('location'), null)
        assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/)
      }
      const [pxBase, pxToken] = first.pixel.split('/t/o/') as [string, string]
      const [pxKey, pxSig] = pxToken.split('.') as [string, string]
      const px = await fetch(`${pxBase}/t/o/${pxKey}.${flip(pxSig)}`)
      assert.equal(px.status, 404)
      const u = await fetch(`${first.unsubscribe}x`, { method: 'POST' })
      assert.equal(u.status, 404)
      assert.equal((await events('email.opened')).length, opens)
      assert.equal((await events('email.clicked')).length, clicks)
      assert.equal((await events('email.unsubscribed')).length, 0)
    })

    it('flags bot opens and clicks, and writes no event for a HEAD', async () => {
      await fetch(first.pixel, { headers: { 'user-agent': 'Mozilla/5.0' } })
      await fetch(first.clicks[1] as string, {
        redirect: 'manual',
        headers: { 'user-agent': 'Barracuda Sentinel (EE)' },
      })
      const head = await fetch(first.clicks[1] as string, { method: 'HEAD', redirect: 'manual' })
      assert.equal(head.status, 302)
      const opened = (await events('email.opened')).map((e) => JSON.parse(e.payload as string))
      assert.deepEqual(opened.at(-1), { ...opened.at(-1), bot: true, bot_reason: 'apple_mpp' })
      const clicked = (await events('email.clicked')).map((e) => JSON.parse(e.payload as string))
      assert.equal(clicked.length, 4, 'the HEAD request wrote no event')
      assert.equal(clicked.at(-1).bot, true)
      assert.equal(clicked.at(-1).bot_reason, 'link_scanner')
    })

    it('stops recording a message past rate_limits.tracking_message, still answering', async () => {
      const ofFirst = async () =>
        (
          await a.server.postern.store.db
            .selectFrom('events')
            .select('id')
            .where('subject_id', '=', first.id)
            .where('type', 'in', ['email.opened', 'email.clicked'])
            .execute()
        ).length
      const before = await ofFirst()
      assert.ok(before < 10, `${before} hits recorded already`)
      for (let i = 0; i < 12; i++) {
        const res = await fetch(first.pixel, { headers: { 'user-agent': HUMAN } })
        assert.equal(res.status, 200)
      }
      assert.equal(await ofFirst(), 10)
    })

    it('unsubscribes on the one-click POST only: the GET shows a button, the POST suppresses once', async () => {
      const url = first.unsubscribe as string
      const page = await fetch(url, { headers: { 'user-agent': 'Mimecast link scanner' } })
      assert.equal(page.status, 200)
      const html = await page.text()
      assert.match(html, /<form method="post">/)
      assert.match(html, new RegExp(`carol@${REMOTE}`))
      const listed = async () => (await a.api.get(`/v1/suppressions?address=carol@${REMOTE}`)).body.data
      assert.deepEqual(await listed(), [], 'a GET must not unsubscribe')
      assert.equal((await events('email.unsubscribed')).length, 0)

      // RFC 8058: POST with the body List-Unsubscribe=One-Click, as mail providers send it.
      const post = () =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'List-Unsubscribe=One-Click',
        })
      const res = await post()
      assert.equal(res.status, 200, await res.clone().text())
      const sup = await listed()
      assert.equal(sup.length, 1)
      assert.equal(sup[0].reason, 'unsubscribe')
      assert.equal(sup[0].email_id, first.id)
      assert.equal((await post()).status, 200, 'a second POST is fine')
      const unsub = await events('email.unsubscribed')
      assert.equal(unsub.length, 1, 'raised once')
      assert.equal(JSON.parse(unsub[0]?.payload as string).recipient, `carol@${REMOTE}`)

      // The next mail to carol is suppressed.
      const again = await a.send.post('/v1/emails', {
        from: 'alice@a.example',
        to: `carol@${REMOTE}`,
        subject: 'After unsubscribing',
        text: 'x',
      })
      assert.equal(again.status, 202, again.text)
      assert.deepEqual(again.body.suppressed, [`carol@${REMOTE}`])
    })

    it("files the sender's Sent copy without the pixel and redirects", async () => {
      const me = (await a.api.get('/v1/me')).body.id as string
      const mb = await a.api.post('/v1/mailboxes', {
        domain: 'a.example',
        local_part: 'alice',
        owner_user_id: me,
      })
      assert.equal(mb.status, 201, mb.text)
      const before = sink.handler.messages().length
      const r = await a.api.post('/v1/emails', {
        from: 'alice@a.example',
        to: `dave@${REMOTE}`,
        subject: 'With a Sent copy',
        html: HTML,
        track_opens: true,
        track_clicks: true,
      })
      assert.equal(r.status, 202, r.text)
      await waitForEmail(a.api, r.body.id, (e) => e.status === 'sent')
      const delivered = (sink.handler.messages()[before] as Buffer).toString()
      assert.match(delivered, /\/t\/o\//)
      const list = await a.api.get(`/v1/messages?mailbox=${mb.body.mailbox.id}`)
      assert.equal(list.status, 200, list.text)
      assert.equal(list.body.data.length, 1, list.text)
      const copy = await a.api.get(`/v1/messages/${list.body.data[0].id}/raw`)
      assert.equal(copy.status, 200)
      assert.doesNotMatch(copy.text, /\/t\/[oc]\//, 'the Sent copy has tracking URLs')
      assert.match(copy.text, /shop\.example\/deal/)
      assert.match(copy.text, /Subject: With a Sent copy/)
    })

    it('asks list_unsubscribe for exactly one recipient and no List-Unsubscribe of the caller', async () => {
      const two = await a.send.post('/v1/emails', {
        from: 'alice@a.example',
        to: [`x@${REMOTE}`, `y@${REMOTE}`],
        subject: 's',
        text: 'x',
        list_unsubscribe: true,
      })
      assert.equal(two.status, 422, two.text)
      assert.equal(two.body.errors[0].field, 'list_unsubscribe')
      const both = await a.send.post('/v1/emails', {
        from: 'alice@a.example',
        to: `x@${REMOTE}`,
        subject: 's',
        text: 'x',
        list_unsubscribe: true,
        headers: { 'List-Unsubscribe': '<https://elsewhere.example/u>' },
      })
      assert.equal(both.status, 422, both.text)
      // Tracking a message with several recipients works; its events name no single recipient.
      const many = await a.send.post('/v1/emails', {
        from: 'alice@a.example',
        to: [`x@${REMOTE}`, `y@${REMOTE}`],
        subject: 'to two',
        html: '<p>hi</p>',
        track_opens: true,
      })
      assert.equal(many.status, 202, many.text)
      await waitForEmail(a.api, many.body.id, (e) => e.status === 'sent')
      const raw = sink.handler.messages().at(-1) as Buffer
      const pixel = /<img src="([^"]+\/t\/o\/[^"]+)"/.exec(
        String((await simpleParser(raw)).html),
      )?.[1] as string
      assert.equal((await fetch(pixel, { headers: { 'user-agent': HUMAN } })).status, 200)
      const last = JSON.parse((await events('email.opened')).at(-1)?.payload as string)
      assert.equal(last.email_id, many.body.id)
      assert.equal(last.recipient, null)
    })
  })
}
