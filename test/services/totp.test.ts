import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  base32Decode,
  base32Encode,
  hashRecoveryCode,
  hotp,
  newRecoveryCodes,
  newTotpSecret,
  otpauthUri,
  totpAt,
  verifyTotp,
} from '../../src/services/accounts/totp.ts'

const RFC_SECRET = Buffer.from('12345678901234567890', 'ascii')

describe('hotp', () => {
  it('matches RFC 4226 Appendix D', () => {
    const expected = [
      '755224',
      '287082',
      '359152',
      '969429',
      '338314',
      '254676',
      '287922',
      '162583',
      '399871',
      '520489',
    ]
    expected.forEach((code, counter) => {
      assert.equal(hotp(RFC_SECRET, counter), code, `counter ${counter}`)
      assert.equal(hotp(RFC_SECRET, BigInt(counter)), code, `bigint counter ${counter}`)
    })
  })

  it('matches RFC 6238 Appendix B (SHA-1, 8 digits)', () => {
    const vectors: [number, string][] = [
      [59, '94287082'],
      [1111111109, '07081804'],
      [1111111111, '14050471'],
      [1234567890, '89005924'],
      [2000000000, '69279037'],
      [20000000000, '65353130'],
    ]
    for (const [t, code] of vectors) {
      assert.equal(hotp(RFC_SECRET, Math.floor(t / 30), 8), code, `t=${t}`)
      assert.equal(totpAt(RFC_SECRET, t * 1000), code.slice(2), `totpAt t=${t} (6-digit suffix)`)
    }
  })

  it('refuses short secrets, bad digits and bad counters', () => {
    assert.throws(() => hotp(Buffer.alloc(15), 0), RangeError)
    assert.throws(() => hotp(RFC_SECRET, 0, 5), RangeError)
    assert.throws(() => hotp(RFC_SECRET, -1), RangeError)
    assert.throws(() => hotp(RFC_SECRET, 1.5), RangeError)
    assert.throws(() => hotp(RFC_SECRET, 2n ** 64n), RangeError)
    assert.equal(hotp(RFC_SECRET, 2n ** 64n - 1n).length, 6)
  })
})

describe('base32', () => {
  it('matches RFC 4648 section 10 (unpadded) and round-trips', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'MY'],
      ['fo', 'MZXQ'],
      ['foo', 'MZXW6'],
      ['foob', 'MZXW6YQ'],
      ['fooba', 'MZXW6YTB'],
      ['foobar', 'MZXW6YTBOI'],
    ]
    for (const [plain, encoded] of vectors) {
      assert.equal(base32Encode(Buffer.from(plain)), encoded)
      assert.equal(base32Decode(encoded).toString(), plain)
    }
    for (let i = 0; i < 50; i++) {
      const secret = newTotpSecret()
      assert.equal(secret.length, 20)
      assert.deepEqual(base32Decode(base32Encode(secret)), secret)
    }
  })

  it('accepts lower case, spaces and padding', () => {
    assert.equal(base32Decode('mzxw 6ytb oi======').toString(), 'foobar')
    assert.equal(base32Decode('MZXW6YQ=').toString(), 'foob')
  })

  it('throws on invalid characters and impossible lengths', () => {
    assert.throws(() => base32Decode('MZXW1YTB'), SyntaxError) // '1' is not in the alphabet
    assert.throws(() => base32Decode('MZ=XW6YTB'), SyntaxError) // padding in the middle
    assert.throws(() => base32Decode('MZX'), SyntaxError)
  })
})

describe('verifyTotp', () => {
  const secret = newTotpSecret()
  const now = 1_700_000_000_000 + 12_345
  const step = Math.floor(now / 30_000)
  const codeAt = (s: number) => hotp(secret, s)

  it('accepts the current, previous and next step and returns it', () => {
    assert.equal(verifyTotp(secret, totpAt(secret, now), now), step)
    assert.equal(verifyTotp(secret, codeAt(step - 1), now), step - 1)
    assert.equal(verifyTotp(secret, codeAt(step + 1), now), step + 1)
  })

  it('refuses codes two steps away, and everything but the current step with window 0', () => {
    assert.equal(verifyTotp(secret, codeAt(step - 2), now), null)
    assert.equal(verifyTotp(secret, codeAt(step + 2), now), null)
    assert.equal(verifyTotp(secret, codeAt(step - 1), now, { window: 0 }), null)
    assert.equal(verifyTotp(secret, codeAt(step), now, { window: 0 }), step)
  })

  it('refuses replay of the last used step or older', () => {
    const used = verifyTotp(secret, codeAt(step), now)
    assert.equal(used, step)
    assert.equal(verifyTotp(secret, codeAt(step), now, { lastUsedStep: used }), null)
    assert.equal(verifyTotp(secret, codeAt(step - 1), now, { lastUsedStep: used }), null)
    assert.equal(verifyTotp(secret, codeAt(step + 1), now, { lastUsedStep: used }), step + 1)
    assert.equal(verifyTotp(secret, codeAt(step), now, { lastUsedStep: null }), step)
  })

  it('accepts one space in the middle and refuses other shapes', () => {
    const code = codeAt(step)
    assert.equal(verifyTotp(secret, `${code.slice(0, 3)} ${code.slice(3)}`, now), step)
    for (const bad of [
      code.slice(0, 5),
      `${code}0`,
      `${code.slice(0, 5)}a`,
      ` ${code}`,
      `${code} `,
      `${code.slice(0, 3)}  ${code.slice(3)}`,
      `${code.slice(0, 2)} ${code.slice(2)}`,
      code.replace(/[0-9]/, '\u0661'), // Arabic-Indic digit
      '',
    ]) {
      assert.equal(verifyTotp(secret, bad, now), null, JSON.stringify(bad))
    }
  })

  it('rejects a bad window or time', () => {
    assert.throws(() => verifyTotp(secret, '123456', now, { window: -1 }), RangeError)
    assert.throws(() => verifyTotp(secret, '123456', now, { window: 1.5 }), RangeError)
    assert.throws(() => verifyTotp(secret, '123456', Number.NaN), RangeError)
  })

  it('does not look before step 0', () => {
    assert.equal(verifyTotp(RFC_SECRET, hotp(RFC_SECRET, 0), 1000), 0)
  })
})

describe('otpauthUri', () => {
  it('percent-encodes issuer and account and carries the secret', () => {
    const secret = newTotpSecret()
    const uri = otpauthUri({ secret, issuer: 'Postern Mail', account: 'alice+x@example.com' })
    assert.ok(uri.startsWith('otpauth://totp/Postern%20Mail:alice%2Bx%40example.com?'), uri)
    const url = new URL(uri)
    assert.equal(url.protocol, 'otpauth:')
    assert.equal(url.host, 'totp')
    assert.equal(decodeURIComponent(url.pathname), '/Postern Mail:alice+x@example.com')
    const q = url.searchParams
    assert.equal(q.get('issuer'), 'Postern Mail')
    assert.equal(q.get('algorithm'), 'SHA1')
    assert.equal(q.get('digits'), '6')
    assert.equal(q.get('period'), '30')
    const encoded = q.get('secret') ?? ''
    assert.match(encoded, /^[A-Z2-7]+$/)
    assert.deepEqual(base32Decode(encoded), secret)
  })

  it('refuses a colon or an empty value in the label', () => {
    const secret = newTotpSecret()
    assert.throws(() => otpauthUri({ secret, issuer: 'a:b', account: 'x' }), RangeError)
    assert.throws(() => otpauthUri({ secret, issuer: 'a', account: '' }), RangeError)
  })
})

describe('recovery codes', () => {
  it('are distinct and well-formed', () => {
    const codes = newRecoveryCodes()
    assert.equal(codes.length, 10)
    assert.equal(new Set(codes).size, 10)
    for (const c of codes) assert.match(c, /^[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{4}$/)
    assert.equal(newRecoveryCodes(3).length, 3)
    assert.throws(() => newRecoveryCodes(0), RangeError)
  })

  it('use the whole alphabet', () => {
    const seen = new Set(newRecoveryCodes(100).join('').replaceAll('-', ''))
    assert.equal(seen.size, 31)
    for (const ch of '01ilo') assert.ok(!seen.has(ch), ch)
  })

  it('hash after normalising case, spaces and dashes', () => {
    const h = hashRecoveryCode('7kq2-9xdm-4rtb')
    assert.match(h, /^[0-9a-f]{64}$/)
    assert.equal(hashRecoveryCode('7KQ2 9XDM-4RTB'), h)
    assert.equal(hashRecoveryCode(' 7kq29xdm4rtb\n'), h)
    assert.notEqual(hashRecoveryCode('7kq2-9xdm-4rtc'), h)
  })
})
