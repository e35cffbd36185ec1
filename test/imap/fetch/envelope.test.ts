import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { envelopeOf, parseAddressList } from '../../../src/imap/fetch/envelope.ts'
import { parseMimeTree } from '../../../src/mail/mime-tree.ts'

const env = (...lines: string[]) => {
  const raw = Buffer.from(`${lines.join('\r\n')}\r\n\r\nbody`, 'utf8')
  return envelopeOf(raw, parseMimeTree(raw))
}
const addrs = (v: string) => parseAddressList(v).map((a) => [a.name, a.adl, a.mailbox, a.host])

describe('envelopeOf', () => {
  test('the RFC 9051 field order, raw unfolded strings', () => {
    assert.deepEqual(
      env(
        'Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)',
        'From: Terry Gray <gray@cac.washington.edu>',
        'Subject: IMAP4rev2 WG mtg summary',
        '  and minutes',
        'To: imap@cac.washington.edu',
        'cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>',
        'Message-Id: <B27397-0100000@cac.washington.edu>',
        'In-Reply-To: <x@y>',
      ),
      [
        'Wed, 17 Jul 1996 02:23:25 -0700 (PDT)',
        'IMAP4rev2 WG mtg summary  and minutes',
        [['Terry Gray', null, 'gray', 'cac.washington.edu']],
        [['Terry Gray', null, 'gray', 'cac.washington.edu']],
        [['Terry Gray', null, 'gray', 'cac.washington.edu']],
        [[null, null, 'imap', 'cac.washington.edu']],
        [
          [null, null, 'minutes', 'CNRI.Reston.VA.US'],
          ['John Klensin', null, 'KLENSIN', 'MIT.EDU'],
        ],
        null,
        '<x@y>',
        '<B27397-0100000@cac.washington.edu>',
      ],
    )
  })

  test('missing fields are NIL; empty ones are "" or, for address lists, NIL', () => {
    assert.deepEqual(env('X-Other: 1'), [null, null, null, null, null, null, null, null, null, null])
    assert.deepEqual(env('Subject:', 'To:  ', 'Date: '), [
      '',
      '',
      null,
      null,
      null,
      null,
      null,
      null,
      null,
      null,
    ])
  })

  test('Sender and Reply-To default to From when absent or empty', () => {
    const e = env('From: a@b.test', 'Sender:', 'Reply-To: r@b.test') as unknown[]
    assert.deepEqual(e[3], [[null, null, 'a', 'b.test']])
    assert.deepEqual(e[4], [[null, null, 'r', 'b.test']])
  })

  test('the first occurrence of a field is used', () => {
    const e = env('Subject: one', 'Subject: two') as unknown[]
    assert.equal(e[1], 'one')
  })

  test('encoded words are kept raw and 8-bit text is kept as UTF-8', () => {
    const e = env(
      'Subject: =?UTF-8?B?SGVsbG8=?= =?UTF-8?Q?w=C3=B6rld?=',
      'From: =?utf-8?q?J=C3=B6rg?= <j@x.test>',
      'To: J\u00f6rg <j@x.test>',
    ) as unknown[]
    assert.equal(e[1], '=?UTF-8?B?SGVsbG8=?= =?UTF-8?Q?w=C3=B6rld?=')
    assert.deepEqual(e[2], [['=?utf-8?q?J=C3=B6rg?=', null, 'j', 'x.test']])
    assert.deepEqual(e[5], [['J\u00f6rg', null, 'j', 'x.test']])
  })

  test('an encapsulated message has its own envelope', () => {
    const raw = Buffer.from(
      'Subject: outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: i@x.test\r\n\r\nhi',
    )
    const root = parseMimeTree(raw)
    const e = envelopeOf(raw, root.message!) as unknown[]
    assert.equal(e[1], 'inner')
    assert.deepEqual(e[2], [[null, null, 'i', 'x.test']])
  })
})

describe('parseAddressList', () => {
  test('names: quoted, escaped, obsolete phrases and comments', () => {
    assert.deepEqual(addrs('"Joe Q. Public" <john.q.public@example.com>'), [
      ['Joe Q. Public', null, 'john.q.public', 'example.com'],
    ])
    assert.deepEqual(addrs('Joe Q. Public <j@example.com>'), [['Joe Q. Public', null, 'j', 'example.com']])
    assert.deepEqual(addrs('"Giant; \\"Big\\" Box" <sysservices@example.net>'), [
      ['Giant; "Big" Box', null, 'sysservices', 'example.net'],
    ])
    assert.deepEqual(addrs('Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>'), [
      ['Pete', null, 'pete', 'silly.test'],
    ])
    assert.deepEqual(addrs('jdoe@example.org (John Doe)'), [['John Doe', null, 'jdoe', 'example.org']])
    assert.deepEqual(addrs('"" <a@b.test>, <c@d.test>'), [
      [null, null, 'a', 'b.test'],
      [null, null, 'c', 'd.test'],
    ])
  })

  test('groups', () => {
    assert.deepEqual(addrs('group: a@b.test, Cee <c@d.test>;, e@f.test'), [
      [null, null, 'group', null],
      [null, null, 'a', 'b.test'],
      ['Cee', null, 'c', 'd.test'],
      [null, null, null, null],
      [null, null, 'e', 'f.test'],
    ])
    assert.deepEqual(addrs('undisclosed-recipients:;'), [
      [null, null, 'undisclosed-recipients', null],
      [null, null, null, null],
    ])
    assert.deepEqual(addrs('"My Group": x@y.test'), [
      [null, null, 'My Group', null],
      [null, null, 'x', 'y.test'],
      [null, null, null, null],
    ])
  })

  test('local parts, routes, literals and missing domains', () => {
    assert.deepEqual(addrs('"john doe"@x.test, "john"@x.test, "a\\"b"@x.test'), [
      [null, null, '"john doe"', 'x.test'],
      [null, null, 'john', 'x.test'],
      [null, null, '"a\\"b"', 'x.test'],
    ])
    assert.deepEqual(addrs('<@relay.test,@r2.test:joe@example.com>'), [
      [null, '@relay.test,@r2.test', 'joe', 'example.com'],
    ])
    assert.deepEqual(addrs('user@[192.0.2.1]'), [[null, null, 'user', '[192.0.2.1]']])
    assert.deepEqual(addrs('postmaster, Name <local>'), [
      [null, null, 'postmaster', 'MISSING_DOMAIN'],
      ['Name', null, 'local', 'MISSING_DOMAIN'],
    ])
    assert.deepEqual(addrs('first . last @ example . com'), [[null, null, 'first.last', 'example.com']])
  })

  test('empty and garbage input never throws', () => {
    assert.deepEqual(addrs(''), [])
    assert.deepEqual(addrs(' , ,, '), [])
    assert.deepEqual(addrs('<>'), [])
    assert.deepEqual(addrs('"unterminated <a@b'), [[null, null, '"unterminated <a@b"', 'MISSING_DOMAIN']])
    assert.deepEqual(addrs('Name <a@b.test'), [['Name', null, 'a', 'b.test']])
    assert.deepEqual(addrs('a@b.test>, ;;'), [[null, null, 'a', 'b.test']])
    let seed = 3
    const pieces = [
      '"',
      '(',
      ')',
      '<',
      '>',
      '@',
      ',',
      ';',
      ':',
      '.',
      '\\',
      ' ',
      'ab',
      '[',
      ']',
      '\u00e9',
      '=?x?q?y?=',
    ]
    for (let k = 0; k < 2000; k++) {
      let s = ''
      for (let i = 0; i < 30; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff
        s += pieces[seed % pieces.length]
      }
      for (const a of parseAddressList(s)) {
        for (const v of [a.name, a.adl, a.mailbox, a.host]) assert.ok(v === null || typeof v === 'string')
      }
    }
  })
})
