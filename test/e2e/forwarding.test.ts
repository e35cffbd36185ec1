// Forwarding between two Postern instances on one loopback DNS server. An SMTP client delivers
// to Postern A's MX for an alias that forwards to a mailbox on Postern B: A queues the forward
// (SRS envelope sender, ARC set, A's DKIM signature) in the same transaction as its local
// copy, and B finds ARC, SPF (for A's SRS address), DKIM and DMARC passing. A bounce to the
// SRS address goes back to the original sender; a tampered one is refused; the per-alias cap
// defers at RCPT; loops, suppressed targets and DMARC-quarantined mail are not forwarded. A
// domain A is the backup MX of queues mail while its primary is down and delivers it when the
// primary comes up.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { setupOwner } from '../accounts/helpers.ts'
import { hostedOrg, mail, senderDomain } from '../delivery/helpers.ts'
import { verifiedDomain } from '../domains/helpers.ts'
import type { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { mxPort, type Receiver, startReceiver, waitForEmail } from '../outbound/helpers.ts'
import { RawClient } from '../smtp/helpers.ts'

interface SmtpResult {
  rcpt: string[]
  data: string | null
}

/** One SMTP transaction over a raw socket: every RCPT reply, and the DATA reply when any RCPT was accepted. */
async function smtpSend(port: number, from: string, to: string[], body: string): Promise<SmtpResult> {
  const c = await RawClient.greeted(port)
  try {
    await c.cmd('EHLO client.sender.example', '250')
    await c.cmd(`MAIL FROM:<${from}>`, '250')
    const rcpt: string[] = []
    for (const t of to) {
      c.send(`RCPT TO:<${t}>`)
      rcpt.push((await c.reply()) as string)
    }
    if (!rcpt.some((r) => r.startsWith('250'))) return { rcpt, data: null }
    await c.cmd('DATA', '354')
    const stuffed = body.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..')
    c.write(`${stuffed}${stuffed.endsWith('\r\n') ? '' : '\r\n'}.\r\n`)
    const data = (await c.reply(15_000)) as string
    c.send('QUIT')
    return { rcpt, data }
  } finally {
    c.close()
  }
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await probe()
    if (v) return v
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** The messages in a mailbox with the given subject, once there are `n`. */
async function arrived(api: Api, mailbox: string, subject: string, n = 1): Promise<any[]> {
  return until(`${n} message(s) '${subject}' in ${mailbox}`, async () => {
    const r = await api.get(`/v1/messages?mailbox=${mailbox}&limit=100`)
    assert.equal(r.status, 200, r.text)
    const found = r.body.data.filter((m: { subject: string }) => m.subject === subject)
    return found.length >= n ? found : null
  })
}

async function rawOf(api: Api, id: string): Promise<string> {
  const r = await api.get(`/v1/messages/${id}/raw`)
  assert.equal(r.status, 200, r.text)
  return r.text
}

const head = (raw: string) => raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ')

async function envelopeOf(s: TestServer, id: string): Promise<{ mail_from: string }> {
  const row = await s.postern.store.db
    .selectFrom('messages')
    .select('envelope')
    .where('id', '=', id)
    .executeTakeFirstOrThrow()
  return JSON.parse(row.envelope as string)
}

async function forwardsOf(s: TestServer): Promise<{ id: string; status: string; mail_from: string }[]> {
  return s.postern.store.db
    .selectFrom('outbound_messages')
    .select(['id', 'status', 'mail_from'])
    .where('origin', '=', 'forward')
    .orderBy('created_at')
    .execute()
}

for (const dialect of DIALECTS) {
  describe(`forwarding (${dialect})`, () => {
    let dns: DnsServer
    let b: Receiver
    let bApi: Api
    let zed: string
    let a: TestServer
    let aApi: Api
    let aBob: string
    before(async () => {
      dns = await startDnsServer({})
      b = await startReceiver(dialect, dns, 'b.example')
      bApi = b.api
      const me = (await bApi.get('/v1/me')).body.id as string
      // zed@b.example's mail reaches B again through A, signed by a.example only: DMARC for
      // b.example fails there (B does not act on ARC), so b.example asks for nothing (p=none)
      // rather than the quarantine its suggested record has.
      dns.set('_dmarc.b.example', 'TXT', [['v=DMARC1; p=none']])
      zed = (await bApi.post('/v1/mailboxes', { domain: 'b.example', local_part: 'zed', owner_user_id: me }))
        .body.mailbox.id
      a = await startTestServer(dialect, {
        dns,
        env: {
          POSTERN_HOSTNAME: 'mx.a.example',
          POSTERN_OUTBOUND_MX_PORT: String(mxPort(b.server)),
          POSTERN_OUTBOUND_POLL_MS: '50',
          POSTERN_OUTBOUND_RETRY_INTERVALS: '200ms,400ms',
          POSTERN_RATE_LIMITS_FORWARD_ALIAS: '2/1h',
        },
      })
      const org = await hostedOrg(a, 'a.example')
      aApi = org.api
      aBob = org.bob
      dns.set('mx.a.example', 'A', ['127.0.0.1'])
    })
    after(async () => {
      await a?.close()
      await b?.server.close()
      await dns?.close()
    })

    const alias = async (address: string, targets: string[]) => {
      const r = await aApi.post('/v1/aliases', { address, targets })
      assert.equal(r.status, 201, r.text)
    }

    it("forwards a p=reject domain's signed mail with SRS, ARC and DKIM; B sees arc, spf, dkim and dmarc pass", async () => {
      await alias('fwd@a.example', ['ann@b.example', 'bob@a.example'])
      const strict = senderDomain(dns, 'strict.example', 'reject')
      const body = await strict.sign(
        mail({ from: 'ceo@strict.example', to: 'fwd@a.example', subject: 'Board minutes' }),
      )
      const r = await smtpSend(mxPort(a), 'ceo@strict.example', ['fwd@a.example'], body)
      assert.match(r.rcpt[0] as string, /^250/)
      assert.match(r.data as string, /^250 2\.0\.0/)
      // 250 came after the forward was queued: the row is there now, with its SRS sender.
      const queued = await forwardsOf(a)
      assert.equal(queued.length, 1)
      assert.match(
        queued[0]?.mail_from as string,
        /^SRS0=[a-z2-7]{6}=[a-z2-7]{2}=strict\.example=ceo@a\.example$/,
      )

      // The local target of the same alias got its copy.
      await arrived(aApi, aBob, 'Board minutes')

      const [m] = await arrived(bApi, b.ann, 'Board minutes')
      const raw = await rawOf(bApi, m.id)
      const h = head(raw)
      const ar = /^Authentication-Results: mx\.b\.example;[^\r\n]*/m.exec(h)?.[0] ?? ''
      assert.match(ar, /arc=pass/, ar)
      assert.match(ar, /spf=pass[^;]*smtp\.mailfrom="?SRS0=[^;\s]*@a\.example/i, ar)
      assert.match(ar, /dkim=pass[^;]*header\.[di]=@?strict\.example/, ar)
      assert.match(ar, /dkim=pass[^;]*header\.[di]=@?a\.example/, ar)
      assert.match(ar, /dmarc=pass[^;]*header\.from=strict\.example/, ar)
      // A's ARC set: instance 1, sealed by a.example, attesting to what A found.
      assert.match(h, /^ARC-Seal: i=1; [^\r\n]*cv=none[^\r\n]*d=a\.example/m)
      assert.match(h, /^ARC-Message-Signature: i=1; [^\r\n]*d=a\.example/m)
      assert.match(h, /^ARC-Authentication-Results: i=1; mx\.a\.example;[^\r\n]*dmarc=pass/m)
      assert.match(h, /^Delivered-To: fwd@a\.example$/m)
      assert.equal((await envelopeOf(b.server, m.id)).mail_from, queued[0]?.mail_from)
      const email = await waitForEmail(aApi, queued[0]?.id as string, (e) => e.status === 'sent')
      assert.equal(email.recipients[0].state, 'delivered')
    })

    it('sends a bounce at the SRS address back to the original sender, and refuses tampered ones', async () => {
      await alias('relay@a.example', ['ann@b.example'])
      const body = mail({ from: 'zed@b.example', to: 'relay@a.example', subject: 'Will bounce later' })
      const r = await smtpSend(mxPort(a), 'zed@b.example', ['relay@a.example'], body)
      assert.match(r.data as string, /^250/)
      const [m] = await arrived(bApi, b.ann, 'Will bounce later')
      const srs = (await envelopeOf(b.server, m.id)).mail_from
      assert.match(srs, /^SRS0=[a-z2-7]{6}=[a-z2-7]{2}=b\.example=zed@a\.example$/)

      // Later, a remote server bounces to the SRS address (null sender, a DSN).
      const dsn = [
        'From: Mail Delivery System <mailer-daemon@b.example>',
        `To: <${srs}>`,
        'Subject: Undelivered Mail Returned to Sender',
        'MIME-Version: 1.0',
        'Content-Type: text/plain',
        '',
        'Your message could not be delivered.',
        '',
      ].join('\r\n')
      // Case changed on the way: still ours.
      const back = await smtpSend(mxPort(a), '', [srs.toUpperCase()], dsn)
      assert.match(back.rcpt[0] as string, /^250/, back.rcpt[0])
      assert.match(back.data as string, /^250/)
      const [bounce] = await arrived(bApi, zed, 'Undelivered Mail Returned to Sender')
      assert.equal((await envelopeOf(b.server, bounce.id)).mail_from, '', 'a bounce keeps the null sender')

      const at = srs.indexOf('=', 5)
      const flipped = `${srs.slice(0, 5)}${srs[5] === 'a' ? 'b' : 'a'}${srs.slice(6)}`
      assert.ok(at > 5)
      for (const bad of [
        flipped,
        srs.replace('=zed@', '=mallory@'),
        srs.replace('=b.example=', '=evil.example='),
        'SRS0=garbage@a.example',
      ]) {
        const t = await smtpSend(mxPort(a), '', [bad], dsn)
        assert.match(t.rcpt[0] as string, /^550 5\.1\.1/, `${bad}: ${t.rcpt[0]}`)
      }
    })

    it('defers with 451 4.7.1 at RCPT once an alias is over its hourly cap, without losing what was accepted', async () => {
      await alias('capped@a.example', ['ann@b.example'])
      for (let i = 0; i < 2; i++) {
        const r = await smtpSend(
          mxPort(a),
          'zed@b.example',
          ['capped@a.example'],
          mail({ from: 'zed@b.example', to: 'capped@a.example', subject: `Capped ${i}` }),
        )
        assert.match(r.data as string, /^250/)
      }
      const over = await smtpSend(
        mxPort(a),
        'zed@b.example',
        ['capped@a.example', 'bob@a.example'],
        mail({ from: 'zed@b.example', to: 'capped@a.example', subject: 'Capped 2' }),
      )
      assert.match(over.rcpt[0] as string, /^451 4\.7\.1/)
      assert.match(over.rcpt[1] as string, /^250/, 'other recipients are unaffected')
      assert.match(over.data as string, /^250/)
      await arrived(bApi, b.ann, 'Capped 0')
      await arrived(bApi, b.ann, 'Capped 1')
      await arrived(aApi, aBob, 'Capped 2')
      const list = await bApi.get(`/v1/messages?mailbox=${b.ann}&limit=100`)
      assert.ok(!list.body.data.some((x: { subject: string }) => x.subject === 'Capped 2'))
    })

    it('refuses a forwarding loop, suppressed-only targets, and does not forward DMARC-quarantined mail', async () => {
      await alias('loop@a.example', ['ann@b.example'])
      const looped = await smtpSend(
        mxPort(a),
        'zed@b.example',
        ['loop@a.example'],
        mail({
          from: 'zed@b.example',
          to: 'loop@a.example',
          subject: 'Round and round',
          headers: ['Delivered-To: loop@a.example'],
        }),
      )
      assert.match(looped.data as string, /^554 5\.4\.6/)

      const sup = await aApi.post('/v1/suppressions', { address: 'gone@b.example' })
      assert.equal(sup.status, 201, sup.text)
      await alias('dead@a.example', ['gone@b.example'])
      const dead = await smtpSend(
        mxPort(a),
        'zed@b.example',
        ['dead@a.example'],
        mail({ from: 'zed@b.example', to: 'dead@a.example', subject: 'Nobody' }),
      )
      assert.match(dead.rcpt[0] as string, /^550 5\.1\.1/)

      // From a quarantine domain, sent from elsewhere and unsigned: DMARC fails.
      senderDomain(dns, 'quar.example', 'quarantine')
      await alias('q@a.example', ['ann@b.example'])
      const before = (await forwardsOf(a)).length
      const q = await smtpSend(
        mxPort(a),
        'someone@unrelated.example',
        ['q@a.example'],
        mail({ from: 'boss@quar.example', to: 'q@a.example', subject: 'Quarantined' }),
      )
      assert.match(q.data as string, /^550 5\.7\.1/)
      // With a local target too, the local copy goes to Junk and nothing is forwarded.
      const both = await smtpSend(
        mxPort(a),
        'someone@unrelated.example',
        ['q@a.example', 'bob@a.example'],
        mail({ from: 'boss@quar.example', to: 'q@a.example', subject: 'Quarantined too' }),
      )
      assert.match(both.data as string, /^250/)
      const junk = await aApi.get(`/v1/messages?mailbox=${aBob}&folder=junk`)
      assert.ok(
        junk.body.data.some((x: { subject: string }) => x.subject === 'Quarantined too'),
        junk.text,
      )
      assert.equal((await forwardsOf(a)).length, before)
    })
  })

  describe(`backup MX (${dialect})`, () => {
    let dns: DnsServer
    let a: TestServer
    let c: TestServer | null = null
    let primaryPort: number
    before(async () => {
      dns = await startDnsServer({})
      // The primary will listen on 127.0.0.2 at the port A's outbound side connects to; a free
      // port is found by binding it once.
      const probe = await startTestServer(dialect, { dns, env: { POSTERN_SMTP_HOST: '127.0.0.2' } })
      primaryPort = mxPort(probe)
      await probe.close()
      a = await startTestServer(dialect, {
        dns,
        env: {
          POSTERN_HOSTNAME: 'mx.a.example',
          POSTERN_OUTBOUND_MX_PORT: String(primaryPort),
          POSTERN_OUTBOUND_POLL_MS: '50',
          POSTERN_OUTBOUND_RETRY_INTERVALS: '200ms,400ms',
        },
      })
      dns.set('mx.a.example', 'A', ['127.0.0.1'])
      dns.set('mx.c.example', 'A', ['127.0.0.2'])
    })
    after(async () => {
      await c?.close()
      await a?.close()
      await dns?.close()
    })

    it('accepts any local part, queues it while the primary is down, and delivers with the original envelope once it is up', async () => {
      const aApi = await setupOwner(a, 'owner@a.example', 'Backup provider')
      const d = await verifiedDomain(aApi, dns, 'backup.example')
      const patched = await aApi.patch(`/v1/domains/${d.id}`, { backup_mx: true })
      assert.equal(patched.status, 200, patched.text)
      assert.equal(patched.body.backup_mx, true)
      // The real MX first, A second.
      dns.set('backup.example', 'MX', [
        { priority: 10, exchange: 'mx.c.example' },
        { priority: 20, exchange: 'mx.a.example' },
      ])
      const sender = senderDomain(dns, 'origin.example', 'reject')
      const body = await sender.sign(
        mail({ from: 'kim@origin.example', to: 'anyone@backup.example', subject: 'While you were out' }),
      )
      const r = await smtpSend(mxPort(a), 'kim@origin.example', ['anyone@backup.example'], body)
      assert.match(r.rcpt[0] as string, /^250/)
      assert.match(r.data as string, /^250/)
      const row = await a.postern.store.db
        .selectFrom('outbound_messages')
        .select(['id', 'mail_from'])
        .where('origin', '=', 'backup_mx')
        .executeTakeFirstOrThrow()
      assert.equal(row.mail_from, 'kim@origin.example', 'no SRS for a backup MX')
      // The primary is down: the queue defers and keeps the message.
      const deferred = await waitForEmail(aApi, row.id, (e) => e.recipients[0]?.state === 'deferred')
      assert.equal(deferred.recipients[0].address, 'anyone@backup.example')

      // A failing DMARC p=reject message is still refused at the backup.
      const forged = await smtpSend(
        mxPort(a),
        'x@unrelated.example',
        ['anyone@backup.example'],
        mail({ from: 'kim@origin.example', to: 'anyone@backup.example', subject: 'Forged' }),
      )
      assert.match(forged.data as string, /^550 5\.7\.1/)

      // The primary comes up, hosting backup.example with a mailbox for `anyone`. A's queue is
      // paused while the primary is being set up (it would refuse mail for a domain it does not
      // host yet), and no attempt is in flight.
      assert.equal((await aApi.post('/v1/queue/pause')).status, 200)
      await until('no attempt in flight', async () => {
        const m = await a.postern.store.db
          .selectFrom('outbound_messages')
          .select('lease_owner')
          .where('id', '=', row.id)
          .executeTakeFirstOrThrow()
        return m.lease_owner === null
      })
      c = await startTestServer(dialect, {
        dns,
        env: {
          POSTERN_HOSTNAME: 'mx.c.example',
          POSTERN_SMTP_HOST: '127.0.0.2',
          POSTERN_SMTP_MX_PORT: String(primaryPort),
        },
      })
      const cApi = await setupOwner(c, 'owner@backup.example', 'Primary')
      await verifiedDomain(cApi, dns, 'backup.example')
      dns.set('backup.example', 'MX', [
        { priority: 10, exchange: 'mx.c.example' },
        { priority: 20, exchange: 'mx.a.example' },
      ])
      const me = (await cApi.get('/v1/me')).body.id as string
      const anyone = (
        await cApi.post('/v1/mailboxes', {
          domain: 'backup.example',
          local_part: 'anyone',
          owner_user_id: me,
        })
      ).body.mailbox.id as string
      assert.equal((await aApi.post('/v1/queue/resume')).status, 200)
      const done = await waitForEmail(aApi, row.id, (e) => e.status === 'sent', 20_000)
      assert.equal(done.recipients[0].state, 'delivered')
      assert.equal(done.recipients[0].remote_mta, 'mx.c.example')
      const [m] = await arrived(cApi, anyone, 'While you were out')
      assert.equal((await envelopeOf(c, m.id)).mail_from, 'kim@origin.example')
      const h = head(await rawOf(cApi, m.id))
      assert.match(h, /^Received: from client\.sender\.example[^\r\n]*by mx\.a\.example/m)
      assert.match(h, /dkim=pass[^;]*header\.[di]=@?origin\.example/)
    })
  })
}
