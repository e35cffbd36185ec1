// Domains over real HTTP with a real DNS server on loopback: create, records, status, verify,
// the one-verified-owner rule, limits, delete, DKIM rotation and the re-check job.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { manualClock } from '../../src/time/clock.ts'
import { setupOwner } from '../accounts/helpers.ts'
import { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer } from '../helpers/server.ts'
import { publish, verifiedDomain } from './helpers.ts'

const OPEN = { POSTERN_AUTH_SIGNUP: 'open' }

for (const dialect of DIALECTS) {
  describe(`domains (${dialect})`, () => {
    it('adds a domain with DKIM keys, gives its records, checks them in DNS and verifies it', async () => {
      const s = await startTestServer(dialect)
      try {
        const api = await setupOwner(s)
        const bad = await api.post('/v1/domains', { name: 'not a domain' })
        assert.equal(bad.status, 422)
        assert.equal(bad.body.code, 'INVALID_DOMAIN')
        const created = await api.post('/v1/domains', { name: 'Bücher.Example.' })
        assert.equal(created.status, 201, created.text)
        assert.equal(created.body.name, 'xn--bcher-kva.example')
        assert.equal(created.body.status, 'pending')
        assert.deepEqual(created.body.dkim.map((k: { algorithm: string }) => k.algorithm).sort(), [
          'ed25519',
          'rsa',
        ])
        const stored = await s.postern.store.db.selectFrom('dkim_keys').select('private_key_enc').execute()
        assert.ok(
          stored.every(
            (k) => k.private_key_enc.startsWith('v1.') && !k.private_key_enc.includes('PRIVATE KEY'),
          ),
          'private keys are sealed',
        )
        assert.equal((await api.post('/v1/domains', { name: 'xn--bcher-kva.example' })).status, 409)
        assert.equal(
          (await api.get('/v1/domains/BÜCHER.example')).body.id,
          created.body.id,
          'found by name in any form',
        )

        const rec = await api.get(`/v1/domains/${created.body.id}/dns-records`)
        const purposes = rec.body.records.map((r: { purpose: string }) => r.purpose)
        for (const p of [
          'ownership',
          'mx',
          'spf',
          'dkim',
          'dmarc',
          'mta-sts',
          'tls-rpt',
          'srv-submission',
          'srv-submissions',
          'srv-imap',
          'srv-imaps',
          'autoconfig',
          'autodiscover',
        ])
          assert.ok(purposes.includes(p), p)
        assert.equal(purposes.filter((p: string) => p === 'dkim').length, 2)
        assert.match(rec.body.zone, /_postern\.xn--bcher-kva\.example\.\s+\d+\s+IN\s+TXT/)

        const before = await api.get(`/v1/domains/${created.body.id}/dns-status`)
        assert.equal(before.body.verified_ready, false)
        const notReady = await api.post(`/v1/domains/${created.body.id}/verify`)
        assert.equal(notReady.status, 409)
        assert.equal(notReady.body.code, 'DNS_NOT_READY')
        assert.match(notReady.body.detail, /ownership/)

        publish(s.dns, rec.body.records)
        const status = await api.get(`/v1/domains/${created.body.id}/dns-status`)
        assert.equal(status.status, 200)
        for (const r of status.body.records)
          assert.ok(
            r.state === 'ok' || (r.type === 'SRV' && r.state === 'unchecked'),
            `${r.purpose} ${r.name}: ${r.state} ${r.detail}`,
          )
        assert.ok(s.dns.queries.length > 0, 'the server asked the loopback DNS server')

        // One wrong record is reported as such, the rest stay ok.
        s.dns.set(
          'rsa-' +
            rec.body.records
              .find(
                (r: { purpose: string; name: string }) => r.purpose === 'dkim' && r.name.startsWith('rsa-'),
              )
              .name.slice(4),
          'TXT',
          [['v=DKIM1; k=rsa; p=AAAA']],
        )
        const wrong = await api.get(`/v1/domains/${created.body.id}/dns-status`)
        const dkimStates = wrong.body.records
          .filter((r: { purpose: string }) => r.purpose === 'dkim')
          .map((r: { state: string }) => r.state)
          .sort()
        assert.deepEqual(dkimStates, ['different', 'ok'])
        s.dns.set(`xn--bcher-kva.example`, 'MX', [{ priority: 10, exchange: 'mx.elsewhere.example' }])
        const mx = (await api.get(`/v1/domains/${created.body.id}/dns-status`)).body.records.find(
          (r: { purpose: string }) => r.purpose === 'mx',
        )
        assert.equal(mx.state, 'different')
        assert.match(mx.detail, /mx\.elsewhere\.example/)
        s.dns.set('_imaps._tcp.xn--bcher-kva.example', 'SRV', [
          { priority: 0, weight: 1, port: 9993, target: 'mx.postern.test' },
        ])
        const srv = (await api.get(`/v1/domains/${created.body.id}/dns-status`)).body.records.find(
          (r: { purpose: string }) => r.purpose === 'srv-imaps',
        )
        assert.equal(srv.state, 'different')
        assert.match(srv.detail, /9993/)
        publish(s.dns, rec.body.records)

        const v = await api.post(`/v1/domains/${created.body.id}/verify`)
        assert.equal(v.status, 200, v.text)
        assert.equal(v.body.domain.status, 'verified')
        assert.ok(v.body.domain.verified_at)
      } finally {
        await s.close()
      }
    })

    it('lets one org verify a name; others may hold it only as pending and never capture its mail', async () => {
      const s = await startTestServer(dialect, { env: OPEN })
      try {
        const a = await setupOwner(s)
        const b = new Api(s.url)
        await b.post('/v1/auth/signup', { email: 'b@other.example', password: 'correct-horse-battery-9' })
        const bDomain = await b.post('/v1/domains', { name: 'shared.example' })
        assert.equal(bDomain.status, 201, 'another org may add the name as pending')
        const bMbx = await b.post('/v1/mailboxes', { domain: 'shared.example', local_part: 'ceo' })
        assert.equal(bMbx.status, 201)
        const aDomain = await verifiedDomain(a, s.dns, 'shared.example')
        const aMbx = await a.post('/v1/mailboxes', { domain: 'shared.example', local_part: 'ceo' })
        assert.equal(aMbx.status, 201)
        const bRecords = await b.get(`/v1/domains/${bDomain.body.id}/dns-records`)
        const aRecords = await a.get(`/v1/domains/${aDomain.id}/dns-records`)
        const token = (r: { body: { records: { purpose: string; value: string }[] } }) =>
          r.body.records.find((x) => x.purpose === 'ownership')?.value
        assert.notEqual(token(bRecords), token(aRecords), 'each org has its own ownership token')
        const bVerify = await b.post(`/v1/domains/${bDomain.body.id}/verify`)
        assert.equal(bVerify.status, 409)
        const late = new Api(s.url)
        await late.post('/v1/auth/signup', { email: 'c@third.example', password: 'correct-horse-battery-9' })
        const refused = await late.post('/v1/domains', { name: 'shared.example' })
        assert.equal(refused.status, 409)
        assert.equal(refused.body.code, 'DOMAIN_VERIFIED_ELSEWHERE')
        const { resolveRecipient } = await import('../../src/services/mailboxes/resolve.ts')
        const r = await resolveRecipient(s.postern.store, 'CEO@shared.example')
        assert.equal(r.kind, 'mailbox')
        assert.equal(
          r.kind === 'mailbox' && r.mailbox_id,
          aMbx.body.mailbox.id,
          "mail goes to the verified org's mailbox, never the pending one",
        )
        const pending = await resolveRecipient(s.postern.store, 'anyone@unverified.example')
        assert.deepEqual(pending, { kind: 'none', reason: 'not_hosted' })
      } finally {
        await s.close()
      }
    })

    it('checks limits, updates, and refuses to delete a domain with mailboxes unless forced', async () => {
      const s = await startTestServer(dialect)
      try {
        const api = await setupOwner(s)
        const bad = await api.post('/v1/domains', {
          name: 'limits.example',
          default_quota_mb: 500,
          max_quota_mb: 100,
        })
        assert.equal(bad.status, 422)
        assert.equal(bad.body.errors[0].field, 'default_quota_mb')
        const d = await api.post('/v1/domains', {
          name: 'limits.example',
          max_mailboxes: 2,
          default_quota_mb: 100,
          max_quota_mb: 200,
          total_quota_mb: 300,
          description: 'test',
        })
        assert.equal(d.status, 201)
        assert.equal(d.body.max_mailboxes, 2)
        await api.post('/v1/mailboxes', { domain: 'limits.example', local_part: 'a' })
        await api.post('/v1/mailboxes', { domain: 'limits.example', local_part: 'b' })
        assert.equal(
          (await api.patch('/v1/domains/limits.example', { max_mailboxes: 1 })).body.code,
          'LIMIT_BELOW_USE',
        )
        const up = await api.patch('/v1/domains/limits.example', {
          active: false,
          description: 'paused',
          max_mailboxes: 5,
        })
        assert.equal(up.status, 200)
        assert.equal(up.body.active, false)
        assert.equal(up.body.mailboxes, 2)
        assert.equal(up.body.quota_allocated_mb, 200)
        const refuse = await api.delete('/v1/domains/limits.example')
        assert.equal(refuse.status, 409)
        assert.equal(refuse.body.code, 'DOMAIN_NOT_EMPTY')
        assert.equal((await api.delete('/v1/domains/limits.example?force=true')).status, 204)
        assert.equal((await api.get('/v1/domains/limits.example')).status, 404)
        assert.equal((await s.postern.store.db.selectFrom('mailboxes').selectAll().execute()).length, 0)
        assert.equal((await s.postern.store.db.selectFrom('dkim_keys').selectAll().execute()).length, 0)
      } finally {
        await s.close()
      }
    })

    it('rotates DKIM keys, keeps the old ones published through the grace period, then retires them', async () => {
      const clock = manualClock(Date.now())
      const s = await startTestServer(dialect, {
        clock,
        env: { POSTERN_DOMAINS_DKIM_ROTATION_GRACE_DAYS: '2' },
      })
      try {
        const api = await setupOwner(s)
        const d = await api.post('/v1/domains', { name: 'rotate.example' })
        clock.advance(86_400_000)
        const rotated = await api.post('/v1/domains/rotate.example/dkim-keys')
        assert.equal(rotated.status, 201)
        const keys = (await api.get('/v1/domains/rotate.example')).body.dkim
        assert.deepEqual(keys.map((k: { status: string }) => k.status).sort(), [
          'active',
          'active',
          'retiring',
          'retiring',
        ])
        const dkimRecords = () =>
          api
            .get('/v1/domains/rotate.example/dns-records')
            .then((r) => r.body.records.filter((x: { purpose: string }) => x.purpose === 'dkim'))
        assert.equal((await dkimRecords()).length, 4, 'old keys stay published in the grace period')
        clock.advance(2 * 86_400_000 + 1)
        await s.postern.jobs.runNow('dkim-retire')
        const after = (await api.get('/v1/domains/rotate.example')).body.dkim
        assert.deepEqual(
          after
            .filter((k: { status: string }) => k.status === 'retired')
            .map((k: { id: string }) => k.id)
            .sort(),
          d.body.dkim.map((k: { id: string }) => k.id).sort(),
        )
        assert.equal((await dkimRecords()).length, 2)
      } finally {
        await s.close()
      }
    })

    it('re-checks verified domains and records DNS changes as events', async () => {
      const s = await startTestServer(dialect)
      try {
        const api = await setupOwner(s)
        const d = await verifiedDomain(api, s.dns, 'watched.example')
        await s.postern.jobs.runNow('domain-dns-recheck')
        const events = () =>
          s.postern.store.db
            .selectFrom('events')
            .selectAll()
            .where('type', '=', 'domain.dns_changed')
            .execute()
        assert.equal((await events()).length, 0, 'nothing changed')
        s.dns.set('_dmarc.watched.example', 'TXT', undefined)
        await s.postern.jobs.runNow('domain-dns-recheck')
        const ev = await events()
        assert.equal(ev.length, 1)
        assert.equal(ev[0]?.subject_id, d.id)
        const payload = JSON.parse(ev[0]?.payload ?? '{}')
        assert.deepEqual(
          payload.changes.map((c: { purpose: string; from: string; to: string }) => [
            c.purpose,
            c.from,
            c.to,
          ]),
          [['dmarc', 'ok', 'missing']],
        )
      } finally {
        await s.close()
      }
    })
  })
}
