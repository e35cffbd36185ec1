// IMAP over a real socket, byte for byte: the greeting, log-in rules, SELECT, APPEND, FETCH,
// STORE, SEARCH, COPY/MOVE with UIDPLUS, EXPUNGE, IDLE after an SMTP delivery, STARTTLS and
// port 993, and bad input (BAD and the session goes on).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { connect as tlsConnect } from 'node:tls'
import { mail } from '../delivery/helpers.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { imapFixture, PASSWORD, RawImap, smtpDeliver } from './helpers.ts'

const PRE = 'IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE'
const POST = `${PRE} UIDPLUS MOVE SPECIAL-USE CHILDREN UNSELECT CONDSTORE QRESYNC STATUS=SIZE ESEARCH LIST-EXTENDED LIST-STATUS BINARY SORT SORT=DISPLAY THREAD=REFERENCES QUOTA QUOTA=RES-STORAGE APPENDLIMIT=52428800`

const MSG =
  'From: Ann <ann@a.example>\r\nTo: bob@b.example\r\nSubject: Hello\r\nDate: Sat, 21 Nov 2026 08:00:00 +0000\r\nMessage-ID: <m1@a.example>\r\n\r\nHi Bob,\r\nbinary-exact: \u00e9\r\n'

for (const dialect of DIALECTS) {
  describe(`IMAP transcripts (${dialect})`, () => {
    it('greets, logs in under the rules and answers BAD to nonsense without losing the session', async () => {
      const f = await imapFixture(dialect)
      try {
        const { c, greeting } = await RawImap.open(f.imapPort)
        assert.equal(greeting, `* OK [CAPABILITY ${PRE} STARTTLS AUTH=PLAIN] Postern IMAP ready.\r\n`)
        assert.equal(
          await c.cmd('a1', 'CAPABILITY'),
          `* CAPABILITY ${PRE} STARTTLS AUTH=PLAIN\r\na1 OK CAPABILITY completed.\r\n`,
        )
        assert.equal(await c.cmd('a2', 'FROBNICATE'), 'a2 BAD Unknown command FROBNICATE.\r\n')
        assert.equal(await c.cmd('a3', 'SELECT INBOX'), 'a3 BAD Log in first.\r\n')
        assert.match(await c.cmd('a4', 'LOGIN'), /^a4 BAD /)
        assert.equal(
          await c.cmd('a5', `LOGIN ${f.ann.address} wrong-password`),
          'a5 NO [AUTHENTICATIONFAILED] Invalid name or password.\r\n',
        )
        assert.equal(
          await c.cmd('a6', `LOGIN "${f.ann.address}" "${PASSWORD}"`),
          `a6 OK [CAPABILITY ${POST}] Logged in.\r\n`,
        )
        assert.equal(await c.cmd('a7', 'LOGIN x y'), 'a7 BAD Not valid in this state.\r\n')
        assert.equal(await c.cmd('a8', 'NOOP'), 'a8 OK NOOP completed.\r\n')
        assert.equal(
          await c.cmd('a9', 'NAMESPACE'),
          '* NAMESPACE (("" "/")) NIL NIL\r\na9 OK NAMESPACE completed.\r\n',
        )
        assert.equal(
          await c.cmd('b1', 'ENABLE CONDSTORE'),
          '* ENABLED CONDSTORE\r\nb1 OK ENABLE completed.\r\n',
        )
        assert.equal(
          await c.cmd('b2', 'ID ("name" "test")'),
          '* ID ("name" "Postern" "vendor" "Postern")\r\nb2 OK ID completed.\r\n',
        )
        assert.equal(await c.cmd('b3', 'LOGOUT'), '* BYE Logging out.\r\nb3 OK LOGOUT completed.\r\n')
        c.close()
      } finally {
        await f.close()
      }
    })

    it('tells a mailbox that must change its password why it cannot log in, and locks out guessing', async () => {
      const f = await imapFixture(dialect, { env: { POSTERN_AUTH_LOCKOUT_AFTER: '3' } })
      try {
        const r = await f.api.patch(`/v1/mailboxes/${f.ann.id}`, { force_pw_update: true })
        assert.equal(r.status, 200, r.text)
        const { c } = await RawImap.open(f.imapPort)
        assert.equal(
          await c.cmd('f1', `LOGIN ${f.ann.address} ${PASSWORD}`),
          'f1 NO [ALERT] This mailbox must change its password before mail clients may log in: set a new one in the web app or ask your administrator.\r\n',
        )
        // Wrong passwords for bob count against the shared lock-out: then even the right one waits.
        let locked = false
        for (let i = 0; i < 3 && !locked; i++) {
          const r = await c.cmd(`g${i}`, `LOGIN ${f.bob.address} wrong-${i}`, 15_000)
          assert.match(r, /NO \[(AUTHENTICATIONFAILED|UNAVAILABLE)\]/)
          locked = r.includes('UNAVAILABLE')
        }
        assert.match(
          await c.cmd('g9', `LOGIN ${f.bob.address} ${PASSWORD}`, 15_000),
          /^g9 NO \[UNAVAILABLE\] Too many failed log-ins/,
        )
        c.close()
      } finally {
        await f.close()
      }
    })

    it('authenticates with AUTHENTICATE PLAIN, with and without an initial response', async () => {
      const f = await imapFixture(dialect)
      try {
        const plain = Buffer.from(`\0${f.ann.address}\0${PASSWORD}`).toString('base64')
        const { c } = await RawImap.open(f.imapPort)
        c.write('p1 AUTHENTICATE PLAIN\r\n')
        assert.equal(await c.readLine(), '+ \r\n')
        c.write(`${plain}\r\n`)
        assert.match(await c.until('p1'), /^p1 OK \[CAPABILITY .*\] Logged in\.\r\n$/)
        c.close()
        const { c: d } = await RawImap.open(f.imapPort)
        assert.match(await d.cmd('p2', `AUTHENTICATE PLAIN ${plain}`), /^p2 OK /)
        d.close()
        const { c: e } = await RawImap.open(f.imapPort)
        e.write('p3 AUTHENTICATE PLAIN\r\n')
        await e.readLine()
        e.write('*\r\n')
        assert.equal(await e.until('p3'), 'p3 BAD Authentication cancelled.\r\n')
        e.close()
      } finally {
        await f.close()
      }
    })

    it('refuses plain-text log-in off loopback rules until STARTTLS, and serves port 993', async () => {
      const f = await imapFixture(dialect, { env: { POSTERN_AUTH_PLAINTEXT_ALLOWED_FROM: '192.0.2.0/24' } })
      try {
        const { c, greeting } = await RawImap.open(f.imapPort)
        assert.equal(greeting, `* OK [CAPABILITY ${PRE} STARTTLS LOGINDISABLED] Postern IMAP ready.\r\n`)
        assert.equal(
          await c.cmd('t1', `LOGIN ${f.ann.address} ${PASSWORD}`),
          't1 NO [PRIVACYREQUIRED] Log-in over an unencrypted connection is not allowed: use STARTTLS or port 993.\r\n',
        )
        // Bytes sent after STARTTLS in the same packet must be dropped (command injection).
        c.write('t2 STARTTLS\r\nt3 CAPABILITY\r\n')
        assert.equal(await c.readLine(), 't2 OK Begin TLS negotiation now.\r\n')
        const secure = tlsConnect({ socket: c.socket, rejectUnauthorized: false })
        await new Promise<void>((resolve, reject) => {
          secure.once('secureConnect', () => resolve())
          secure.once('error', reject)
        })
        let got = ''
        secure.on('data', (d) => {
          got += d.toString('latin1')
        })
        secure.write('t4 CAPABILITY\r\n')
        for (let i = 0; i < 100 && !got.includes('t4 OK'); i++) await new Promise((r) => setTimeout(r, 20))
        assert.equal(
          got,
          `* CAPABILITY ${PRE} AUTH=PLAIN\r\nt4 OK CAPABILITY completed.\r\n`,
          't3 was never run',
        )
        secure.destroy()

        const { c: t, greeting: g2 } = await RawImap.open(f.imapsPort, true)
        assert.equal(g2, `* OK [CAPABILITY ${PRE} AUTH=PLAIN] Postern IMAP ready.\r\n`)
        await t.login(f.ann.address)
        t.close()
      } finally {
        await f.close()
      }
    })

    it('selects, appends, fetches, stores, searches, copies, moves and expunges', async () => {
      const f = await imapFixture(dialect)
      try {
        const { c } = await RawImap.open(f.imapPort)
        await c.login(f.ann.address)
        const sel = await c.cmd('s1', 'SELECT INBOX')
        const uidvalidity = /UIDVALIDITY (\d+)/.exec(sel)?.[1]
        assert.equal(
          sel,
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n' +
            '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n' +
            '* 0 EXISTS\r\n* 0 RECENT\r\n' +
            `* OK [UIDVALIDITY ${uidvalidity}] UIDs valid.\r\n` +
            '* OK [UIDNEXT 1] Predicted next UID.\r\n' +
            `* OK [HIGHESTMODSEQ ${/HIGHESTMODSEQ (\d+)/.exec(sel)?.[1]}] Highest\r\n` +
            's1 OK [READ-WRITE] SELECT completed.\r\n',
        )
        const bytes = Buffer.from(MSG, 'utf8')
        c.write(`s2 APPEND INBOX (\\Flagged) "02-Dec-2026 10:00:00 +0100" {${bytes.length}}\r\n`)
        assert.equal(await c.readLine(), '+ Ready for literal data\r\n')
        c.write(Buffer.concat([bytes, Buffer.from('\r\n')]))
        assert.equal(
          await c.until('s2'),
          `* 1 EXISTS\r\n* 1 RECENT\r\ns2 OK [APPENDUID ${uidvalidity} 1] APPEND completed.\r\n`,
        )
        // LITERAL+: no continuation.
        c.write(`s3 APPEND INBOX {${bytes.length}+}\r\n`)
        c.write(Buffer.concat([bytes, Buffer.from('\r\n')]))
        assert.match(
          await c.until('s3'),
          /\* 2 EXISTS\r\n\* 2 RECENT\r\ns3 OK \[APPENDUID \d+ 2\] APPEND completed\.\r\n$/,
        )

        const fetched = await c.cmd('s4', 'FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])')
        assert.equal(
          fetched,
          `* 1 FETCH (FLAGS (\\Flagged \\Recent) INTERNALDATE "02-Dec-2026 09:00:00 +0000" RFC822.SIZE ${bytes.length} BODY[] {${bytes.length}}\r\n${bytes.toString('latin1')})\r\ns4 OK FETCH completed.\r\n`,
        )
        assert.equal(
          await c.cmd('s5', 'UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (subject)])'),
          '* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: Hello\r\n\r\n)\r\n' +
            '* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: Hello\r\n\r\n)\r\n' +
            's5 OK UID FETCH completed.\r\n',
        )
        assert.equal(
          await c.cmd('s6', 'FETCH 2 BODY[TEXT]<0.3>'),
          '* 2 FETCH (BODY[TEXT]<0> {3}\r\nHi  FLAGS (\\Seen \\Recent))\r\ns6 OK FETCH completed.\r\n',
        )
        assert.equal(
          await c.cmd('s7', 'STORE 1 +FLAGS (\\Deleted $Work)'),
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n' +
            '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] Flags permitted.\r\n' +
            '* 1 FETCH (FLAGS (\\Flagged \\Deleted $Work \\Recent))\r\ns7 OK STORE completed.\r\n',
        )
        assert.equal(await c.cmd('s8', 'SEARCH UNSEEN'), '* SEARCH 1\r\ns8 OK SEARCH completed.\r\n')
        assert.equal(
          await c.cmd('s9', 'UID SEARCH OR KEYWORD $Work SEEN SUBJECT hello'),
          '* SEARCH 1 2\r\ns9 OK UID SEARCH completed.\r\n',
        )
        assert.equal(await c.cmd('t1', 'SEARCH BODY bob'), '* SEARCH 1 2\r\nt1 OK SEARCH completed.\r\n')
        assert.equal(await c.cmd('t2', 'SEARCH NOT FROM ann'), '* SEARCH\r\nt2 OK SEARCH completed.\r\n')
        assert.equal(
          await c.cmd('t3', 'SEARCH CHARSET KOI8-R ALL'),
          't3 NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset.\r\n',
        )
        assert.equal(await c.cmd('t4', 'CREATE Work/2026'), 't4 OK CREATE completed.\r\n')
        assert.equal(
          await c.cmd('t5', 'LIST "" "Work*"'),
          '* LIST (\\HasChildren) "/" "Work"\r\n* LIST (\\HasNoChildren) "/" "Work/2026"\r\nt5 OK LIST completed.\r\n',
        )
        const target = await c.cmd('t6', 'STATUS Work/2026 (UIDVALIDITY)')
        const targetValidity = /UIDVALIDITY (\d+)/.exec(target)?.[1]
        assert.equal(
          await c.cmd('t7', 'COPY 2 Work/2026'),
          `t7 OK [COPYUID ${targetValidity} 2 1] COPY completed.\r\n`,
        )
        assert.equal(await c.cmd('t8', 'COPY 2 Nowhere'), 't8 NO [TRYCREATE] No folder named Nowhere.\r\n')
        assert.equal(
          await c.cmd('t9', 'UID MOVE 2 Work'),
          `* OK [COPYUID ${/UIDVALIDITY (\d+)/.exec(await c.cmd('u0', 'STATUS Work (UIDVALIDITY)'))?.[1]} 2 1] Moved.\r\n* 2 EXPUNGE\r\nt9 OK MOVE completed.\r\n`,
        )
        assert.equal(await c.cmd('u1', 'EXPUNGE'), '* 1 EXPUNGE\r\nu1 OK EXPUNGE completed.\r\n')
        assert.equal(
          await c.cmd('u2', 'STATUS Work/2026 (MESSAGES UNSEEN UIDNEXT)'),
          '* STATUS "Work/2026" (MESSAGES 1 UNSEEN 0 UIDNEXT 2)\r\nu2 OK STATUS completed.\r\n',
        )
        assert.equal(
          await c.cmd('u3', 'LIST "" "*"'),
          [
            '* LIST (\\HasNoChildren) "/" "INBOX"',
            '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
            '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
            '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
            '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
            '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
            '* LIST (\\HasChildren) "/" "Work"',
            '* LIST (\\HasNoChildren) "/" "Work/2026"',
            'u3 OK LIST completed.',
            '',
          ].join('\r\n'),
        )
        c.close()
      } finally {
        await f.close()
      }
    })

    it('reports an SMTP delivery and an API change to an IDLE session at once', async () => {
      const f = await imapFixture(dialect)
      try {
        const { c } = await RawImap.open(f.imapPort)
        await c.login(f.ann.address)
        await c.cmd('i1', 'SELECT INBOX')
        c.write('i2 IDLE\r\n')
        assert.equal(await c.readLine(), '+ idling\r\n')
        await smtpDeliver(
          f.smtpPort,
          'someone@sender.example',
          f.ann.address,
          mail({ from: 'someone@sender.example', to: f.ann.address, subject: 'Ping' }),
        )
        assert.equal(await c.readLine(10_000), '* 1 EXISTS\r\n')
        assert.equal(await c.readLine(), '* 1 RECENT\r\n')
        const list = await f.api.get(`/v1/messages?mailbox=${f.ann.id}`)
        const id = list.body.data[0].id as string
        const patched = await f.api.patch(`/v1/messages/${id}`, {
          keywords: { add: ['$Label1'] },
          seen: true,
        })
        assert.ok(patched.status < 300, patched.text)
        assert.equal(
          await c.readLine(10_000),
          '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)\r\n',
        )
        assert.match(await c.readLine(), /^\* OK \[PERMANENTFLAGS \(.*\$Label1 \\\*\)\] /)
        assert.match(await c.readLine(), /^\* 1 FETCH \(UID 1 FLAGS \(.*\\Seen.*\)\)\r\n$/)
        c.write('DONE\r\n')
        assert.equal(await c.until('i2'), 'i2 OK IDLE terminated.\r\n')
        c.close()
      } finally {
        await f.close()
      }
    })

    it('refuses oversized, malformed and hostile input and carries on', async () => {
      const f = await imapFixture(dialect, { env: { POSTERN_IMAP_MAX_COMMAND_BYTES: '4096' } })
      try {
        const { c } = await RawImap.open(f.imapPort)
        await c.login(f.ann.address)
        await c.cmd('h0', 'SELECT INBOX')
        c.write('h1 LOGIN {999999}\r\n')
        assert.equal(await c.until('h1'), 'h1 BAD [TOOBIG] Literal too large.\r\n')
        c.write('h2 CREATE {9999}\r\n')
        assert.equal(await c.until('h2'), 'h2 BAD [TOOBIG] Literal too large.\r\n')
        c.write(`h3 APPEND INBOX {${60 * 1024 * 1024}}\r\n`)
        assert.equal(
          await c.until('h3'),
          'h3 NO [TOOBIG] The message is larger than the limit of 52428800 bytes.\r\n',
        )
        assert.match(await c.cmd('h4', `SEARCH ${'NOT '.repeat(100)}ALL`), /^h4 BAD .*nested too deeply/i)
        assert.match(await c.cmd('h5', `SEARCH ${'('.repeat(60)}ALL${')'.repeat(60)}`), /^h5 BAD /)
        assert.match(
          await c.cmd('h6', `FETCH ${Array.from({ length: 20_000 }, (_, i) => i + 1).join(',')} FLAGS`),
          /^h6 BAD /,
        )
        assert.match(await c.cmd('h7', 'CREATE "&Jjo!"'), /^h7 BAD /)
        assert.match(await c.cmd('h8', 'FETCH 1 (FLAGS'), /^h8 BAD /)
        assert.match(await c.cmd('h9', 'FETCH 99 FLAGS'), /^h9 BAD /)
        assert.match(await c.cmd('j1', 'STORE 1:* +FLAGS (\\Seen'), /^j1 BAD /)
        assert.match(await c.cmd('j2', `NOOP ${'x'.repeat(70_000)}`), /^j2 BAD \[TOOBIG\] /)
        assert.equal(await c.cmd('j3', 'NOOP'), 'j3 OK NOOP completed.\r\n', 'the session survived it all')
        c.close()
      } finally {
        await f.close()
      }
    })

    it('CONDSTORE and QRESYNC: MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE, VANISHED and a resync', async () => {
      const f = await imapFixture(dialect)
      try {
        const { c } = await RawImap.open(f.imapPort)
        await c.login(f.ann.address)
        for (let i = 0; i < 4; i++) {
          const bytes = Buffer.from(MSG.replace('<m1@', `<q${i}@`))
          c.write(`a${i} APPEND INBOX {${bytes.length}+}\r\n`)
          c.write(Buffer.concat([bytes, Buffer.from('\r\n')]))
          await c.until(`a${i}`)
        }
        assert.equal(await c.cmd('e1', 'ENABLE QRESYNC'), '* ENABLED QRESYNC\r\ne1 OK ENABLE completed.\r\n')
        const sel = await c.cmd('s1', 'SELECT INBOX')
        const validity = Number(/UIDVALIDITY (\d+)/.exec(sel)?.[1])
        const highest = Number(/HIGHESTMODSEQ (\d+)/.exec(sel)?.[1])
        const fetched = await c.cmd('f1', 'FETCH 1:* (UID MODSEQ)')
        const modseqs = [...fetched.matchAll(/MODSEQ \((\d+)\)/g)].map((m) => Number(m[1]))
        assert.equal(modseqs.length, 4)
        assert.equal(Math.max(...modseqs), highest)
        const st = await c.cmd('s2', `STORE 1 (UNCHANGEDSINCE ${highest}) +FLAGS (\\Flagged)`)
        const m1 = Number(/MODSEQ \((\d+)\)/.exec(st)?.[1])
        assert.ok(m1 > highest)
        assert.equal(
          st,
          `* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (${m1}))\r\ns2 OK STORE completed.\r\n`,
        )
        assert.equal(
          await c.cmd('s3', `UID STORE 1,2 (UNCHANGEDSINCE ${modseqs[1]}) +FLAGS.SILENT (\\Seen)`),
          `* 2 FETCH (UID 2 MODSEQ (${m1 + 1}))\r\ns3 OK [MODIFIED 1] Conditional STORE failed for some messages.\r\n`,
        )
        assert.equal(
          await c.cmd('f2', `UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${highest})`),
          `* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) MODSEQ (${m1}))\r\n* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ (${m1 + 1}))\r\nf2 OK UID FETCH completed.\r\n`,
        )
        assert.equal(
          await c.cmd('q1', `SEARCH MODSEQ ${m1}`),
          `* SEARCH 1 2 (MODSEQ ${m1 + 1})\r\nq1 OK SEARCH completed.\r\n`,
        )
        await c.cmd('x1', 'STORE 3 +FLAGS.SILENT (\\Deleted)')
        assert.equal(await c.cmd('x2', 'EXPUNGE'), '* VANISHED 3\r\nx2 OK EXPUNGE completed.\r\n')
        assert.equal(
          await c.cmd('x3', `UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${m1 + 1} VANISHED)`),
          '* VANISHED (EARLIER) 3\r\nx3 OK UID FETCH completed.\r\n',
        )
        const h2 = Number(/HIGHESTMODSEQ (\d+)/.exec(await c.cmd('x4', 'STATUS INBOX (HIGHESTMODSEQ)'))?.[1])
        c.close()
        // Away: another client deletes 4 and flags 2; a new message arrives.
        const { c: o } = await RawImap.open(f.imapPort)
        await o.login(f.ann.address)
        await o.cmd('o1', 'SELECT INBOX')
        await o.cmd('o2', 'UID STORE 4 +FLAGS (\\Deleted)')
        await o.cmd('o3', 'UID EXPUNGE 4')
        await o.cmd('o4', 'UID STORE 2 +FLAGS (\\Answered)')
        o.close()
        await smtpDeliver(
          f.smtpPort,
          'x@sender.example',
          f.ann.address,
          mail({ from: 'x@sender.example', to: f.ann.address, subject: 'New' }),
        )
        const { c: back } = await RawImap.open(f.imapPort)
        await back.login(f.ann.address)
        await back.cmd('b1', 'ENABLE QRESYNC')
        const resync = await back.cmd('b2', `SELECT INBOX (QRESYNC (${validity} ${h2} 1:4))`)
        const lines = resync.split('\r\n')
        const vanishedAt = lines.findIndex((l) => l === '* VANISHED (EARLIER) 4')
        assert.ok(vanishedAt > 0, resync)
        const rest = lines.slice(vanishedAt + 1).join('\r\n')
        assert.match(
          rest,
          /^\* 2 FETCH \(UID 2 FLAGS \(\\Answered \\Seen\) MODSEQ \(\d+\)\)\r\nb2 OK \[READ-WRITE\] SELECT completed\.\r\n$/,
        )
        assert.match(resync, /\* 3 EXISTS/)
        const sent = await back.cmd('b3', 'SELECT Sent')
        assert.match(sent, /^\* OK \[CLOSED\] Previous mailbox closed\.\r\n\* FLAGS /)
        back.close()
      } finally {
        await f.close()
      }
    })

    it('gives \\Recent to one session only, keeps a copy alive after EXPUNGE, and refuses bad flags', async () => {
      const f = await imapFixture(dialect)
      try {
        const { c: a } = await RawImap.open(f.imapPort)
        const { c: b } = await RawImap.open(f.imapPort)
        await a.login(f.ann.address)
        await b.login(f.ann.address)
        await a.cmd('a1', 'SELECT INBOX')
        await b.cmd('b1', 'SELECT INBOX')
        await smtpDeliver(
          f.smtpPort,
          'x@sender.example',
          f.ann.address,
          mail({ from: 'x@sender.example', to: f.ann.address, subject: 'One' }),
        )
        for (let i = 0; i < 100; i++) {
          const st = await f.api.get(`/v1/messages?mailbox=${f.ann.id}`)
          if (st.body.data.length) break
          await new Promise((r) => setTimeout(r, 20))
        }
        const ra = await a.cmd('a2', 'NOOP')
        const rb = await b.cmd('b2', 'NOOP')
        const recents = [ra, rb].map((r) => Number(/\* (\d+) RECENT/.exec(r)?.[1]))
        assert.deepEqual(recents.sort(), [0, 1], `${ra}${rb}`)
        // COPY to Trash, \Deleted and EXPUNGE here: the copy in Trash lives on, unflagged.
        await a.cmd('a3', 'COPY 1 Trash')
        await a.cmd('a4', 'STORE 1 +FLAGS.SILENT (\\Deleted)')
        await a.cmd('a5', 'EXPUNGE')
        await a.cmd('a6', 'SELECT Trash')
        assert.match(await a.cmd('a7', 'FETCH 1 (FLAGS)'), /^\* 1 FETCH \(FLAGS \(\\Recent\)\)\r\n/)
        assert.equal(await a.cmd('a8', 'SEARCH DELETED'), '* SEARCH\r\na8 OK SEARCH completed.\r\n')
        assert.match(await a.cmd('a9', 'STORE 1 +FLAGS (\\Bogus)'), /^a9 BAD \\Bogus is not a flag/)
        assert.match(
          await a.cmd('c1', 'LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)'),
          /\* LIST \(\\HasNoChildren \\Trash\) "\/" "Trash"/,
        )
        // Deleting the selected folder ends the session.
        await a.cmd('c2', 'CREATE Doomed')
        await a.cmd('c3', 'SELECT Doomed')
        assert.equal(await a.cmd('c4', 'DELETE Doomed'), 'c4 OK DELETE completed.\r\n')
        assert.match(await a.readLine(), /^\* BYE The selected folder was deleted/)
        b.close()
        // Before log-in, literals are small.
        const { c: anon } = await RawImap.open(f.imapPort)
        anon.write('z1 LOGIN {100000}\r\n')
        assert.equal(await anon.until('z1'), 'z1 BAD [TOOBIG] Literal too large.\r\n')
        anon.close()
      } finally {
        await f.close()
      }
    })

    it('records spam and ham signals for moves into and out of Junk, over IMAP and the API', async () => {
      const f = await imapFixture(dialect)
      try {
        const { c } = await RawImap.open(f.imapPort)
        await c.login(f.ann.address)
        for (let i = 0; i < 2; i++) {
          const bytes = Buffer.from(MSG.replace('<m1@', `<sp${i}@`))
          c.write(`a${i} APPEND INBOX {${bytes.length}+}\r\n`)
          c.write(Buffer.concat([bytes, Buffer.from('\r\n')]))
          await c.until(`a${i}`)
        }
        await c.cmd('s1', 'SELECT INBOX')
        await c.cmd('s2', 'MOVE 1 Junk')
        await c.cmd('s3', 'SELECT Junk')
        await c.cmd('s4', 'MOVE 1 INBOX')
        await c.cmd('s5', 'SELECT INBOX')
        await c.cmd('s6', 'COPY 1 Trash')
        const list = await f.api.get(`/v1/messages?mailbox=${f.ann.id}`)
        const id = list.body.data[0].id as string
        const r = await f.api.patch(`/v1/messages/${id}`, { folders: ['junk'] })
        assert.equal(r.status, 200, r.text)
        const rows = await f.s.postern.store.db
          .selectFrom('spam_signals')
          .select(['verdict', 'via', 'mailbox_id'])
          .orderBy('id')
          .execute()
        assert.deepEqual(
          rows.map((x) => `${x.verdict}/${x.via}`),
          ['spam/imap', 'ham/imap', 'spam/api'],
        )
        assert.ok(rows.every((x) => x.mailbox_id === f.ann.id))
        c.close()
      } finally {
        await f.close()
      }
    })

    it('ESEARCH, LIST-EXTENDED with LIST-STATUS, BINARY, STATUS=SIZE and QUOTA', async () => {
      const f = await imapFixture(dialect)
      try {
        const { c } = await RawImap.open(f.imapPort)
        await c.login(f.ann.address)
        const att = Buffer.from([0, 1, 2, 255, 13, 10, 65])
        const multi = Buffer.from(
          'From: a@b.example\r\nSubject: bin\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n' +
            '--x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 =\r\nau lait\r\n' +
            `--x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${att.toString('base64')}\r\n--x--\r\n`,
        )
        for (const [i, m] of [multi, Buffer.from(MSG), Buffer.from(MSG.replace('<m1@', '<m9@'))].entries()) {
          c.write(`a${i} APPEND INBOX {${m.length}+}\r\n`)
          c.write(Buffer.concat([m, Buffer.from('\r\n')]))
          await c.until(`a${i}`)
        }
        await c.cmd('s0', 'SELECT INBOX')
        await c.cmd('s1', 'STORE 2 +FLAGS (\\Seen)')
        assert.equal(
          await c.cmd('e1', 'SEARCH RETURN (MIN MAX COUNT) UNSEEN'),
          '* ESEARCH (TAG "e1") MIN 1 MAX 3 COUNT 2\r\ne1 OK SEARCH completed.\r\n',
        )
        assert.equal(
          await c.cmd('e2', 'UID SEARCH RETURN () ALL'),
          '* ESEARCH (TAG "e2") UID ALL 1:3\r\ne2 OK UID SEARCH completed.\r\n',
        )
        assert.equal(
          await c.cmd('e3', 'SEARCH RETURN (COUNT) KEYWORD nothing'),
          '* ESEARCH (TAG "e3") COUNT 0\r\ne3 OK SEARCH completed.\r\n',
        )
        const fetched = await c.cmd('b1', 'FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[2] BINARY.PEEK[2])')
        assert.equal(
          fetched,
          `* 1 FETCH (BINARY[1] {13}\r\n${Buffer.from('Café au lait').toString('latin1')} BINARY.SIZE[2] 7 BINARY[2] ~{7}\r\n${att.toString('latin1')})\r\nb1 OK FETCH completed.\r\n`,
        )
        assert.equal(
          await c.cmd('b2', 'FETCH 1 BINARY.PEEK[1.2]'),
          '* 1 FETCH (BINARY[1.2] {0}\r\n)\r\nb2 OK FETCH completed.\r\n',
        )
        assert.match(await c.cmd('b3', 'FETCH 1 BINARY[HEADER]'), /^b3 BAD /)
        await c.cmd('l0', 'CREATE Work/Old')
        await c.cmd('l1', 'UNSUBSCRIBE Work')
        assert.equal(
          await c.cmd(
            'l2',
            'LIST (SUBSCRIBED RECURSIVEMATCH) "" "Work" RETURN (STATUS (MESSAGES UNSEEN SIZE))',
          ),
          '* LIST (\\HasChildren) "/" "Work" ("CHILDINFO" ("SUBSCRIBED"))\r\n* STATUS "Work" (MESSAGES 0 UNSEEN 0 SIZE 0)\r\nl2 OK LIST completed.\r\n',
        )
        assert.equal(
          await c.cmd('l3', 'LIST "" ("INBOX" "Work/%") RETURN (SUBSCRIBED STATUS (MESSAGES))'),
          '* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"\r\n* STATUS "INBOX" (MESSAGES 3)\r\n' +
            '* LIST (\\HasNoChildren \\Subscribed) "/" "Work/Old"\r\n* STATUS "Work/Old" (MESSAGES 0)\r\nl3 OK LIST completed.\r\n',
        )
        assert.match(await c.cmd('q0', 'STATUS INBOX (SIZE)'), /^\* STATUS "INBOX" \(SIZE \d+\)\r\n/)
        await f.api.patch(`/v1/mailboxes/${f.ann.id}`, { quota_mb: 10 })
        assert.match(
          await c.cmd('q1', 'GETQUOTAROOT INBOX'),
          /^\* QUOTAROOT "INBOX" ""\r\n\* QUOTA "" \(STORAGE \d+ 10240\)\r\nq1 OK GETQUOTAROOT completed\.\r\n$/,
        )
        assert.match(await c.cmd('q2', 'GETQUOTA ""'), /^\* QUOTA "" \(STORAGE \d+ 10240\)\r\n/)
        assert.match(await c.cmd('q3', 'SETQUOTA "" (STORAGE 1)'), /^q3 NO \[NOPERM\] /)
        c.close()
      } finally {
        await f.close()
      }
    })

    it('SORT and THREAD=REFERENCES', async () => {
      const f = await imapFixture(dialect)
      try {
        const { c } = await RawImap.open(f.imapPort)
        await c.login(f.ann.address)
        const msgs = [
          'From: Zed <zed@a.example>\r\nSubject: Lunch\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\nMessage-ID: <l1@a>\r\n\r\nx\r\n',
          'From: Amy <amy@a.example>\r\nSubject: Re: Lunch\r\nDate: Mon, 02 Nov 2026 11:00:00 +0000\r\nMessage-ID: <l2@a>\r\nIn-Reply-To: <l1@a>\r\nReferences: <l1@a>\r\n\r\nyy\r\n',
          'From: Bob <bob@a.example>\r\nSubject: Agenda\r\nDate: Sun, 01 Nov 2026 09:00:00 +0000\r\nMessage-ID: <g1@a>\r\n\r\nzzz\r\n',
          'From: Cy <cy@a.example>\r\nSubject: Re: Lunch\r\nDate: Mon, 02 Nov 2026 12:00:00 +0000\r\nMessage-ID: <l3@a>\r\nReferences: <l1@a>\r\n\r\nwwww\r\n',
        ]
        for (const [i, text] of msgs.entries()) {
          const b = Buffer.from(text)
          c.write(`a${i} APPEND INBOX {${b.length}+}\r\n`)
          c.write(Buffer.concat([b, Buffer.from('\r\n')]))
          await c.until(`a${i}`)
        }
        await c.cmd('s0', 'SELECT INBOX')
        assert.equal(
          await c.cmd('s1', 'SORT (DATE) UTF-8 ALL'),
          '* SORT 3 1 2 4\r\ns1 OK SORT completed.\r\n',
        )
        assert.equal(
          await c.cmd('s2', 'SORT (SUBJECT REVERSE DATE) UTF-8 ALL'),
          '* SORT 3 4 2 1\r\ns2 OK SORT completed.\r\n',
        )
        assert.equal(
          await c.cmd('s3', 'UID SORT (FROM) UTF-8 NOT FROM bob'),
          '* SORT 2 4 1\r\ns3 OK UID SORT completed.\r\n',
        )
        const bySize = /\* SORT ([\d ]+)/.exec(await c.cmd('s4', 'SORT (SIZE) US-ASCII ALL'))?.[1] ?? ''
        assert.equal(bySize, '1 3 4 2', 'by whole-message size (2 carries In-Reply-To as well)')
        assert.equal(
          await c.cmd('s5', 'SORT (REVERSE SIZE) US-ASCII ALL'),
          `* SORT ${bySize.split(' ').reverse().join(' ')}\r\ns5 OK SORT completed.\r\n`,
        )
        assert.equal(
          await c.cmd('t1', 'THREAD REFERENCES UTF-8 ALL'),
          '* THREAD (3)(1 (2)(4))\r\nt1 OK THREAD completed.\r\n',
        )
        assert.match(await c.cmd('t2', 'THREAD ORDEREDSUBJECT UTF-8 ALL'), /^t2 BAD /)
        c.close()
      } finally {
        await f.close()
      }
    })

    it('IMAP4rev2 once enabled: ESEARCH, a LIST in SELECT, no \\Recent, UTF-8 mailbox names', async () => {
      const f = await imapFixture(dialect)
      try {
        const { c } = await RawImap.open(f.imapPort)
        await c.login(f.ann.address)
        const b = Buffer.from(MSG)
        c.write(`a1 APPEND INBOX {${b.length}+}\r\n`)
        c.write(Buffer.concat([b, Buffer.from('\r\n')]))
        await c.until('a1')
        assert.equal(
          await c.cmd('e1', 'ENABLE IMAP4rev2'),
          '* ENABLED IMAP4rev2\r\ne1 OK ENABLE completed.\r\n',
        )
        const sel = await c.cmd('s1', 'SELECT INBOX')
        assert.match(sel, /\* 1 EXISTS\r\n\* LIST \(\) "\/" "INBOX"\r\n/)
        assert.doesNotMatch(sel, /RECENT|UNSEEN/)
        assert.equal(
          await c.cmd('s2', 'SEARCH ALL'),
          '* ESEARCH (TAG "s2") ALL 1\r\ns2 OK SEARCH completed.\r\n',
        )
        assert.equal(await c.cmd('s3', 'FETCH 1 FLAGS'), '* 1 FETCH (FLAGS ())\r\ns3 OK FETCH completed.\r\n')
        const name = Buffer.from('Déjà vu')
        c.write(`c1 CREATE {${name.length}+}\r\n`)
        c.write(Buffer.concat([name, Buffer.from('\r\n')]))
        assert.equal(await c.until('c1'), 'c1 OK CREATE completed.\r\n')
        assert.equal(
          await c.cmd('c2', 'LIST "" "D*"'),
          `* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"\r\n* LIST (\\HasNoChildren) "/" {${name.length}}\r\n${name.toString('latin1')}\r\nc2 OK LIST completed.\r\n`,
        )
        assert.match(await c.cmd('c3', 'STATUS INBOX (RECENT)'), /^c3 BAD /)
        c.close()
        // A rev1 client sees the same folder in modified UTF-7.
        const { c: old } = await RawImap.open(f.imapPort)
        await old.login(f.ann.address)
        assert.match(await old.cmd('o1', 'LIST "" "D*"'), /"D&AOk-j&AOA- vu"/)
        old.close()
      } finally {
        await f.close()
      }
    })

    it('streams a large message in with APPEND and out with FETCH, byte for byte', async () => {
      const f = await imapFixture(dialect)
      try {
        const { c } = await RawImap.open(f.imapPort)
        await c.login(f.ann.address)
        const line = `${'0123456789abcdef'.repeat(4)}\r\n`
        const big = Buffer.from(`From: a@b.example\r\nSubject: big\r\n\r\n${line.repeat(50_000)}`)
        c.write(`a1 APPEND INBOX {${big.length}}\r\n`)
        assert.equal(await c.readLine(), '+ Ready for literal data\r\n')
        c.write(Buffer.concat([big, Buffer.from('\r\n')]))
        assert.match(await c.until('a1', 30_000), /a1 OK \[APPENDUID \d+ 1\]/)
        await c.cmd('s1', 'SELECT INBOX')
        const out = Buffer.from(await c.cmd('f1', 'FETCH 1 (UID BODY.PEEK[])', 30_000), 'latin1')
        const head = Buffer.from(`* 1 FETCH (UID 1 BODY[] {${big.length}}\r\n`)
        assert.ok(out.subarray(0, head.length).equals(head), out.subarray(0, 80).toString())
        assert.ok(
          out.subarray(head.length, head.length + big.length).equals(big),
          'the bytes come back unchanged',
        )
        assert.equal(out.subarray(head.length + big.length).toString(), ')\r\nf1 OK FETCH completed.\r\n')
        c.close()
      } finally {
        await f.close()
      }
    })

    it('closes sessions that stay silent: before log-in and while idle (RFC 9051 5.4)', async () => {
      const f = await imapFixture(dialect, {
        env: { POSTERN_IMAP_LOGIN_TIMEOUT_MS: '1000', POSTERN_IMAP_IDLE_TIMEOUT_MS: '1500' },
      })
      try {
        const { c } = await RawImap.open(f.imapPort)
        assert.equal(await c.readLine(5000), '* BYE Log-in took too long.\r\n')
        const { c: d } = await RawImap.open(f.imapPort)
        await d.login(f.ann.address)
        await d.cmd('s1', 'SELECT INBOX')
        d.write('s2 IDLE\r\n')
        assert.equal(await d.readLine(), '+ idling\r\n')
        assert.equal(await d.readLine(5000), '* BYE Idle for too long; log in again.\r\n')
      } finally {
        await f.close()
      }
    })

    it('resets UIDs over the API: new UIDVALIDITY, renumbered messages, open sessions closed', async () => {
      const f = await imapFixture(dialect)
      try {
        const { c } = await RawImap.open(f.imapPort)
        await c.login(f.ann.address)
        for (let i = 0; i < 3; i++) {
          const bytes = Buffer.from(MSG.replace('<m1@', `<m${i}x@`))
          c.write(`a${i} APPEND INBOX {${bytes.length}+}\r\n`)
          c.write(Buffer.concat([bytes, Buffer.from('\r\n')]))
          await c.until(`a${i}`)
        }
        await c.cmd('s1', 'SELECT INBOX')
        await c.cmd('s2', 'STORE 1 +FLAGS (\\Deleted)')
        await c.cmd('s3', 'EXPUNGE')
        const before = /UIDVALIDITY (\d+)/.exec(await c.cmd('s4', 'STATUS INBOX (UIDVALIDITY UIDNEXT)'))?.[1]
        const r = await f.api.post(`/v1/mailboxes/${f.ann.id}/reset-uids`, {})
        assert.equal(r.status, 200, r.text)
        const inbox = r.body.folders.find((x: { name: string }) => x.name === 'INBOX')
        assert.ok(inbox.uidvalidity > Number(before))
        assert.equal(inbox.uidnext, 3)
        assert.match(await c.readLine(10_000), /^\* BYE .*UIDs were reset/)
        const { c: d } = await RawImap.open(f.imapPort)
        await d.login(f.ann.address)
        await d.cmd('x1', 'SELECT INBOX')
        assert.equal(await d.cmd('x2', 'UID SEARCH ALL'), '* SEARCH 1 2\r\nx2 OK UID SEARCH completed.\r\n')
        d.close()
        const other = await f.api.post('/v1/mailboxes/mbx_nope/reset-uids', {})
        assert.equal(other.status, 404)
      } finally {
        await f.close()
      }
    })
  })
}
