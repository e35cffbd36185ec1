// Modified UTF-7 mailbox names (RFC 3501 5.1.3): the RFC's example, round trips, and every
// non-canonical or broken form the decoder must refuse.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeMailboxName, encodeMailboxName } from '../../../src/imap/protocol/utf7.ts'

describe('encodeMailboxName', () => {
  it('encodes the RFC 3501 example', () => {
    assert.equal(encodeMailboxName('~peter/mail/台北/日本語'), '~peter/mail/&U,BTFw-/&ZeVnLIqe-')
  })

  it('leaves printable ASCII alone and writes & as &-', () => {
    assert.equal(encodeMailboxName('INBOX'), 'INBOX')
    assert.equal(encodeMailboxName('a&b'), 'a&-b')
    assert.equal(encodeMailboxName('&'), '&-')
    assert.equal(encodeMailboxName(' ~!"#$%()*+,-./:;<=>?@[\\]^_`{|}'), ' ~!"#$%()*+,-./:;<=>?@[\\]^_`{|}')
    assert.equal(encodeMailboxName(''), '')
  })

  it('puts a run of non-ASCII characters in one base64 section', () => {
    assert.equal(encodeMailboxName('日本語'), '&ZeVnLIqe-')
    assert.equal(encodeMailboxName('é&'), '&AOk-&-')
    assert.equal(encodeMailboxName('Entwürfe'), 'Entw&APw-rfe')
  })

  it('encodes control characters and DEL', () => {
    assert.equal(encodeMailboxName('a\tb'), 'a&AAk-b')
    assert.equal(encodeMailboxName('\x7f'), '&AH8-')
  })

  it('encodes characters outside the BMP as surrogate pairs', () => {
    assert.equal(encodeMailboxName('📧'), '&2D3c5w-')
    assert.equal(decodeMailboxName('&2D3c5w-'), '📧')
  })

  it('replaces lone surrogates rather than writing an invalid name', () => {
    assert.equal(decodeMailboxName(encodeMailboxName('a\ud800b')), 'a\ufffdb')
  })
})

describe('decodeMailboxName', () => {
  it('decodes the RFC 3501 example', () => {
    assert.equal(decodeMailboxName('~peter/mail/&U,BTFw-/&ZeVnLIqe-'), '~peter/mail/台北/日本語')
  })

  it('decodes &- as &', () => {
    assert.equal(decodeMailboxName('a&-b&-'), 'a&b&')
    assert.equal(decodeMailboxName('&AOk-&-'), 'é&')
  })

  it('round-trips assorted names', () => {
    for (const name of [
      'INBOX',
      'Sent Items',
      'Gelöschte Elemente',
      'Корзина',
      '已发送',
      'a&b&&c',
      '&&&',
      'x😀y😀😀z',
      'ĀāĂăĄą',
      'ab\u00a0cd',
      'A/B/C',
      '\u0100',
      '\u0100\u0101',
      '\u0100\u0101\u0102',
      '\u0100\u0101\u0102\u0103',
    ]) {
      assert.equal(decodeMailboxName(encodeMailboxName(name)), name, name)
    }
  })

  it('refuses an & not closed by -', () => {
    assert.throws(() => decodeMailboxName('&U,BTFw'), /not closed/)
    assert.throws(() => decodeMailboxName('a&'), /not closed/)
  })

  it('refuses characters outside modified base64', () => {
    assert.throws(() => decodeMailboxName('&U/BTFw-'), /invalid modified base64 character/)
    assert.throws(() => decodeMailboxName('&U=BTFw-'), /invalid modified base64 character/)
    assert.throws(() => decodeMailboxName('&ZeVn LIqe-'), /invalid modified base64 character/)
  })

  it('refuses encoded printable ASCII (non-shortest forms)', () => {
    assert.throws(() => decodeMailboxName('&ACY-'), /printable US-ASCII/) // '&'
    assert.throws(() => decodeMailboxName('&AGE-'), /printable US-ASCII/) // 'a'
    assert.throws(() => decodeMailboxName('&AOkAYQ-'), /printable US-ASCII/) // 'éa'
  })

  it('refuses truncated sections and non-zero padding bits', () => {
    assert.throws(() => decodeMailboxName('&A-'), /truncated/)
    assert.throws(() => decodeMailboxName('&AO-'), /truncated/)
    assert.throws(() => decodeMailboxName('&AOkA-'), /truncated/) // 24 bits: 8 left over
    assert.throws(() => decodeMailboxName('&AOl-'), /padding/) // 0x00E9 with a 1 in the padding
    assert.throws(() => decodeMailboxName('&U,BTFx-'), /padding/) // 台北 with a 1 in the padding
  })

  it('refuses unpaired surrogates', () => {
    assert.throws(() => decodeMailboxName('&2D0-'), /surrogate/) // high alone
    assert.throws(() => decodeMailboxName('&3M8-'), /surrogate/) // low alone
    assert.throws(() => decodeMailboxName('&2D0-x&3M8-'), /surrogate/)
    assert.throws(() => decodeMailboxName('&3M,YPQ-'), /surrogate/) // low then high
  })

  it('refuses two base64 sections back to back (null shift)', () => {
    assert.throws(() => decodeMailboxName('&U,BTFw-&ZeVnLIqe-'), /back to back/)
  })

  it('refuses octets that are not printable ASCII', () => {
    assert.throws(() => decodeMailboxName('台北'), /not printable/)
    assert.throws(() => decodeMailboxName('a\tb'), /not printable/)
    assert.throws(() => decodeMailboxName('a\x7fb'), /not printable/)
  })
})
