// The authentication checks in a worker thread (mail/auth-pool.ts): the same verdicts as
// verifyMessage inline, every DNS question answered by the main thread's resolver (errors
// included), the thread stopped when idle and started again, and jobs of a dead thread
// checked inline instead of failing.
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { test } from 'node:test'
import { dkimSign } from 'mailauth'
import { createStaticResolver } from '../../src/dns/static-zone.ts'
import { createLogger } from '../../src/log/logger.ts'
import { verifyMessage } from '../../src/mail/auth.ts'
import { createAuthPool } from '../../src/mail/auth-pool.ts'

const log = createLogger({ level: 'silent' })

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const p = (publicKey.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64')
const zone = {
  'sender.example': { TXT: ['v=spf1 ip4:192.0.2.10 -all'] },
  's1._domainkey.sender.example': { TXT: [`v=DKIM1; k=rsa; p=${p}`] },
  '_dmarc.sender.example': { TXT: ['v=DMARC1; p=reject'] },
}

async function signed(subject: string): Promise<Buffer> {
  const message = [
    'From: Alice <alice@sender.example>',
    'To: <ann@hosted.example>',
    `Subject: ${subject}`,
    'Date: Sat, 21 Nov 2026 08:00:00 +0000',
    'Message-ID: <a1@sender.example>',
    '',
    'Hello there.',
    '',
  ].join('\r\n')
  const r = await dkimSign(message, {
    signatureData: [
      {
        signingDomain: 'sender.example',
        selector: 's1',
        privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        canonicalization: 'relaxed/relaxed',
      },
    ],
  } as never)
  return Buffer.from(r.signatures + message)
}

const opts = { helo: 'mail.sender.example', mailFrom: 'alice@sender.example', authservId: 'mx.postern.test' }

/** The verdict without its header fields' timestamps and ids, which differ per run. */
const stable = (v: Awaited<ReturnType<typeof verifyMessage>>) => ({ ...v, headers: v.headers.length > 0 })

test('the thread gives the inline verdicts, asking the main thread for every DNS answer', async () => {
  const pool = createAuthPool({ log })
  try {
    const raw = await signed('numbers')
    for (const ip of ['192.0.2.10', '198.51.100.7']) {
      const resolver = createStaticResolver(zone)
      const inThread = await pool.verify(raw, { ...opts, ip, resolver })
      const inline = await verifyMessage(raw, { ...opts, ip, resolver: createStaticResolver(zone) })
      assert.deepEqual(stable(inThread), stable(inline))
      assert.ok(resolver.calls.length >= 3, 'SPF, DKIM and DMARC were asked of our resolver')
    }
    const good = await pool.verify(raw, { ...opts, ip: '192.0.2.10', resolver: createStaticResolver(zone) })
    assert.equal(good.summary, 'spf=pass dkim=pass dmarc=pass')
    const forged = await pool.verify(Buffer.from(raw.toString().replace('Hello there.', 'Pay me.')), {
      ...opts,
      ip: '198.51.100.7',
      resolver: createStaticResolver(zone),
    })
    assert.notEqual(forged.dkim, 'pass')
    assert.equal(forged.dmarc, 'fail')
    assert.equal(forged.dmarcFailPolicy, 'reject')
    assert.equal(pool.stats.started, 1)
    assert.equal(pool.stats.inline, 0)
  } finally {
    await pool.close()
  }
})

test('DNS failures cross back as DnsErrors: temporary ones give temperror, NXDOMAIN none', async () => {
  const pool = createAuthPool({ log })
  try {
    const raw = await signed('dns')
    const servfail = createStaticResolver(zone, {
      fail: [{ name: 'sender.example', type: 'TXT', code: 'SERVFAIL' }],
    })
    const inThread = await pool.verify(raw, { ...opts, ip: '192.0.2.10', resolver: servfail })
    const inline = await verifyMessage(raw, {
      ...opts,
      ip: '192.0.2.10',
      resolver: createStaticResolver(zone, {
        fail: [{ name: 'sender.example', type: 'TXT', code: 'SERVFAIL' }],
      }),
    })
    assert.equal(inThread.spf, 'temperror')
    assert.deepEqual(stable(inThread), stable(inline))
    const empty = await pool.verify(raw, { ...opts, ip: '192.0.2.10', resolver: createStaticResolver({}) })
    assert.equal(empty.spf, 'none')
    assert.equal(empty.dmarc, 'none')
  } finally {
    await pool.close()
  }
})

test('the thread stops when idle and starts again on the next message', async () => {
  const pool = createAuthPool({ log, idleMs: 50 })
  try {
    const raw = await signed('idle')
    await pool.verify(raw, { ...opts, ip: '192.0.2.10', resolver: createStaticResolver(zone) })
    await new Promise((r) => setTimeout(r, 300))
    const v = await pool.verify(raw, { ...opts, ip: '192.0.2.10', resolver: createStaticResolver(zone) })
    assert.equal(v.summary, 'spf=pass dkim=pass dmarc=pass')
    assert.equal(pool.stats.started, 2)
    assert.equal(pool.stats.inThread, 2)
  } finally {
    await pool.close()
  }
})

test('jobs of a thread that dies are checked inline, none fails', async () => {
  const pool = createAuthPool({ log })
  const raw = await signed('crash')
  // While the thread holds them, TXT questions go unanswered; the thread is then killed.
  const real = createStaticResolver(zone)
  let threadAlive = true
  const resolver = {
    ...real,
    resolveTxt: (n: string) => (threadAlive ? new Promise<never>(() => {}) : real.resolveTxt(n)),
  }
  const jobs = Array.from({ length: 3 }, () => pool.verify(raw, { ...opts, ip: '192.0.2.10', resolver }))
  await new Promise((r) => setTimeout(r, 200))
  assert.equal(pool.stats.started, 1)
  threadAlive = false
  await pool.close()
  const verdicts = await Promise.all(jobs)
  for (const v of verdicts) assert.equal(v.summary, 'spf=pass dkim=pass dmarc=pass')
  assert.equal(pool.stats.inline, 3)
  assert.equal(pool.stats.inThread, 0)
})
