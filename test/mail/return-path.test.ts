import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { AddressError, isValidAddress } from '../../src/mail/address.ts'
import { isReturnPathLocal, makeReturnPath, parseReturnPath } from '../../src/mail/return-path.ts'

const key = Buffer.from('0123456789abcdef0123456789abcdef')
const otherKey = Buffer.from('fedcba9876543210fedcba9876543210')
const id = 'eml_01jc5x3ab0cdefghjkmnpqrstv'
const id2 = 'eml_01jc5x3ab0cdefghjkmnpqrstw'

const good = makeReturnPath(key, id, 'example.com')
const [goodLocal = '', goodDomain = ''] = good.split('@')
/** The same address with the character at `i` of the mac replaced by another base32 one. */
function flip(address: string, i: number): string {
  const at = address.indexOf('@')
  const pos = at - 16 + i
  const c = address[pos] === '0' ? '1' : '0'
  return address.slice(0, pos) + c + address.slice(pos + 1)
}

describe('makeReturnPath', () => {
  test('writes bounces+<id>-<mac>@<domain>, a valid address with a dot-atom local part of <= 64 octets', () => {
    assert.match(good, /^bounces\+eml_01jc5x3ab0cdefghjkmnpqrstv-[0-9a-hjkmnp-tv-z]{16}@example\.com$/)
    assert.ok(isValidAddress(good))
    assert.ok(Buffer.byteLength(goodLocal) <= 64)
    assert.equal(goodLocal, goodLocal.toLowerCase())
    assert.equal(goodDomain, 'example.com')
  })

  test('is deterministic and depends on key, id and domain', () => {
    assert.equal(makeReturnPath(key, id, 'example.com'), good)
    const mac = (a: string) => a.split('@')[0]?.split('-')[1]
    const macs = new Set([
      mac(good),
      mac(makeReturnPath(otherKey, id, 'example.com')),
      mac(makeReturnPath(key, id2, 'example.com')),
      mac(makeReturnPath(key, id, 'example.org')),
    ])
    assert.equal(macs.size, 4)
  })

  test('folds the id and domain to lower case', () => {
    assert.equal(makeReturnPath(key, id.toUpperCase(), 'EXAMPLE.com.'), good)
  })

  test('IDN domains are written as A-labels', () => {
    assert.match(makeReturnPath(key, id, 'bücher.example'), /@xn--bcher-kva\.example$/)
  })

  const invalid: { name: string; key?: Buffer; id?: string; domain?: string; error: unknown }[] = [
    { name: 'short key', key: Buffer.alloc(15), error: RangeError },
    { name: 'id without prefix', id: '01jc5x3ab0cdefghjkmnpqrstv', error: RangeError },
    { name: 'id too short', id: 'eml_01jc5x3ab0', error: RangeError },
    { name: 'id with a non-Crockford letter', id: 'eml_01jc5x3ab0cdefghjkmnpqrstu', error: RangeError },
    { name: 'id with a dash', id: 'eml_01jc5x3ab0cdefghjkmnpqrs-v', error: RangeError },
    { name: 'domain with @', domain: 'a@example.com', error: AddressError },
    { name: 'empty domain', domain: '', error: AddressError },
  ]
  for (const c of invalid) {
    test(`throws for ${c.name}`, () => {
      assert.throws(
        () => makeReturnPath(c.key ?? key, c.id ?? id, c.domain ?? 'example.com'),
        c.error as typeof Error,
      )
    })
  }
})

describe('parseReturnPath', () => {
  const ok = { outboundId: id, domain: 'example.com' }
  const valid: { name: string; address: string }[] = [
    { name: 'as made', address: good },
    { name: 'lower-cased by a remote MTA', address: good.toLowerCase() },
    { name: 'upper-cased', address: good.toUpperCase() },
    { name: 'mixed case', address: `BOUNCES+${goodLocal.slice(8)}@Example.COM` },
    { name: 'in angle brackets with blanks', address: ` <${good}> ` },
    { name: 'with a trailing dot on the domain', address: `${good}.` },
  ]
  for (const c of valid) {
    test(`verifies: ${c.name}`, () => assert.deepEqual(parseReturnPath(key, c.address), ok))
  }

  test('round-trips many ids and domains', () => {
    const alphabet = '0123456789abcdefghjkmnpqrstvwxyz'
    for (let n = 0; n < 200; n++) {
      let body = ''
      for (let i = 0; i < 26; i++) body += alphabet[(n * 7 + i * 13) % 32]
      const outboundId = `eml_${body}`
      const domain = `d${n}.example.net`
      assert.deepEqual(parseReturnPath(key, makeReturnPath(key, outboundId, domain)), { outboundId, domain })
    }
  })

  const rejected: { name: string; address: string; key?: Buffer }[] = [
    { name: 'another key', address: good, key: otherKey },
    { name: 'the first mac character changed', address: flip(good, 0) },
    { name: 'the last mac character changed', address: flip(good, 15) },
    { name: 'moved to another domain', address: `${goodLocal}@example.org` },
    { name: 'another id with the same mac', address: good.replace(id, id2) },
    { name: 'mac truncated', address: `${goodLocal.slice(0, -1)}@example.com` },
    { name: 'mac extended', address: `${goodLocal}0@example.com` },
    { name: 'no mac', address: `bounces+${id}@example.com` },
    { name: 'empty mac', address: `bounces+${id}-@example.com` },
    { name: 'another prefix', address: `bounce+${goodLocal.slice(8)}@example.com` },
    { name: 'a plain address', address: 'user@example.com' },
    { name: 'a subaddress', address: 'bounces+newsletter@example.com' },
    { name: 'no domain', address: goodLocal },
    { name: 'empty domain', address: `${goodLocal}@` },
    { name: 'an IP literal domain', address: `${goodLocal}@[192.0.2.1]` },
    { name: 'empty', address: '' },
    { name: 'only @', address: '@' },
    { name: 'null reverse path', address: '<>' },
    { name: 'quoted local part', address: `"${goodLocal}"@example.com` },
    { name: 'a Kelvin sign folding to k', address: good.replace(/k/, '\u212a') },
    { name: 'a NUL in the local part', address: `${goodLocal}\0@example.com` },
    { name: 'very long', address: `${'a'.repeat(5000)}@example.com` },
  ]
  for (const c of rejected) {
    test(`null for ${c.name}`, () => assert.equal(parseReturnPath(c.key ?? key, c.address), null))
  }

  test('the Kelvin-sign address would verify if it were case-folded first', () => {
    const kelvin = good.replace(/k/, '\u212a')
    assert.notEqual(kelvin, good)
    assert.equal(kelvin.toLowerCase(), good)
  })

  test('throws for a short key (configuration error)', () => {
    assert.throws(() => parseReturnPath(Buffer.alloc(8), good), RangeError)
  })
})

describe('isReturnPathLocal', () => {
  const cases: [string, boolean][] = [
    [goodLocal, true],
    [goodLocal.toUpperCase(), true],
    ['Bounces+anything', true],
    ['bounces+', false],
    ['bounces', false],
    ['bounces-x', false],
    ['user', false],
    ['', false],
    ['xbounces+abc', false],
  ]
  for (const [local, want] of cases) {
    test(`${JSON.stringify(local)} -> ${want}`, () => assert.equal(isReturnPathLocal(local), want))
  }
})
