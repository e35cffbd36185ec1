// imapflow resynchronising with QRESYNC (RFC 7162 section 3.2.5) after changes made while it
// was away: flags changed by another session and by the HTTP API, messages expunged, new mail
// delivered over SMTP. The resync must report exactly those changes: the changed flags as
// FETCH responses, the expunged UIDs as VANISHED (EARLIER), and nothing about untouched mail.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ImapFlow } from 'imapflow'
import { DIALECTS } from '../helpers/dialects.ts'
import { type ImapFixture, imapFixture, PASSWORD, smtpDeliver } from './helpers.ts'

function client(f: ImapFixture): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port: f.imapsPort,
    secure: true,
    tls: { rejectUnauthorized: false },
    auth: { user: f.ann.address, pass: PASSWORD },
    logger: false,
    qresync: true,
  })
}

function message(n: number): string {
  return [
    'From: sender@a.example',
    'To: ann@hosted.example',
    `Subject: resync ${n}`,
    `Message-ID: <resync-${n}@a.example>`,
    '',
    `body ${n}`,
    '',
  ].join('\r\n')
}

interface Seen {
  uidValidity: bigint
  highestModseq: bigint
  uidNext: number
  uids: number[]
}

for (const dialect of DIALECTS) {
  describe(`QRESYNC resync with imapflow (${dialect})`, () => {
    it('gets exactly the flag changes, expunges and new mail made while it was away', async () => {
      const f = await imapFixture(dialect)
      try {
        // First visit: ten messages, remember the folder state as a caching client would.
        const first = client(f)
        await first.connect()
        for (let n = 1; n <= 10; n++) await first.append('INBOX', message(n), [])
        let seen: Seen
        {
          const box = await first.mailboxOpen('INBOX')
          assert.ok(first.enabled.has('QRESYNC'), 'QRESYNC enabled')
          const uids: number[] = []
          for await (const m of first.fetch('1:*', { uid: true, flags: true })) uids.push(m.uid)
          assert.equal(uids.length, 10)
          seen = {
            uidValidity: BigInt(box.uidValidity),
            highestModseq: BigInt(box.highestModseq ?? 0),
            uidNext: box.uidNext,
            uids,
          }
          assert.ok(seen.highestModseq > 0n, 'HIGHESTMODSEQ reported')
        }
        await first.logout()

        // While it is away: another IMAP session flags two and expunges two; the API flags
        // one more; SMTP delivers one new message.
        const other = client(f)
        await other.connect()
        const [u1, u2, u3, u4, u5, u6] = seen.uids
        await other.mailboxOpen('INBOX')
        await other.messageFlagsAdd(`${u2}`, ['\\Flagged'], { uid: true })
        await other.messageFlagsAdd(`${u3}`, ['\\Seen', '$Work'], { uid: true })
        await other.messageDelete(`${u4},${u5}`, { uid: true })
        await other.logout()
        const list = await f.api.get(`/v1/messages?mailbox=${f.ann.id}&limit=100`)
        assert.equal(list.status, 200, list.text)
        const viaApi = (list.body.data as { id: string; subject: string }[]).find(
          (m) => m.subject === 'resync 6',
        )
        assert.ok(viaApi, 'message 6 listed by the API')
        const patched = await f.api.patch(`/v1/messages/${viaApi.id}`, { seen: true })
        assert.equal(patched.status, 200, patched.text)
        await smtpDeliver(f.smtpPort, 'sender@a.example', f.ann.address, message(11))

        // Second visit: SELECT INBOX (QRESYNC (uidvalidity modseq known-uids)).
        const again = client(f)
        const vanished: number[] = []
        const flagged = new Map<number, string[]>()
        again.on('expunge', (e: { uid?: number; vanished: boolean; earlier?: boolean }) => {
          assert.ok(e.vanished && e.earlier, 'expunges arrive as VANISHED (EARLIER)')
          if (e.uid) vanished.push(e.uid)
        })
        again.on('flags', (e: { uid?: number; flags: Set<string> }) => {
          if (e.uid) flagged.set(e.uid, [...e.flags].sort())
        })
        await again.connect()
        const box = await again.mailboxOpen('INBOX', {
          changedSince: seen.highestModseq,
          uidValidity: seen.uidValidity,
        } as never)
        assert.equal((box as { qresync?: boolean }).qresync, true, 'the server honoured QRESYNC')
        assert.equal(BigInt(box.uidValidity), seen.uidValidity)
        assert.ok(BigInt(box.highestModseq ?? 0) > seen.highestModseq, 'HIGHESTMODSEQ moved on')
        assert.deepEqual(
          vanished.sort((a, b) => a - b),
          [u4, u5],
          'exactly the expunged UIDs',
        )
        // The new message is also reported (its MODSEQ is above the client's); untouched
        // messages (u1 and the rest) are not.
        const newUids = [...flagged.keys()].filter((u) => u >= seen.uidNext)
        assert.equal(newUids.length, 1, 'the new message is reported once')
        const newUid = newUids[0] as number
        flagged.delete(newUid)
        assert.deepEqual(
          [...flagged.entries()].sort((a, b) => a[0] - b[0]),
          [
            [u2, ['\\Flagged']],
            [u3, ['$Work', '\\Seen']],
            [u6, ['\\Seen']],
          ],
          'exactly the changed flags',
        )
        assert.ok(!flagged.has(u1 as number))
        assert.equal(box.exists, 9, '10 - 2 expunged + 1 delivered')

        // The new mail is fetched by UID from the remembered UIDNEXT.
        const fresh: string[] = []
        for await (const m of again.fetch(`${seen.uidNext}:*`, { uid: true, envelope: true }, { uid: true }))
          fresh.push(m.envelope?.subject ?? '')
        assert.deepEqual(fresh, ['resync 11'])

        // A UID FETCH with CHANGEDSINCE and VANISHED from the old MODSEQ agrees.
        const changed: number[] = []
        for await (const m of again.fetch(
          '1:*',
          { uid: true, flags: true },
          { uid: true, changedSince: seen.highestModseq },
        ))
          changed.push(m.uid)
        assert.deepEqual(
          changed.sort((a, b) => a - b),
          [u2, u3, u6, newUid],
        )
        await again.logout()

        // A client whose UIDVALIDITY is stale gets no incremental answer.
        const stale = client(f)
        const staleVanished: number[] = []
        stale.on('expunge', (e: { uid?: number }) => e.uid && staleVanished.push(e.uid))
        await stale.connect()
        const staleBox = await stale.mailboxOpen('INBOX', {
          changedSince: seen.highestModseq,
          uidValidity: seen.uidValidity + 1n,
        } as never)
        assert.notEqual((staleBox as { qresync?: boolean }).qresync, true)
        assert.deepEqual(staleVanished, [])
        await stale.logout()
      } finally {
        await f.close()
      }
    })
  })
}
