// Parsing for reading (services/messages/mime.ts), pure: well-formed mail parses; absurd MIME
// (too many parts, deep nesting, huge headers) and garbage are flattened quickly, with their
// top-level headers still read.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MAX_PARTS, parseForReading, scanHeaders } from '../../src/services/messages/mime.ts'
import { manyPartsMail, richMail } from './fixtures.ts'

function nested(depth: number): string {
  const lines = ['Subject: Deep', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b0"', '']
  for (let i = 1; i < depth; i++)
    lines.push(`--b${i - 1}`, `Content-Type: multipart/mixed; boundary="b${i}"`, '')
  lines.push(`--b${depth - 1}`, 'Content-Type: text/plain', '', 'bottom')
  for (let i = depth - 1; i >= 0; i--) lines.push(`--b${i}--`)
  return lines.join('\r\n')
}

describe('parsing for reading', () => {
  it('parses a well-formed message', async () => {
    const r = await parseForReading(Buffer.from(richMail()))
    assert.equal(r.warning, null)
    assert.equal(r.attachments.length, 2)
    assert.equal(r.text?.trim(), 'Café plans for Tuesday.')
  })

  const absurd: [string, Buffer, RegExp][] = [
    ['too many parts', Buffer.from(manyPartsMail(MAX_PARTS + 50)), /more than 1000 MIME parts/],
    ['deep nesting', Buffer.from(nested(MAX_PARTS + 10)), /more than 1000 MIME parts/],
    [
      'a header block larger than allowed',
      Buffer.from(`Subject: Big\r\nX-Big: ${'a'.repeat(300_000)}\r\n\r\nbody`),
      /header bytes/,
    ],
  ]
  for (const [what, raw, warning] of absurd)
    it(`flattens ${what}`, async () => {
      const started = Date.now()
      const r = await parseForReading(raw)
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`)
      assert.match(r.warning ?? '', warning)
      assert.equal(r.text, null)
      assert.deepEqual(r.attachments, [])
      assert.ok(
        r.headers.some((h) => h.name === 'Subject'),
        JSON.stringify(r.headers.slice(0, 3)),
      )
    })

  it('reads garbage without throwing', async () => {
    const r = await parseForReading(Buffer.from([0xff, 0xfe, 0, 0x41, 0x0a, 0x0d, 0]))
    assert.ok(r.warning === null || typeof r.warning === 'string')
    assert.ok(Array.isArray(r.headers))
  })

  it('scans headers tolerantly: folded, UTF-8, broken lines skipped', () => {
    const h = scanHeaders(
      Buffer.from(
        'Subject: caf\u00e9\r\nX-Folded: a\r\n\tb\r\nnot a header\r\n: empty name\r\n\r\nBody: no\r\n',
      ),
    )
    assert.deepEqual(h, [
      { name: 'Subject', value: 'café' },
      { name: 'X-Folded', value: 'a b' },
    ])
  })
})
