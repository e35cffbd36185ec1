// SRS rewriting and reversal (src/mail/srs.ts): the SRS0 and SRS1 shapes, case-insensitive
// verification, tampered hashes and parts, the age limit, and what is refused.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isSrsLocal, srsForward, srsReverse } from '../../src/mail/srs.ts'

const key = Buffer.from('0123456789abcdef0123456789abcdef')
const other = Buffer.from('fedcba9876543210fedcba9876543210')
const DAY = 86_400_000
const now = Date.UTC(2026, 10, 21, 8, 0, 0)

describe('SRS', () => {
  it('rewrites a sender to SRS0 at the forwarding domain and reverses it', () => {
    const a = srsForward(key, 'Alice@Example.COM', 'fwd.example', now) as string
    assert.match(a, /^SRS0=[a-z2-7]{6}=[a-z2-7]{2}=Example\.COM=Alice@fwd\.example$/)
    assert.deepEqual(srsReverse(key, a, now, 21), { ok: true, address: 'Alice@Example.COM' })
  })

  it('keeps the null sender null', () => {
    assert.equal(srsForward(key, '', 'fwd.example', now), '')
  })

  it('verifies case-insensitively (an MTA that upper- or lower-cases the address)', () => {
    const a = srsForward(key, 'bob.smith=x@mail.example.org', 'fwd.example', now) as string
    for (const v of [a.toUpperCase(), a.toLowerCase()]) {
      const r = srsReverse(key, v, now, 21)
      assert.ok(r.ok, `${v}: ${JSON.stringify(r)}`)
      assert.equal(r.address.toLowerCase(), 'bob.smith=x@mail.example.org')
    }
  })

  it('refuses a tampered hash, domain, local part or timestamp, and another key', () => {
    const a = srsForward(key, 'alice@example.com', 'fwd.example', now) as string
    const [, hash, tt] = /^SRS0=([^=]+)=([^=]+)=/.exec(a) as unknown as [string, string, string]
    const flip = (s: string) => (s[0] === 'a' ? `b${s.slice(1)}` : `a${s.slice(1)}`)
    const cases = [
      a.replace(hash, flip(hash)),
      a.replace('=example.com=', '=example.net='),
      a.replace('=alice@', '=mallory@'),
      a.replace(`=${tt}=`, `=${flip(tt)}=`),
    ]
    for (const c of cases) assert.deepEqual(srsReverse(key, c, now, 21), { ok: false, reason: 'bad_hash' }, c)
    assert.deepEqual(srsReverse(other, a, now, 21), { ok: false, reason: 'bad_hash' })
  })

  it('refuses an address older than the age limit, or stamped in the future', () => {
    const a = srsForward(key, 'alice@example.com', 'fwd.example', now) as string
    assert.ok(srsReverse(key, a, now + 21 * DAY, 21).ok)
    assert.deepEqual(srsReverse(key, a, now + 22 * DAY, 21), { ok: false, reason: 'expired' })
    assert.deepEqual(srsReverse(key, a, now - DAY, 21), { ok: false, reason: 'expired' })
  })

  it('says what is not SRS and what is malformed, without throwing', () => {
    assert.deepEqual(srsReverse(key, 'alice@fwd.example', now, 21), { ok: false, reason: 'not_srs' })
    assert.deepEqual(srsReverse(key, 'no-at-sign', now, 21), { ok: false, reason: 'not_srs' })
    assert.deepEqual(srsReverse(key, 'SRS0=abc@fwd.example', now, 21), { ok: false, reason: 'malformed' })
    assert.deepEqual(srsReverse(key, 'SRS0=aaaaaa=!!=d.example=l@fwd.example', now, 21), {
      ok: false,
      reason: 'malformed',
    })
    assert.deepEqual(srsReverse(key, 'SRS1=aaaaaa@fwd.example', now, 21), { ok: false, reason: 'malformed' })
    assert.deepEqual(srsReverse(key, 'x'.repeat(700), now, 21), { ok: false, reason: 'not_srs' })
    assert.equal(isSrsLocal('srs0+abc'), true)
    assert.equal(isSrsLocal('SRS1=abc'), true)
    assert.equal(isSrsLocal('srs2=abc'), false)
    assert.equal(isSrsLocal('srsly'), false)
  })

  it('forwards an SRS0 address of another forwarder as SRS1, reversing to that SRS0 address', () => {
    const first = srsForward(other, 'alice@example.com', 'first.example', now) as string
    const second = srsForward(key, first, 'fwd.example', now) as string
    assert.match(
      second,
      /^SRS1=[a-z2-7]{6}=first\.example==[a-z2-7]{6}=[a-z2-7]{2}=example\.com=alice@fwd\.example$/,
    )
    const back = srsReverse(key, second, now, 21)
    assert.deepEqual(back, { ok: true, address: first })
    // The first forwarder reverses its own part.
    assert.deepEqual(srsReverse(other, first, now, 21), { ok: true, address: 'alice@example.com' })
    // A third hop keeps the first hop and stays the same length class (SRS1 again).
    const third = srsForward(other, second, 'third.example', now) as string
    assert.match(third, /^SRS1=[a-z2-7]{6}=first\.example==/)
    assert.deepEqual(srsReverse(other, third, now, 21), { ok: true, address: first })
    assert.deepEqual(srsReverse(key, second.replace('first.example', 'evil.example'), now, 21), {
      ok: false,
      reason: 'bad_hash',
    })
  })

  it('does not make a local part over 64 octets, and refuses a short key', () => {
    assert.equal(srsForward(key, `${'x'.repeat(40)}@long-domain-name.example.com`, 'fwd.example', now), null)
    assert.throws(() => srsForward(Buffer.alloc(8), 'a@b.example', 'fwd.example', now), RangeError)
    assert.throws(() => srsReverse(Buffer.alloc(8), 'a@b.example', now, 21), RangeError)
    assert.throws(() => srsForward(key, 'not-an-address', 'fwd.example', now), TypeError)
  })
})
