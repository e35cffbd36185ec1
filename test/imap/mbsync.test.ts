// Debian's isync (mbsync) syncing a 1,000-message Maildir with a Postern mailbox over IMAPS,
// both ways: every message pushed arrives byte-identical, a fresh Maildir pulls them back
// byte-identical, and flag changes and deletions on either side reach the other.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { connect as tlsConnect } from 'node:tls'
import { ImapFlow } from 'imapflow'
import { DIALECTS } from '../helpers/dialects.ts'
import { needs, requireTool, TOOLS } from '../helpers/tools.ts'
import { type ImapFixture, imapFixture, PASSWORD } from './helpers.ts'

const COUNT = 1000

async function serverCertPem(port: number): Promise<string> {
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const c = s.getPeerCertificate()
      s.destroy()
      resolve(c.raw)
    })
    s.once('error', reject)
  })
  const b64 = raw.toString('base64').replace(/.{64}/g, '$&\n')
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`
}

function config(f: ImapFixture, dir: string, maildir: string, cert: string): string {
  const path = join(dir, `mbsyncrc-${Math.random().toString(36).slice(2)}`)
  writeFileSync(
    path,
    [
      'IMAPAccount postern',
      'Host 127.0.0.1',
      `Port ${f.imapsPort}`,
      `User ${f.ann.address}`,
      `Pass ${PASSWORD}`,
      'SSLType IMAPS',
      `CertificateFile ${cert}`,
      'PipelineDepth 32',
      '',
      'IMAPStore remote',
      'Account postern',
      '',
      'MaildirStore local',
      `Path ${maildir}/`,
      `Inbox ${maildir}/INBOX`,
      'SubFolders Verbatim',
      '',
      'Channel sync',
      'Far :remote:',
      'Near :local:',
      'Patterns INBOX',
      'Create Both',
      'Expunge Both',
      'SyncState *',
      '',
    ].join('\n'),
  )
  return path
}

async function mbsync(rc: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('mbsync', ['-c', rc, '-a'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (d) => {
      out += d
    })
    p.stderr.on('data', (d) => {
      out += d
    })
    const timer = setTimeout(() => p.kill('SIGKILL'), 300_000)
    p.on('close', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`mbsync exited ${code}:\n${out}`))
    })
  })
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
/**
 * Maildir keeps LF line ends, and mbsync writes an X-TUID field of its own into every message it
 * propagates (both ways): messages are compared without it.
 */
const lf = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n'), 'latin1')
const withoutTuid = (b: Buffer) =>
  Buffer.from(b.toString('latin1').replace(/^X-TUID: [^\n]*\n/m, ''), 'latin1')

/** sha256 of every message in the server's INBOX as FETCH BODY[] returns it, in LF form. */
async function serverHashes(f: ImapFixture): Promise<Set<string>> {
  const c = new ImapFlow({
    host: '127.0.0.1',
    port: f.imapsPort,
    secure: true,
    tls: { rejectUnauthorized: false },
    auth: { user: f.ann.address, pass: PASSWORD },
    logger: false,
  })
  await c.connect()
  const out = new Set<string>()
  try {
    const lock = await c.getMailboxLock('INBOX')
    try {
      for await (const m of c.fetch('1:*', { source: true })) {
        out.add(sha(withoutTuid(lf(m.source as Buffer))))
      }
    } finally {
      lock.release()
    }
  } finally {
    await c.logout()
  }
  return out
}

function maildirMessages(box: string): Map<string, { file: string; flags: string }> {
  const out = new Map<string, { file: string; flags: string }>()
  for (const sub of ['cur', 'new'])
    for (const name of readdirSync(join(box, sub))) {
      const file = join(box, sub, name)
      out.set(sha(readFileSync(file)), { file, flags: /:2,([A-Z]*)$/.exec(name)?.[1] ?? '' })
    }
  return out
}

function message(i: number): Buffer {
  const body = `Message number ${i}.\r\n${'Lorem ipsum dolor sit amet. '.repeat(1 + (i % 40))}\r\n`
  const extra =
    i % 7 === 0 ? 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n' : ''
  return Buffer.from(
    `From: Sender ${i} <s${i}@a.example>\r\nTo: ann@hosted.example\r\nSubject: Sync ${i}${i % 7 === 0 ? ' — ünïcödé' : ''}\r\nDate: Sat, 21 Nov 2026 08:00:00 +0000\r\nMessage-ID: <sync${i}@a.example>\r\n${extra}\r\n${body}`,
    'utf8',
  )
}

for (const dialect of DIALECTS) {
  describe(`IMAP with mbsync (${dialect})`, () => {
    it(`round trips a ${COUNT}-message mailbox both ways, byte-identical`, needs(TOOLS.mbsync), async () => {
      requireTool(TOOLS.mbsync)
      const f = await imapFixture(dialect)
      const dir = mkdtempSync(join(tmpdir(), 'postern-mbsync-'))
      try {
        const cert = join(dir, 'server.pem')
        writeFileSync(cert, await serverCertPem(f.imapsPort))
        // 1. A local Maildir with COUNT messages, every tenth already seen, pushed to Postern.
        const a = join(dir, 'a')
        for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(a, 'INBOX', sub), { recursive: true })
        const originals = new Map<string, number>()
        for (let i = 0; i < COUNT; i++) {
          const m = message(i)
          originals.set(sha(lf(m)), i)
          const seen = i % 10 === 0
          writeFileSync(
            join(a, 'INBOX', seen ? 'cur' : 'new', `${1700000000 + i}.${i}.test${seen ? ':2,S' : ''}`),
            m,
          )
        }
        const rcA = config(f, dir, a, cert)
        await mbsync(rcA)
        const db = f.s.postern.store.db
        const count = await db
          .selectFrom('messages')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('mailbox_id', '=', f.ann.id)
          .executeTakeFirstOrThrow()
        assert.equal(Number(count.n), COUNT, 'every message reached the server')
        const seenCount = await db
          .selectFrom('message_keywords as k')
          .innerJoin('messages as m', 'm.id', 'k.message_id')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('m.mailbox_id', '=', f.ann.id)
          .where('k.keyword', '=', '\\Seen')
          .executeTakeFirstOrThrow()
        assert.equal(Number(seenCount.n), COUNT / 10, '\\Seen went up with the messages')

        // 2. A fresh Maildir pulls everything back, byte for byte.
        const b = join(dir, 'b')
        mkdirSync(b)
        const rcB = config(f, dir, b, cert)
        await mbsync(rcB)
        const pulled = maildirMessages(join(b, 'INBOX'))
        assert.equal(pulled.size, COUNT)
        const onServer = await serverHashes(f)
        assert.equal(onServer.size, COUNT)
        for (const m of pulled.values()) {
          const bytes = withoutTuid(readFileSync(m.file))
          assert.ok(onServer.has(sha(bytes)), 'the pulled message is byte for byte what the server holds')
          assert.ok(
            originals.has(sha(bytes)),
            `a pulled message differs from what was pushed: ${JSON.stringify(readFileSync(m.file, 'latin1').slice(0, 300))}`,
          )
        }
        assert.equal([...pulled.values()].filter((m) => m.flags.includes('S')).length, COUNT / 10)

        // 3. Changes on both sides: B marks one seen and deletes one; the API flags one.
        const [h1, m1] = [...pulled.entries()].find(([, m]) => !m.flags.includes('S')) as [
          string,
          { file: string },
        ]
        const n1 = Number(/Message number (\d+)/.exec(readFileSync(m1.file, 'latin1'))?.[1])
        renameSync(m1.file, `${m1.file.replace('/new/', '/cur/').replace(/:2,[A-Z]*$/, '')}:2,S`)
        const [, m2] = [...pulled.entries()].find(([h]) => h !== h1) as [string, { file: string }]
        const h2Text = readFileSync(m2.file, 'latin1')
        unlinkSync(m2.file)
        const target = await db
          .selectFrom('messages')
          .select('id')
          .where('mailbox_id', '=', f.ann.id)
          .where('subject', '=', 'Sync 3')
          .executeTakeFirstOrThrow()
        const patched = await f.api.patch(`/v1/messages/${target.id}`, { flagged: true })
        assert.equal(patched.status, 200, patched.text)
        await mbsync(rcB)
        const n2 = Number(/Message number (\d+)/.exec(h2Text)?.[1])
        const serverSubjects = await db
          .selectFrom('messages')
          .select(['subject', 'id'])
          .where('mailbox_id', '=', f.ann.id)
          .where('deleted_at', 'is', null)
          .execute()
        const inInbox = await db
          .selectFrom('folder_messages as fm')
          .innerJoin('messages as m', 'm.id', 'fm.message_id')
          .innerJoin('folders as fo', 'fo.id', 'fm.folder_id')
          .select('m.subject')
          .where('m.mailbox_id', '=', f.ann.id)
          .where('fo.role', '=', 'inbox')
          .execute()
        assert.equal(inInbox.length, COUNT - 1, 'the local deletion reached the server')
        assert.ok(!inInbox.some((r) => r.subject.split(' ')[1] === String(n2)), 'the deleted one is gone')
        const seenNow = serverSubjects.find((r) => r.subject.split(' ')[1] === String(n1))
        assert.ok(seenNow, 'the seen message is still there')
        const kw = await db
          .selectFrom('message_keywords')
          .select('keyword')
          .where('message_id', '=', seenNow.id)
          .execute()
        assert.ok(
          kw.some((k) => k.keyword === '\\Seen'),
          'the local \\Seen reached the server',
        )
        const after = maildirMessages(join(b, 'INBOX'))
        const flaggedLocal = [...after.values()].find((m) =>
          /^Subject: Sync 3\n/m.test(readFileSync(m.file, 'latin1')),
        )
        assert.ok(flaggedLocal?.flags.includes('F'), 'the API flag reached the Maildir')
        // 4. A sync with nothing changed is clean (no errors, nothing moves).
        await mbsync(rcA)
        await mbsync(rcB)
        assert.equal(maildirMessages(join(b, 'INBOX')).size, COUNT - 1)
      } finally {
        rmSync(dir, { recursive: true, force: true })
        await f.close()
      }
    })
  })
}
