import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  AddressError,
  type AddressErrorReason,
  domainForDisplay,
  isValidAddress,
  normaliseDomain,
  type ParsedAddress,
  parseAddress,
  splitSubaddress,
} from '../../src/mail/address.ts'

const label63 = 'a'.repeat(63)
const label64 = 'a'.repeat(64)
/** A valid domain of exactly `n` octets: labels of up to 63 octets, then '.com'. */
function domainOf(n: number): string {
  const labels: string[] = []
  let left = n - 3 // octets before 'com', each label taking its size plus a dot
  while (left > 0) {
    let size = Math.min(63, left - 1)
    if (left - (size + 1) === 1) size -= 1 // never leave one octet, too short for a label and its dot
    labels.push('b'.repeat(size))
    left -= size + 1
  }
  const name = [...labels, 'com'].join('.')
  assert.equal(name.length, n)
  return name
}

function rejects(fn: () => unknown, reason: AddressErrorReason): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AddressError, `expected AddressError, got ${String(err)}`)
    assert.equal(err.reason, reason, err.message)
    assert.ok(err.message.length > 0)
    assert.doesNotMatch(err.message, /\p{Cc}/u, 'messages never echo control characters')
    return true
  })
}

describe('parseAddress: valid', () => {
  const cases: { input: string; want: ParsedAddress }[] = [
    {
      input: 'user@example.com',
      want: {
        local: 'user',
        quoted: false,
        domain: 'example.com',
        canonical: 'user@example.com',
        utf8: false,
      },
    },
    {
      input: 'User.Name@Example.COM',
      want: {
        local: 'User.Name',
        quoted: false,
        domain: 'example.com',
        canonical: 'user.name@example.com',
        utf8: false,
      },
    },
    {
      input: '"john doe"@example.com',
      want: {
        local: 'john doe',
        quoted: true,
        domain: 'example.com',
        canonical: '"john doe"@example.com',
        utf8: false,
      },
    },
    {
      input: '"John Doe"@example.com',
      want: {
        local: 'John Doe',
        quoted: true,
        domain: 'example.com',
        canonical: '"john doe"@example.com',
        utf8: false,
      },
    },
    {
      input: '"a\\"b"@example.com',
      want: {
        local: 'a"b',
        quoted: true,
        domain: 'example.com',
        canonical: '"a\\"b"@example.com',
        utf8: false,
      },
    },
    {
      input: '"a\\\\b"@example.com',
      want: {
        local: 'a\\b',
        quoted: true,
        domain: 'example.com',
        canonical: '"a\\\\b"@example.com',
        utf8: false,
      },
    },
    {
      input: '"weird@local"@example.com',
      want: {
        local: 'weird@local',
        quoted: true,
        domain: 'example.com',
        canonical: '"weird@local"@example.com',
        utf8: false,
      },
    },
    {
      // needless quotes and escapes are dropped from the canonical form
      input: '"Plain\\x"@example.com',
      want: {
        local: 'Plainx',
        quoted: false,
        domain: 'example.com',
        canonical: 'plainx@example.com',
        utf8: false,
      },
    },
    {
      input: '"john..doe"@example.com',
      want: {
        local: 'john..doe',
        quoted: true,
        domain: 'example.com',
        canonical: '"john..doe"@example.com',
        utf8: false,
      },
    },
    {
      input: 'δοκιμή@παράδειγμα.δοκιμή',
      want: {
        local: 'δοκιμή',
        quoted: false,
        domain: 'xn--hxajbheg2az3al.xn--jxalpdlp',
        canonical: 'δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp',
        utf8: true,
      },
    },
    {
      input: 'ΔΟΚΙΜΉ@example.com',
      want: {
        local: 'ΔΟΚΙΜΉ',
        quoted: false,
        domain: 'example.com',
        canonical: 'δοκιμή@example.com',
        utf8: true,
      },
    },
    {
      // NFC: a decomposed é is stored composed, so both spellings reach one mailbox
      input: 'Re\u0301sume\u0301@example.com',
      want: {
        local: 'Re\u0301sume\u0301',
        quoted: false,
        domain: 'example.com',
        canonical: 'r\u00e9sum\u00e9@example.com',
        utf8: true,
      },
    },
    {
      input: '"δο κιμή"@example.com',
      want: {
        local: 'δο κιμή',
        quoted: true,
        domain: 'example.com',
        canonical: '"δο κιμή"@example.com',
        utf8: true,
      },
    },
    {
      input: 'user@bücher.example',
      want: {
        local: 'user',
        quoted: false,
        domain: 'xn--bcher-kva.example',
        canonical: 'user@xn--bcher-kva.example',
        utf8: false,
      },
    },
    {
      input: 'user@XN--BCHER-KVA.example',
      want: {
        local: 'user',
        quoted: false,
        domain: 'xn--bcher-kva.example',
        canonical: 'user@xn--bcher-kva.example',
        utf8: false,
      },
    },
    {
      input: 'user@example.com.',
      want: {
        local: 'user',
        quoted: false,
        domain: 'example.com',
        canonical: 'user@example.com',
        utf8: false,
      },
    },
    {
      input: '  user@example.com\t',
      want: {
        local: 'user',
        quoted: false,
        domain: 'example.com',
        canonical: 'user@example.com',
        utf8: false,
      },
    },
    {
      input: 'a+tag@example.com',
      want: {
        local: 'a+tag',
        quoted: false,
        domain: 'example.com',
        canonical: 'a+tag@example.com',
        utf8: false,
      },
    },
    {
      input: "!#$%&'*+-/=?^_`{|}~@example.com",
      want: {
        local: "!#$%&'*+-/=?^_`{|}~",
        quoted: false,
        domain: 'example.com',
        canonical: "!#$%&'*+-/=?^_`{|}~@example.com",
        utf8: false,
      },
    },
    {
      input: `${'x'.repeat(64)}@example.com`,
      want: {
        local: 'x'.repeat(64),
        quoted: false,
        domain: 'example.com',
        canonical: `${'x'.repeat(64)}@example.com`,
        utf8: false,
      },
    },
    {
      input: `${'x'.repeat(64)}@${domainOf(189)}`, // exactly 254 octets
      want: {
        local: 'x'.repeat(64),
        quoted: false,
        domain: domainOf(189),
        canonical: `${'x'.repeat(64)}@${domainOf(189)}`,
        utf8: false,
      },
    },
    {
      input: 'user@sub.r3---sn-abc.example.co.uk',
      want: {
        local: 'user',
        quoted: false,
        domain: 'sub.r3---sn-abc.example.co.uk',
        canonical: 'user@sub.r3---sn-abc.example.co.uk',
        utf8: false,
      },
    },
    {
      input: 'user@123.example',
      want: {
        local: 'user',
        quoted: false,
        domain: '123.example',
        canonical: 'user@123.example',
        utf8: false,
      },
    },
  ]
  for (const { input, want } of cases) {
    test(JSON.stringify(input), () => {
      assert.deepEqual(parseAddress(input), want)
      assert.equal(isValidAddress(input), true)
      // the canonical form is a fixed point
      assert.equal(parseAddress(want.canonical).canonical, want.canonical)
    })
  }
})

describe('parseAddress: invalid', () => {
  const cases: { name?: string; input: string; reason: AddressErrorReason }[] = [
    { input: '', reason: 'EMPTY' },
    { input: '   ', reason: 'EMPTY' },
    { input: '@example.com', reason: 'EMPTY_LOCAL' },
    { input: '""@example.com', reason: 'EMPTY_LOCAL' },
    { input: 'user@', reason: 'EMPTY_DOMAIN' },
    { input: 'user', reason: 'MISSING_AT' },
    { input: '"user"', reason: 'MISSING_AT' },
    { input: 'a@@b.com', reason: 'EXTRA_AT' },
    { input: 'a@b@c.com', reason: 'EXTRA_AT' },
    { input: '"a"@b@c.com', reason: 'EXTRA_AT' },
    { input: '.user@example.com', reason: 'LEADING_DOT' },
    { input: 'user.@example.com', reason: 'TRAILING_DOT' },
    { input: 'us..er@example.com', reason: 'DOUBLE_DOT' },
    { input: 'us er@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { input: 'us,er@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { input: 'us"er"@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { input: 'user(comment)@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { input: 'User <user@example.com>', reason: 'FORBIDDEN_CHARACTER' },
    { input: '<user@example.com>', reason: 'FORBIDDEN_CHARACTER' },
    { input: '"unterminated@example.com', reason: 'UNTERMINATED_QUOTE' },
    { input: '"escaped\\"@example.com', reason: 'UNTERMINATED_QUOTE' },
    { input: '"a".b@example.com', reason: 'TEXT_AFTER_QUOTE' },
    { input: '"a" @example.com', reason: 'TEXT_AFTER_QUOTE' },
    { input: 'user@-bad.com', reason: 'LABEL_HYPHEN' },
    { input: 'user@bad-.com', reason: 'LABEL_HYPHEN' },
    { input: 'user@localhost', reason: 'SINGLE_LABEL' },
    { input: 'user@[192.0.2.1]', reason: 'ADDRESS_LITERAL' },
    { input: 'user@[IPv6:2001:db8::1]', reason: 'ADDRESS_LITERAL' },
    { input: 'user@192.0.2.1', reason: 'IP_ADDRESS' },
    { input: 'user@example.123', reason: 'NUMERIC_TLD' },
    { input: 'user@1.2.3', reason: 'NUMERIC_TLD' },
    { input: 'user@a.0x7f', reason: 'NUMERIC_TLD' },
    { name: '65-octet local part', input: `${'x'.repeat(65)}@example.com`, reason: 'LOCAL_TOO_LONG' },
    { name: '33 two-octet characters', input: `${'é'.repeat(33)}@example.com`, reason: 'LOCAL_TOO_LONG' },
    { name: '255-octet address', input: `${'x'.repeat(64)}@${domainOf(190)}`, reason: 'TOO_LONG' },
    { name: 'huge input', input: `${'x'.repeat(100_000)}@example.com`, reason: 'TOO_LONG' },
    { input: 'user@exa mple.com', reason: 'DOMAIN_CHARACTER' },
    { input: 'user@ example.com', reason: 'DOMAIN_CHARACTER' },
    { input: 'user@example..com', reason: 'EMPTY_LABEL' },
    { input: 'user@.example.com', reason: 'EMPTY_LABEL' },
    { input: 'user@example.com..', reason: 'EMPTY_LABEL' },
    { name: '64-octet label', input: `user@${label64}.com`, reason: 'LABEL_TOO_LONG' },
    { input: 'user@a_b.com', reason: 'DOMAIN_CHARACTER' },
    { input: 'user@xn--zz.com', reason: 'BAD_IDN' },
    { input: 'user@xn--abc-.com', reason: 'LABEL_HYPHEN' },
    { input: 'user@xn--example.com', reason: 'BAD_IDN' },
    { input: 'user@a\u200db.com', reason: 'BAD_IDN' },
    // control characters and injection: never accepted, not even at the ends
    { name: 'NUL in local part', input: 'us\0er@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { name: 'tab in local part', input: 'us\ter@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { name: 'DEL in local part', input: 'us\x7Fer@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { name: 'C1 control in local part', input: 'us\x85er@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { name: 'NUL inside quotes', input: '"us\0er"@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { name: 'tab inside quotes', input: '"us\ter"@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { name: 'escaped LF inside quotes', input: '"us\\\ner"@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { name: 'trailing CRLF', input: 'user@example.com\r\n', reason: 'DOMAIN_CHARACTER' },
    { name: 'SMTP smuggling', input: 'user@example.com>\r\nRCPT TO:<x@y.com', reason: 'EXTRA_AT' },
    { name: 'CR in domain', input: 'user@exam\rple.com', reason: 'DOMAIN_CHARACTER' },
    { name: 'leading LF', input: '\nuser@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { name: 'no-break space', input: 'us\u00a0er@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { name: 'bidi override', input: 'us\u202eer@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { name: 'lone surrogate', input: 'us\ud800er@example.com', reason: 'FORBIDDEN_CHARACTER' },
    { name: 'BOM', input: '\ufeffuser@example.com', reason: 'FORBIDDEN_CHARACTER' },
  ]
  for (const { name, input, reason } of cases) {
    test(name ?? JSON.stringify(input), () => {
      rejects(() => parseAddress(input), reason)
      assert.equal(isValidAddress(input), false)
    })
  }

  test('messages say what is wrong', () => {
    assert.throws(() => parseAddress('us er@example.com'), /a space/)
    assert.throws(() => parseAddress('us,er@example.com'), /a comma/)
    assert.throws(() => parseAddress('us\0er@example.com'), /U\+0000/)
    assert.throws(() => parseAddress('user@[192.0.2.1]'), /Address literals/)
    assert.throws(() => parseAddress('user@a_b.com'), /underscore/)
    assert.throws(() => parseAddress('user@localhost'), /at least two labels/)
  })
})

describe('splitSubaddress', () => {
  const cases: { local: string; separator?: string; base: string; tag: string | null }[] = [
    { local: 'a+tag', base: 'a', tag: 'tag' },
    { local: 'User.Name+News', base: 'User.Name', tag: 'News' },
    { local: 'a+b+c', base: 'a', tag: 'b+c' },
    { local: 'user+', base: 'user', tag: '' },
    { local: 'user', base: 'user', tag: null },
    { local: '+only', base: '+only', tag: null }, // empty base: a mailbox named '+only'
    { local: 'a.+x', base: 'a.+x', tag: null }, // base 'a.' is not a dot-atom
    { local: 'john doe+x', base: 'john doe+x', tag: null }, // needs quoting
    { local: '"a+b"', base: '"a+b"', tag: null }, // written with its quotes
    { local: 'a-tag', separator: '-', base: 'a', tag: 'tag' },
    { local: 'a+tag', separator: '-', base: 'a+tag', tag: null },
    { local: 'a--b', separator: '--', base: 'a', tag: 'b' },
    { local: 'δοκ+ιμή', base: 'δοκ', tag: 'ιμή' },
  ]
  for (const { local, separator, base, tag } of cases) {
    test(`${JSON.stringify(local)} sep ${JSON.stringify(separator ?? '+')}`, () => {
      assert.deepEqual(splitSubaddress(local, separator), { base, tag })
    })
  }

  test('works on a parsed address', () => {
    const { local } = parseAddress('a+tag@example.com')
    assert.deepEqual(splitSubaddress(local), { base: 'a', tag: 'tag' })
    const quoted = parseAddress('"a b+tag"@example.com')
    assert.deepEqual(splitSubaddress(quoted.local), { base: 'a b+tag', tag: null })
  })

  test('an empty separator is a programming error', () => {
    assert.throws(() => splitSubaddress('a+b', ''), RangeError)
  })
})

describe('normaliseDomain', () => {
  const valid: [string, string][] = [
    ['example.com', 'example.com'],
    ['Example.COM.', 'example.com'],
    ['  example.com  ', 'example.com'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['BÜCHER.example', 'xn--bcher-kva.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['παράδειγμα.δοκιμή', 'xn--hxajbheg2az3al.xn--jxalpdlp'],
    ['faß.de', 'xn--fa-hia.de'], // IDNA2008: ß is kept, not mapped to ss
    ['例え。テスト', 'xn--r8jz45g.xn--zckzah'], // ideographic full stop separates labels
    ['ＥＸＡＭＰＬＥ.com', 'example.com'], // full-width letters map to ASCII
    [`${label63}.com`, `${label63}.com`],
    [domainOf(253), domainOf(253)],
    [`${domainOf(253)}.`, domainOf(253)],
    ['a.b.c.d.example', 'a.b.c.d.example'],
    ['1e100.net', '1e100.net'],
    ['💩.la', 'xn--ls8h.la'], // UTS 46 as browsers apply it: emoji labels exist, so they are accepted
    ['a\u00adb.com', 'ab.com'], // UTS 46 maps the invisible soft hyphen to nothing
  ]
  for (const [input, want] of valid) {
    test(`${JSON.stringify(input)} -> ${want}`, () => {
      assert.equal(normaliseDomain(input), want)
      assert.equal(normaliseDomain(want), want, 'idempotent')
    })
  }

  const invalid: { name?: string; input: string; reason: AddressErrorReason }[] = [
    { input: '', reason: 'EMPTY_DOMAIN' },
    { input: '  ', reason: 'EMPTY_DOMAIN' },
    { input: 'com', reason: 'SINGLE_LABEL' },
    { input: 'com.', reason: 'SINGLE_LABEL' },
    { input: '.', reason: 'EMPTY_LABEL' },
    { input: '-a.com', reason: 'LABEL_HYPHEN' },
    { input: 'a-.com', reason: 'LABEL_HYPHEN' },
    { input: 'a_b.com', reason: 'DOMAIN_CHARACTER' },
    { input: '_dmarc.example.com', reason: 'DOMAIN_CHARACTER' },
    { input: 'a/b.com', reason: 'DOMAIN_CHARACTER' },
    { input: 'a%b.com', reason: 'DOMAIN_CHARACTER' },
    { input: 'a:b.com', reason: 'DOMAIN_CHARACTER' },
    { input: 'a\u00a0b.com', reason: 'DOMAIN_CHARACTER' },
    { input: '\u200b.com', reason: 'BAD_IDN' },
    { input: 'example..com', reason: 'EMPTY_LABEL' },
    { input: '[192.0.2.1]', reason: 'ADDRESS_LITERAL' },
    { input: '192.0.2.1', reason: 'IP_ADDRESS' },
    { input: '2001:db8::1', reason: 'IP_ADDRESS' },
    { input: 'example.123', reason: 'NUMERIC_TLD' },
    { input: 'example.0x1f', reason: 'NUMERIC_TLD' },
    { input: '１２３.com', reason: 'BAD_IDN' }, // full-width digits map to '123', then to an IPv4 address
    { input: 'xn--zz.com', reason: 'BAD_IDN' },
    { input: 'xn--.com', reason: 'LABEL_HYPHEN' },
    { input: 'xn--a.com', reason: 'BAD_IDN' },
    { input: 'xn--abc-.com', reason: 'LABEL_HYPHEN' },
    { name: '64-octet label', input: `${label64}.com`, reason: 'LABEL_TOO_LONG' },
    { name: '254 octets', input: domainOf(254), reason: 'DOMAIN_TOO_LONG' },
    { name: '254 octets and a dot', input: `${domainOf(254)}.`, reason: 'DOMAIN_TOO_LONG' },
    { name: 'huge input', input: 'a.'.repeat(10_000), reason: 'DOMAIN_TOO_LONG' },
  ]
  for (const { name, input, reason } of invalid) {
    test(`refuses ${name ?? JSON.stringify(input)}`, () => rejects(() => normaliseDomain(input), reason))
  }
})

describe('domainForDisplay', () => {
  const cases: [string, string][] = [
    ['xn--bcher-kva.example', 'bücher.example'],
    ['xn--hxajbheg2az3al.xn--jxalpdlp', 'παράδειγμα.δοκιμή'],
    ['example.com', 'example.com'],
    ['xn--zz.example', 'xn--zz.example'], // undecodable labels are shown as they are
  ]
  for (const [ascii, unicode] of cases) {
    test(`${ascii} -> ${unicode}`, () => {
      assert.equal(domainForDisplay(ascii), unicode)
    })
  }

  test('round-trips with normaliseDomain', () => {
    for (const name of ['bücher.example', 'παράδειγμα.δοκιμή', 'faß.de', '例え.テスト', 'example.com']) {
      const ascii = normaliseDomain(name)
      assert.equal(domainForDisplay(ascii), name)
      assert.equal(normaliseDomain(domainForDisplay(ascii)), ascii)
    }
  })
})
