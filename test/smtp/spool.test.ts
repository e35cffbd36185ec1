// MessageReader with a real spool (store/blobs/spool.ts, files in a temp folder): text past the
// threshold goes to a file and comes back byte for byte, dot-unstuffed, whatever the chunking;
// the smuggling rules and limits hold for spooled text as for text in memory; a refused or
// abandoned text leaves no file behind. Also the large-message delivery turns.

import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { createLargeMessages } from '../../src/smtp/large-messages.ts'
import { type MessageLimits, MessageReader, type MessageSpool } from '../../src/smtp/protocol/data-reader.ts'
import { createSpool, type SpoolFile, sweepSpool } from '../../src/store/blobs/spool.ts'

const root = mkdtempSync(join(tmpdir(), 'postern-spool-'))
after(() => rmSync(root, { recursive: true, force: true }))
let n = 0

function spoolIn(thresholdBytes: number) {
  const dir = join(root, `s${n++}`)
  const open = createSpool(dir)
  const opened: SpoolFile[] = []
  const spool: MessageSpool = {
    thresholdBytes,
    open: () => {
      const f = open()
      opened.push(f)
      return f
    },
  }
  /** The spool files on disk, once every write queued so far is done. */
  const files = async () => {
    for (const f of opened) await f.flushed()
    return readdirSync(dir)
  }
  return { spool, files, dir, opened }
}

const LIMITS: MessageLimits = { maxMessageBytes: 4_000_000, maxHeaderBytes: 10_000, maxLineBytes: 1000 }

/** Feeds `input` in chunks of `size` as the connection would (waiting when the spool is behind). */
async function feedAll(reader: MessageReader, input: Buffer, size: number): Promise<number> {
  let used = 0
  for (let i = 0; i < input.length && !reader.done; i += size) {
    used += reader.feed(input.subarray(i, i + size))
    await reader.drained()
  }
  return used
}

/** A message of about `bytes` octets with stuffed dots, 8-bit octets and NULs in it. */
function bigText(bytes: number): { wire: Buffer; unstuffed: Buffer } {
  const lines: string[] = ['Subject: big', '']
  for (let i = 0; lines.join('\r\n').length < bytes; i++)
    lines.push(i % 7 === 0 ? `.line ${i} starts with a dot` : `line ${i} caf\xe9 \x00 ${'x'.repeat(i % 90)}`)
  const text = `${lines.join('\r\n')}\r\n`
  const wire = text.replace(/^\./gm, '..')
  return { wire: Buffer.from(`${wire}.\r\nQUIT\r\n`, 'latin1'), unstuffed: Buffer.from(text, 'latin1') }
}

describe('spooled DATA text', () => {
  const { wire, unstuffed } = bigText(600_000)
  for (const size of [1, 997, 65_536, wire.length]) {
    it(`comes back byte for byte, fed in chunks of ${size}`, { timeout: 120_000 }, async () => {
      const s = spoolIn(64 * 1024)
      const reader = new MessageReader('data', LIMITS, s.spool)
      const used = await feedAll(reader, wire, size)
      assert.equal(reader.done, true)
      assert.equal(used, wire.length - 'QUIT\r\n'.length, 'the rest is the next command')
      assert.equal(reader.spooled, true)
      assert.equal((await s.files()).length, 1, 'the text is in one spool file while it waits')
      const r = await reader.complete()
      assert.equal(r.problem, null)
      assert.ok(r.message?.equals(unstuffed), 'the unstuffed text, intact')
      assert.deepEqual(await s.files(), [], 'the spool file is removed once read')
    })
  }

  it('stays in memory under the threshold', async () => {
    const s = spoolIn(1_000_000)
    const reader = new MessageReader('data', LIMITS, s.spool)
    await feedAll(reader, wire, 4096)
    assert.equal(reader.spooled, false)
    const r = await reader.complete()
    assert.ok(r.message?.equals(unstuffed))
    assert.throws(() => readdirSync(s.dir), /ENOENT/, 'no spool folder was even made')
  })

  const smuggled = ['\n.\n', '\n.\r\n', '\r.\r', '\r\n.\n', 'a\nb', 'a\rb']
  for (const p of smuggled)
    it(`refuses ${JSON.stringify(p)} in spooled text, ends only at CRLF.CRLF, keeps no file`, async () => {
      const s = spoolIn(1024)
      const text = Buffer.from(
        `${'a'.repeat(900)}\r\n${'b'.repeat(900)}${p}MAIL FROM:<x@y.example>\r\nmore\r\n.\r\nNEXT`,
      )
      const reader = new MessageReader('data', LIMITS, s.spool)
      const used = await feedAll(reader, text, 512)
      assert.equal(used, text.length - 4, 'the end is the real CRLF.CRLF')
      const r = await reader.complete()
      assert.equal(r.problem, 'BARE_LINE_END')
      assert.equal(r.message, null)
      assert.deepEqual(await s.files(), [], 'nothing of the refused text is kept')
    })

  it('refuses a text over max_message_bytes after reading it to its end, keeping nothing', async () => {
    const s = spoolIn(8 * 1024)
    const limits = { ...LIMITS, maxMessageBytes: 100_000 }
    const reader = new MessageReader('data', limits, s.spool)
    const used = await feedAll(reader, wire, 8192)
    assert.equal(used, wire.length - 6, 'read to the end line')
    assert.equal(reader.size, unstuffed.length)
    const r = await reader.complete()
    assert.equal(r.problem, 'TOO_BIG')
    assert.deepEqual(await s.files(), [], 'the spool file went as soon as the limit was passed')
  })

  it('an abandoned text (connection lost mid-DATA) leaves no file', async () => {
    const s = spoolIn(1024)
    const reader = new MessageReader('data', LIMITS, s.spool)
    await feedAll(reader, wire.subarray(0, 300_000), 4096)
    assert.equal(reader.done, false)
    assert.equal((await s.files()).length, 1)
    await reader.abandon()
    assert.deepEqual(await s.files(), [])
  })
})

describe('spooled BDAT text', () => {
  it('assembles chunks byte for byte, with no unstuffing', async () => {
    const s = spoolIn(4096)
    const { unstuffed } = bigText(200_000)
    const reader = new MessageReader('bdat', LIMITS, s.spool)
    for (let i = 0; i < unstuffed.length; i += 30_000) {
      reader.feed(unstuffed.subarray(i, i + 30_000))
      await reader.drained()
    }
    assert.equal(reader.problem, null)
    const r = await reader.complete()
    assert.ok(r.message?.equals(unstuffed))
    assert.deepEqual(await s.files(), [])
  })
})

describe('spool files', () => {
  it('a spool that cannot be written says so when read back', async () => {
    const file = createSpool(join(root, 'no\0such'))() // a NUL in a path: every call fails
    file.write(Buffer.from('x'))
    await assert.rejects(file.read())
    await file.discard()
  })

  it('the sweep removes only old spool files', async () => {
    const s = spoolIn(0)
    const file = s.spool.open()
    file.write(Buffer.from('left by a crash'))
    await file.flushed()
    assert.equal(await sweepSpool(s.dir, 60_000, Date.now()), 0, 'a fresh file stays')
    assert.equal((await s.files()).length, 1)
    assert.equal(await sweepSpool(s.dir, 60_000, Date.now() + 120_000), 1)
    assert.deepEqual(await s.files(), [])
  })
})

describe('large-message delivery turns', () => {
  it('runs at most `concurrency` at once, in arrival order, and passes turns on after a failure', async () => {
    const large = createLargeMessages({ spool: spoolIn(0).spool, concurrency: 2 })
    let running = 0
    let peak = 0
    const order: number[] = []
    const gates: (() => void)[] = []
    const jobs: Promise<number>[] = Array.from({ length: 6 }, (_, i) =>
      large.inTurn(async () => {
        running++
        peak = Math.max(peak, running)
        order.push(i)
        await new Promise<void>((r) => gates.push(r))
        running--
        if (i === 1) throw new Error('delivery failed')
        return i
      }),
    )
    const settled = Promise.allSettled(jobs)
    while (gates.length < 2) await new Promise((r) => setImmediate(r))
    assert.equal(running, 2)
    for (let k = 0; k < 6; k++) {
      while (gates.length <= k) await new Promise((r) => setImmediate(r))
      gates[k]?.()
    }
    const results = await settled
    assert.equal(peak, 2)
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5])
    assert.equal(results[1]?.status, 'rejected')
    assert.deepEqual(
      results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<number>).value),
      [0, 2, 3, 4, 5],
    )
  })
})
