// Outbound delivery against a scripted remote MX (Postern's own SMTP server with a fake
// handler on 127.0.0.1, found through MX records in the loopback DNS): retries after
// temporary failures, bounces and suppression, a late DSN and a complaint matched through
// the signed return path, idempotency, scheduled sends cancelled and rescheduled, refused
// destinations (private range, null MX), header injection, the org cap, queue pause and
// resume, the dry run, local delivery and the Sent copy of a mailbox key.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import nodemailer from 'nodemailer'
import type { RcptTo } from '../../src/smtp/handler.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import { fakeHandler, startSmtp, type TestSmtp } from '../smtp/helpers.ts'
import { mxPort, type Sender, startSender, waitForEmail } from './helpers.ts'

const REMOTE = 'remote.example'

/** Answers by local part: `tempN-x` fails N times with 451 then accepts; `gone-x` is 550 5.1.1. */
function scriptedRemote() {
  const tries = new Map<string, number>()
  return fakeHandler({
    rcpt: async (to: RcptTo) => {
      const local = to.address.split('@')[0] as string
      const n = (tries.get(to.address) ?? 0) + 1
      tries.set(to.address, n)
      const temp = /^temp(\d+)-/.exec(local)
      if (temp && n <= Number(temp[1])) return { code: 451, enhanced: '4.2.0', message: 'Try again later' }
      if (local.startsWith('gone-')) return { code: 550, enhanced: '5.1.1', message: 'No such user' }
      return null
    },
  })
}

const dsnFor = (rcpt: string, status: string, action: string) =>
  [
    'From: MAILER-DAEMON@remote.example',
    'To: postmaster@a.example',
    'Subject: Undelivered Mail Returned to Sender',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain',
    '',
    'Your message could not be delivered.',
    '--b1',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.remote.example',
    '',
    `Final-Recipient: rfc822; ${rcpt}`,
    `Action: ${action}`,
    `Status: ${status}`,
    `Diagnostic-Code: smtp; 550 ${status} mailbox gone after forwarding`,
    '',
    '--b1--',
    '',
  ].join('\r\n')

const arfFor = (rcpt: string) =>
  [
    'From: feedback@remote.example',
    'To: postmaster@a.example',
    'Subject: Complaint',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=feedback-report; boundary="b2"',
    '',
    '--b2',
    'Content-Type: text/plain',
    '',
    'A user marked this as spam.',
    '--b2',
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: abuse',
    'User-Agent: RemoteFBL/1.0',
    'Version: 1',
    `Original-Rcpt-To: ${rcpt}`,
    '',
    '--b2',
    'Content-Type: text/rfc822-headers',
    '',
    'Subject: hello',
    '',
    '--b2--',
    '',
  ].join('\r\n')

for (const dialect of DIALECTS) {
  describe(`outbound delivery (${dialect})`, () => {
    let dns: DnsServer
    let remote: TestSmtp
    let a: Sender
    before(async () => {
      dns = await startDnsServer({})
      remote = await startSmtp({ handler: scriptedRemote() })
      dns.set(REMOTE, 'MX', [{ priority: 10, exchange: `mx.${REMOTE}` }])
      dns.set(`mx.${REMOTE}`, 'A', ['127.0.0.1'])
      a = await startSender(dialect, dns, remote.port)
    })
    after(async () => {
      await a?.server.close()
      await remote?.close()
      await dns?.close()
    })

    const send = async (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
      a.send.req(
        'POST',
        '/v1/emails',
        { from: 'alice@a.example', subject: 'Hi', text: 'Hello', ...body },
        headers,
      )

    it('retries temporary failures on the backoff schedule, then delivers', async () => {
      const r = await send({ to: `temp2-x@${REMOTE}` })
      assert.equal(r.status, 202, r.text)
      const e = await waitForEmail(a.api, r.body.id, (x) => x.status === 'sent')
      assert.equal(e.recipients[0].state, 'delivered')
      assert.equal(e.recipients[0].attempts, 3)
      assert.deepEqual(
        e.events.map((x: { type: string }) => x.type),
        ['email.queued', 'email.sent', 'email.deferred', 'email.deferred', 'email.delivered'],
      )
      const deferred = e.events.find((x: { type: string }) => x.type === 'email.deferred')
      assert.equal(deferred.data.code, 451)
      assert.ok(deferred.data.next_attempt_at)
    })

    it('bounces a permanent failure, suppresses the address and skips it next time', async () => {
      const r = await send({ to: [`gone-1@${REMOTE}`] })
      const e = await waitForEmail(a.api, r.body.id, (x) => x.status === 'failed')
      assert.equal(e.recipients[0].state, 'bounced')
      assert.equal(e.recipients[0].last_enhanced_code, '5.1.1')
      const bounced = e.events.find((x: { type: string }) => x.type === 'email.bounced')
      assert.equal(bounced.data.hard, true)
      const again = await send({ to: [`gone-1@${REMOTE}`, `ok-1@${REMOTE}`] })
      assert.deepEqual(again.body.suppressed, [`gone-1@${REMOTE}`])
      const e2 = await waitForEmail(a.api, again.body.id, (x) => x.status === 'sent')
      const states = Object.fromEntries(
        e2.recipients.map((x: { address: string; state: string }) => [x.address, x.state]),
      )
      assert.deepEqual(states, { [`gone-1@${REMOTE}`]: 'suppressed', [`ok-1@${REMOTE}`]: 'delivered' })
      // Released, the address is sent to again.
      const rel = await a.api.delete(`/v1/suppressions/${encodeURIComponent(`gone-1@${REMOTE}`)}`)
      assert.equal(rel.status, 204, rel.text)
      const third = await send({ to: `gone-1@${REMOTE}` })
      assert.deepEqual(third.body.suppressed, [])
    })

    it('matches a late DSN and a complaint to the message through the signed return path', async () => {
      const r = await send({ to: `late-1@${REMOTE}` })
      const e = await waitForEmail(a.api, r.body.id, (x) => x.status === 'sent')
      assert.equal(e.recipients[0].state, 'delivered')
      const mail = remote.handler.calls
        .filter((c) => c.kind === 'mail')
        .map((c) => (c.kind === 'mail' ? c.from.address : ''))
      const returnPath = mail.find((m) => m.includes(r.body.id)) as string
      assert.match(returnPath, /^bounces\+eml_[0-9a-z]+-[0-9a-z]+@a\.example$/)
      const mx = nodemailer.createTransport({
        host: '127.0.0.1',
        port: mxPort(a.server),
        secure: false,
        tls: { rejectUnauthorized: false },
      })
      const info = await mx.sendMail({
        envelope: { from: '', to: [returnPath] },
        raw: dsnFor(`late-1@${REMOTE}`, '5.1.1', 'failed'),
      })
      assert.match(info.response, /^250/)
      const after = await waitForEmail(a.api, r.body.id, (x) => x.recipients[0].state === 'bounced')
      const bounced = after.events.find((x: { type: string }) => x.type === 'email.bounced')
      assert.equal(bounced.data.source, 'dsn')
      const sup = await a.api.get(`/v1/suppressions?address=late-1@${REMOTE}`)
      assert.equal(sup.body.data[0]?.reason, 'hard_bounce')

      // A complaint (ARF) for another message suppresses its recipient.
      const c = await send({ to: `fan-1@${REMOTE}` })
      await waitForEmail(a.api, c.body.id, (x) => x.status === 'sent')
      const rp = remote.handler.calls.flatMap((x) =>
        x.kind === 'mail' && x.from.address.includes(c.body.id) ? [x.from.address] : [],
      )[0] as string
      await mx.sendMail({ envelope: { from: '', to: [rp] }, raw: arfFor(`fan-1@${REMOTE}`) })
      const ce = await waitForEmail(a.api, c.body.id, (x) =>
        x.events.some((ev: { type: string }) => ev.type === 'email.complained'),
      )
      assert.equal(
        ce.events.find((x: { type: string }) => x.type === 'email.complained').recipient,
        `fan-1@${REMOTE}`,
      )
      const sup2 = await a.api.get('/v1/suppressions?reason=complaint')
      assert.ok(sup2.body.data.some((x: { address: string }) => x.address === `fan-1@${REMOTE}`))

      // A forged return path (bad signature) is refused at RCPT; nothing changes.
      const forged = returnPath.replace(/-([0-9a-z])/, (_m, ch) => `-${ch === 'a' ? 'b' : 'a'}`)
      await assert.rejects(
        mx.sendMail({
          envelope: { from: '', to: [forged] },
          raw: dsnFor(`fan-1@${REMOTE}`, '5.1.1', 'failed'),
        }),
        /550/,
      )
      mx.close()
    })

    it('replays an idempotent request and refuses the same key with another body', async () => {
      const body = { to: `idem-1@${REMOTE}`, subject: 'Once' }
      const first = await send(body, { 'idempotency-key': 'order-42' })
      assert.equal(first.status, 202, first.text)
      const again = await send(body, { 'idempotency-key': 'order-42' })
      assert.equal(again.status, 202)
      assert.equal(again.body.id, first.body.id)
      assert.equal(again.headers.get('idempotency-replayed'), 'true')
      const other = await send({ ...body, subject: 'Twice?' }, { 'idempotency-key': 'order-42' })
      assert.equal(other.status, 409, other.text)
      assert.equal(other.body.code, 'IDEMPOTENCY_KEY_REUSED')
      const list = await a.api.get(`/v1/emails?recipient=idem-1@${REMOTE}`)
      assert.equal(list.body.data.length, 1)
    })

    it('cancels a scheduled send before it goes, and reschedules another to now', async () => {
      const at = new Date(Date.now() + 3_600_000).toISOString()
      const s1 = await send({ to: `sched-1@${REMOTE}`, scheduled_at: at })
      assert.equal(s1.body.status, 'scheduled')
      const got = await a.api.get(`/v1/emails/${s1.body.id}`)
      assert.equal(got.body.scheduled_at, at)
      const c = await a.send.post(`/v1/emails/${s1.body.id}/cancel`)
      assert.equal(c.status, 200, c.text)
      assert.equal(c.body.status, 'cancelled')
      assert.equal(c.body.recipients[0].state, 'cancelled')
      assert.ok(c.body.events.some((x: { type: string }) => x.type === 'email.cancelled'))
      const twice = await a.send.post(`/v1/emails/${s1.body.id}/cancel`)
      assert.equal(twice.status, 409)

      const s2 = await send({ to: `sched-2@${REMOTE}`, scheduled_at: at })
      const p = await a.send.patch(`/v1/emails/${s2.body.id}`, { scheduled_at: null })
      assert.equal(p.status, 200, p.text)
      await waitForEmail(a.api, s2.body.id, (x) => x.status === 'sent')
      const seen = remote.handler.calls
        .filter((x) => x.kind === 'rcpt')
        .map((x) => (x.kind === 'rcpt' ? x.to.address : ''))
      assert.ok(seen.includes(`sched-2@${REMOTE}`))
      assert.ok(!seen.includes(`sched-1@${REMOTE}`))
    })

    it('refuses a destination in a private range and bounces a null MX at once', async () => {
      dns.set('private.example', 'MX', [{ priority: 10, exchange: 'mx.private.example' }])
      dns.set('mx.private.example', 'A', ['10.1.2.3'])
      dns.set('nomail.example', 'MX', [{ priority: 0, exchange: '.' }])
      const r = await send({ to: ['x@private.example', 'y@nomail.example'] })
      const e = await waitForEmail(a.api, r.body.id, (x) => x.status === 'failed')
      const by = Object.fromEntries(e.recipients.map((x: { address: string }) => [x.address, x]))
      assert.equal(by['x@private.example'].state, 'bounced')
      assert.equal(by['x@private.example'].last_enhanced_code, '5.4.4')
      assert.match(by['x@private.example'].last_response, /private/)
      assert.equal(by['y@nomail.example'].last_enhanced_code, '5.1.10')
      const trace = await a.api.get(`/v1/emails/${r.body.id}/trace`)
      assert.ok(trace.body.steps.some((s: { kind: string }) => s.kind === 'route'))
      assert.ok(
        !trace.body.steps.some((s: { kind: string }) => s.kind === 'connect'),
        'no connection attempted',
      )
    })

    it('refuses header injection, unverified senders and malformed requests with clear errors', async () => {
      const cases: [Record<string, unknown>, number, RegExp][] = [
        [{ to: `x@${REMOTE}`, subject: 'Hi\r\nBcc: victim@evil.example' }, 422, /line breaks/],
        [{ to: `x@${REMOTE}`, headers: { 'X-Note': 'a\r\nBcc: victim@evil.example' } }, 422, /line breaks/],
        [{ to: `x@${REMOTE}`, headers: { From: 'ceo@a.example' } }, 422, /set by Postern/],
        [{ to: `x@${REMOTE}`, headers: { 'Bad Name': 'v' } }, 422, /not a valid header field name/],
        [{ to: 'Victim <v@evil.example>\r\nBcc: w@evil.example' }, 422, /line breaks|one email address/],
        [{ to: 'not-an-address' }, 422, /to\[0\]/],
        [{ from: 'spoof@elsewhere.example', to: `x@${REMOTE}` }, 403, /not a verified domain/],
        [{ to: [] }, 422, /at least one recipient/],
      ]
      for (const [body, status, re] of cases) {
        const r = await send(body)
        assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`)
        assert.match(r.text, re)
      }
      const raw = await a.send.req('POST', '/v1/emails', '{"from": "alice@a.example", "to": ', {
        'content-type': 'application/json',
      })
      assert.equal(raw.status, 400)
      const noKey = await fetch(`${a.server.url}/v1/emails`, { method: 'POST', body: '{}' })
      assert.equal(noKey.status, 401)
      const readKey = (await a.api.post('/v1/api-keys', { name: 'r', scope: 'read' })).body.key as string
      const denied = await a.api
        .withKey(readKey)
        .post('/v1/emails', { from: 'alice@a.example', to: `x@${REMOTE}`, subject: 's', text: 't' })
      assert.equal(denied.status, 403)
    })

    it('pauses and resumes the queue; the dry run reports each recipient', async () => {
      const paused = await a.api.post('/v1/queue/pause')
      assert.equal(paused.status, 200, paused.text)
      assert.equal(paused.body.paused, true)
      const r = await send({ to: `pause-1@${REMOTE}` })
      await new Promise((res) => setTimeout(res, 300))
      const q = await a.api.get('/v1/queue/messages')
      assert.ok(
        q.body.data.some((m: { id: string }) => m.id === r.body.id),
        q.text,
      )
      assert.equal((await a.api.get(`/v1/emails/${r.body.id}`)).body.status, 'queued')
      const status = await a.api.get('/v1/queue')
      assert.ok(status.body.messages.queued >= 1)
      await a.api.post('/v1/queue/resume')
      await waitForEmail(a.api, r.body.id, (x) => x.status === 'sent')

      await a.api.post('/v1/suppressions', { address: `blocked-1@${REMOTE}` })
      const v = await a.send.post('/v1/emails/validate', {
        from: 'alice@a.example',
        to: [`ok-2@${REMOTE}`, `blocked-1@${REMOTE}`, 'z@nomail.example'],
        subject: 'dry',
        text: 'run',
      })
      assert.equal(v.status, 200, v.text)
      assert.equal(v.body.valid, false)
      const st = Object.fromEntries(
        v.body.recipients.map((x: { address: string; status: string }) => [x.address, x.status]),
      )
      assert.deepEqual(st, {
        [`ok-2@${REMOTE}`]: 'ok',
        [`blocked-1@${REMOTE}`]: 'suppressed',
        'z@nomail.example': 'no_mail_server',
      })
      assert.ok(v.body.size > 0)
      const bad = await a.send.post('/v1/emails/validate', {
        from: 'x@nowhere.example',
        to: 'a@b.example',
        subject: 's',
        text: 't',
      })
      assert.equal(bad.body.valid, false)
      assert.match(bad.body.errors[0].field, /from/)
    })

    it('delivers to its own domain locally and files a mailbox key’s sends in Sent', async () => {
      const me = (await a.api.get('/v1/me')).body.id as string
      const mbx = await a.api.post('/v1/mailboxes', {
        domain: a.domain,
        local_part: 'carol',
        owner_user_id: me,
      })
      assert.equal(mbx.status, 201, mbx.text)
      const dave = await a.api.post('/v1/mailboxes', {
        domain: a.domain,
        local_part: 'dave',
        owner_user_id: me,
      })
      const carolKey = a.api.withKey(mbx.body.api_key.key as string)
      const r = await carolKey.post('/v1/emails', {
        from: `carol@${a.domain}`,
        to: `dave@${a.domain}`,
        subject: 'Lunch?',
        text: 'Noon.',
      })
      assert.equal(r.status, 202, r.text)
      const e = await waitForEmail(a.api, r.body.id, (x) => x.status === 'sent')
      assert.equal(e.recipients[0].remote_mta, 'local')
      const inbox = await a.api.get(`/v1/messages?mailbox=${dave.body.mailbox.id}`)
      assert.equal(inbox.body.data[0]?.subject, 'Lunch?')
      const sent = await carolKey.get(`/v1/messages?mailbox=${mbx.body.mailbox.id}&folder=sent`)
      assert.equal(sent.status, 200, sent.text)
      assert.ok(
        sent.body.data.some((m: { subject: string }) => m.subject === 'Lunch?'),
        sent.text,
      )
      // A mailbox key sends only as its own mailbox.
      const other = await carolKey.post('/v1/emails', {
        from: `dave@${a.domain}`,
        to: `x@${REMOTE}`,
        subject: 's',
        text: 't',
      })
      assert.equal(other.status, 403, other.text)
      // And sees only its own sends.
      const mine = await carolKey.get('/v1/emails')
      assert.deepEqual(
        mine.body.data.map((x: { id: string }) => x.id),
        [r.body.id],
      )
    })
  })
}
