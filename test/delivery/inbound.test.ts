// The delivery service without SMTP: recipient decisions, authentication and the DMARC policy,
// trace headers, one blob per org, threading, full-text indexing and group commit.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { sql } from 'kysely'
import {
  checkRecipient,
  deliverInbound,
  type InboundMessage,
  type LocalTarget,
} from '../../src/services/delivery/inbound.ts'
import { matchCondition, queryWords } from '../../src/store/fulltext.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { hostedOrg, mail, senderDomain } from './helpers.ts'

const session = { id: 'smtp_test', ip: '127.0.0.1', helo: 'client.sender.example', tls: null }

async function targetsOf(s: TestServer, address: string): Promise<LocalTarget[]> {
  const r = await checkRecipient(s.postern.delivery, address, { tls: false }, null)
  assert.ok(r.ok, `${address}: ${JSON.stringify(r)}`)
  return r.targets
}

function inbound(raw: string, mailFrom: string, to: string[], targets: LocalTarget[]): InboundMessage {
  return {
    raw: Buffer.from(raw),
    mailFrom,
    recipients: to.map((address) => ({ address, notify: null, orcpt: null })),
    targets,
    session,
  }
}

for (const dialect of DIALECTS) {
  describe(`inbound delivery (${dialect})`, () => {
    it('decides recipients: mailbox, plus-address, alias, catch-all, and each refusal', async () => {
      const s = await startTestServer(dialect)
      try {
        const { api, domain, ann, bob } = await hostedOrg(s)
        const check = (a: string, tls = false, size: number | null = null) =>
          checkRecipient(s.postern.delivery, a, { tls }, size)
        assert.deepEqual((await check(`ANN@${domain}`)).ok && (await check(`ANN@${domain}`)).ok, true)
        const plus = await check(`bob+lists@${domain}`)
        assert.ok(plus.ok && plus.targets[0]?.mailbox_id === bob)
        await api.post('/v1/aliases', {
          address: `team@${domain}`,
          targets: [`ann@${domain}`, `bob@${domain}`],
        })
        const team = await check(`team@${domain}`)
        assert.ok(team.ok)
        assert.deepEqual(team.ok && team.targets.map((t) => t.mailbox_id).sort(), [ann, bob].sort())
        assert.deepEqual(await check(`nobody@${domain}`), {
          ok: false,
          reason: 'unknown_recipient',
          detail: `nobody@${domain}: unknown recipient`,
        })
        assert.equal(
          (await check('someone@elsewhere.example')).ok === false &&
            ((await check('someone@elsewhere.example')) as { reason: string }).reason,
          'not_hosted',
        )
        await api.post('/v1/aliases', { address: `fwd@${domain}`, targets: ['partner@elsewhere.example'] })
        // An outside target is forwarded through the queue (test/e2e/forwarding.test.ts).
        const fwd = await check(`fwd@${domain}`)
        assert.ok(fwd.ok && fwd.targets.length === 0)
        assert.deepEqual(fwd.ok && fwd.forwards.map((f) => [f.kind, f.via, f.to]), [
          ['alias', `fwd@${domain}`, ['partner@elsewhere.example']],
        ])
        // Without forwarding wired in, such an alias is refused as a whole.
        const bare = await checkRecipient({ store: s.postern.store }, `fwd@${domain}`, { tls: false }, null)
        assert.equal((bare as { reason: string }).reason, 'external_target')
        await api.patch(`/v1/mailboxes/${bob}`, { active: false })
        assert.equal(((await check(`bob@${domain}`)) as { reason: string }).reason, 'mailbox_disabled')
        await api.patch(`/v1/mailboxes/${ann}`, { tls_enforce_in: true })
        assert.equal(((await check(`ann@${domain}`)) as { reason: string }).reason, 'tls_required')
        assert.equal((await check(`ann@${domain}`, true)).ok, true)
        await api.patch(`/v1/mailboxes/${ann}`, { quota_mb: 1 })
        assert.equal(
          ((await check(`ann@${domain}`, true, 2_000_000)) as { reason: string }).reason,
          'quota_full',
        )
        await api.post('/v1/aliases', { address: `@${domain}`, targets: [`ann@${domain}`] })
        const caught = await check(`whoever@${domain}`, true)
        assert.ok(caught.ok && caught.targets[0]?.mailbox_id === ann)
      } finally {
        await s.close()
      }
    })

    it('authenticates signed mail, prepends trace headers, strips forged results, stores one blob per org', async () => {
      const s = await startTestServer(dialect)
      try {
        const { domain, ann, bob } = await hostedOrg(s)
        const sender = senderDomain(s.dns, 'sender.example', 'reject')
        const forged = 'Authentication-Results: mx.postern.test; dkim=pass; spf=pass; dmarc=pass'
        const foreign = 'Authentication-Results: other.example; spf=pass'
        const raw = await sender.sign(
          mail({
            from: 'alice@sender.example',
            to: `ann@${domain}`,
            subject: 'Quarterly numbers',
            headers: [forged, foreign],
          }),
        )
        const targets = [...(await targetsOf(s, `ann@${domain}`)), ...(await targetsOf(s, `bob@${domain}`))]
        const r = await deliverInbound(
          s.postern.delivery,
          inbound(raw, 'alice@sender.example', [`ann@${domain}`, `bob@${domain}`], targets),
        )
        assert.ok(r.ok, JSON.stringify(r))
        assert.deepEqual(
          r.stored.map((x) => x.folder),
          ['inbox', 'inbox'],
        )
        const rows = await s.postern.store.db
          .selectFrom('messages')
          .selectAll()
          .orderBy('mailbox_id')
          .execute()
        assert.deepEqual(rows.map((x) => x.mailbox_id).sort(), [ann, bob].sort())
        assert.equal(rows[0]?.blob_sha256, rows[1]?.blob_sha256, 'one blob for both mailboxes of the org')
        assert.equal(rows[0]?.auth_results, 'spf=pass dkim=pass dmarc=pass')
        assert.equal(rows[0]?.subject, 'Quarterly numbers')
        assert.equal(rows[0]?.from_address, 'alice@sender.example')
        const blob = await s.postern.store.db.selectFrom('blobs').selectAll().executeTakeFirstOrThrow()
        assert.equal(blob.refcount, 2)
        const stored = (
          await s.postern.blobs.get(rows[0]?.org_id as string, rows[0]?.blob_sha256 as string)
        ).toString()
        const head = stored.slice(0, stored.indexOf('\r\n\r\n'))
        assert.match(
          head,
          /^Received: from client\.sender\.example \(\[127\.0\.0\.1\]\)\r\n\tby mx\.postern\.test \(Postern\) with ESMTP id /,
        )
        assert.match(head, /Authentication-Results: mx\.postern\.test;[\s\S]*dkim=pass/)
        assert.ok(!head.includes(forged), 'a forged result with our authserv-id is removed')
        assert.ok(head.includes(foreign), 'results of other servers stay')
        const mbx = await s.postern.store.db.selectFrom('mailboxes').select(['id', 'used_bytes']).execute()
        assert.ok(
          mbx.every((m) => m.used_bytes === rows[0]?.size),
          'quota use counts the stored size',
        )
        const folder = await s.postern.store.db
          .selectFrom('folder_messages as fm')
          .innerJoin('folders as f', 'f.id', 'fm.folder_id')
          .select(['f.name', 'fm.uid', 'fm.modseq', 'f.uidnext', 'f.highestmodseq'])
          .where('fm.message_id', '=', rows[0]?.id as string)
          .executeTakeFirstOrThrow()
        assert.deepEqual([folder.name, folder.uid, folder.uidnext], ['INBOX', 1, 2])
        assert.ok(folder.modseq > 0 && folder.highestmodseq >= folder.modseq)
        const events = await s.postern.store.db
          .selectFrom('events')
          .selectAll()
          .where('type', '=', 'email.received')
          .execute()
        assert.equal(events.length, 2)
      } finally {
        await s.close()
      }
    })

    it('refuses DMARC reject failures, files quarantine failures in Junk, and refuses loops', async () => {
      const s = await startTestServer(dialect)
      try {
        const { domain } = await hostedOrg(s)
        const strict = senderDomain(s.dns, 'strict.example', 'reject')
        const careful = senderDomain(s.dns, 'careful.example', 'quarantine')
        const targets = await targetsOf(s, `ann@${domain}`)
        const tamper = (signed: string) => signed.replace('This is the body.', 'This is a forged body.')
        const rejected = await deliverInbound(
          s.postern.delivery,
          inbound(
            tamper(
              await strict.sign(
                mail({ from: 'ceo@strict.example', to: `ann@${domain}`, subject: 'Wire money' }),
              ),
            ),
            'x@elsewhere.example',
            [`ann@${domain}`],
            targets,
          ),
        )
        assert.deepEqual(rejected.ok === false && rejected.reason, 'dmarc_reject')
        const junked = await deliverInbound(
          s.postern.delivery,
          inbound(
            tamper(
              await careful.sign(
                mail({ from: 'news@careful.example', to: `ann@${domain}`, subject: 'Offer' }),
              ),
            ),
            'x@elsewhere.example',
            [`ann@${domain}`],
            targets,
          ),
        )
        assert.ok(junked.ok)
        assert.equal(junked.ok && junked.stored[0]?.folder, 'junk')
        const loop = mail({
          from: 'a@b.example',
          to: `ann@${domain}`,
          subject: 'Loop',
          headers: Array.from(
            { length: 51 },
            (_, i) => `Received: from hop${i} by hop${i + 1}; Sat, 21 Nov 2026 08:00:00 +0000`,
          ),
        })
        const looped = await deliverInbound(
          s.postern.delivery,
          inbound(loop, 'a@b.example', [`ann@${domain}`], targets),
        )
        assert.deepEqual(looped.ok === false && looped.reason, 'loop')
        assert.equal(
          (await s.postern.store.db.selectFrom('messages').selectAll().execute()).length,
          1,
          'only the quarantined message was stored',
        )
      } finally {
        await s.close()
      }
    })

    it('threads by references and by subject, indexes text for search, and commits concurrent deliveries in batches', async () => {
      const s = await startTestServer(dialect, { env: { POSTERN_SMTP_VERIFY_AUTH: 'false' } })
      try {
        const { domain } = await hostedOrg(s)
        const targets = await targetsOf(s, `ann@${domain}`)
        const first = mail({
          from: 'a@x.example',
          to: `ann@${domain}`,
          subject: 'Planning the offsite',
          body: 'Shall we book the lighthouse venue?',
        }).replace(/Message-ID: <[^>]+>/, 'Message-ID: <root@x.example>')
        const reply = mail({
          from: 'b@y.example',
          to: `ann@${domain}`,
          subject: 'Totally different subject',
          headers: ['In-Reply-To: <root@x.example>', 'References: <root@x.example>'],
        })
        const bySubject = mail({
          from: 'c@z.example',
          to: `ann@${domain}`,
          subject: 'Re: [team] RE: Planning the offsite',
        })
        const other = mail({ from: 'd@w.example', to: `ann@${domain}`, subject: 'Lunch' })
        for (const m of [first, reply, bySubject, other])
          assert.ok(
            (await deliverInbound(s.postern.delivery, inbound(m, 'x@x.example', [`ann@${domain}`], targets)))
              .ok,
          )
        const rows = await s.postern.store.db
          .selectFrom('messages')
          .select(['subject', 'thread_id'])
          .execute()
        const thread = (subject: string) => rows.find((r) => r.subject === subject)?.thread_id
        assert.equal(thread('Totally different subject'), thread('Planning the offsite'))
        assert.equal(thread('Re: [team] RE: Planning the offsite'), thread('Planning the offsite'))
        assert.notEqual(thread('Lunch'), thread('Planning the offsite'))
        const t = await s.postern.store.db
          .selectFrom('threads')
          .selectAll()
          .where('id', '=', thread('Lunch') as string)
          .executeTakeFirstOrThrow()
        assert.equal(t.message_count, 1)
        const hits = await s.postern.store.db
          .selectFrom('messages as m')
          .select('m.subject')
          .where(matchCondition(s.postern.store.dialect, queryWords('LIGHTHOUSE ven')))
          .execute()
        assert.deepEqual(
          hits.map((h) => h.subject),
          ['Planning the offsite'],
        )

        const burst = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            deliverInbound(
              s.postern.delivery,
              inbound(
                mail({ from: 'bulk@x.example', to: `ann@${domain}`, subject: `Bulk ${i}` }),
                'bulk@x.example',
                [`ann@${domain}`],
                targets,
              ),
            ),
          ),
        )
        assert.ok(burst.every((r) => r.ok))
        const uids = await s.postern.store.db.selectFrom('folder_messages').select('uid').execute()
        assert.equal(new Set(uids.map((u) => u.uid)).size, 24, 'every membership has its own UID')
        const stats = s.postern.delivery.committer.stats
        assert.ok(stats.jobs >= 24 && stats.batches <= stats.jobs)
        const count = await sql<{ n: number }>`select count(*) as n from messages`.execute(s.postern.store.db)
        assert.equal(Number(count.rows[0]?.n), 24)
      } finally {
        await s.close()
      }
    })
  })
}
