// The command parser and the reply formatter, table-driven: every verb, paths (RFC 5321 4.1.2,
// RFC 6531), parameters (RFC 1870, 6152, 6531, 3461, 3030) and their errors.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type Command,
  type CommandError,
  decodeLine,
  type ParseContext,
  parseCommand,
} from '../../src/smtp/protocol/commands.ts'
import { decodeXtext } from '../../src/smtp/protocol/paths.ts'
import { formatReply, fromHandler, REPLIES, withDetail } from '../../src/smtp/protocol/replies.ts'

const ASCII: ParseContext = { smtputf8: false }
const UTF8: ParseContext = { smtputf8: true }

const mailFrom = (address: string, extra: Record<string, unknown> = {}) => ({
  kind: 'MAIL',
  from: {
    address,
    size: null,
    body: null,
    smtputf8: false,
    ret: null,
    envid: null,
    requireTls: false,
    ...extra,
  },
})
const rcptTo = (address: string, extra: Record<string, unknown> = {}) => ({
  kind: 'RCPT',
  to: { address, notify: null, orcpt: null, ...extra },
})
const error = (code: CommandError['error']) => code

type Row = [line: string, expected: unknown, ctx?: ParseContext]

function check(rows: Row[]): void {
  for (const [line, expected, ctx] of rows) {
    it(JSON.stringify(line), () => {
      const got: Command | CommandError = parseCommand(line, ctx ?? ASCII)
      if (typeof expected === 'string') {
        assert.equal(got.kind, 'ERROR', `expected ${expected}, got ${JSON.stringify(got)}`)
        assert.equal((got as CommandError).error, expected)
      } else assert.deepEqual(got, expected)
    })
  }
}

describe('verbs', () => {
  check([
    ['EHLO client.example', { kind: 'EHLO', domain: 'client.example' }],
    ['ehlo [192.0.2.1]', { kind: 'EHLO', domain: '[192.0.2.1]' }],
    ['HELO client.example  ', { kind: 'HELO', domain: 'client.example' }],
    ['EHLO', error('SYNTAX')],
    ['EHLO a b', error('SYNTAX')],
    ['DATA', { kind: 'DATA' }],
    ['data ', { kind: 'DATA' }],
    ['DATA now', error('SYNTAX')],
    ['RSET', { kind: 'RSET' }],
    ['RSET x', error('SYNTAX')],
    ['QUIT', { kind: 'QUIT' }],
    ['NOOP', { kind: 'NOOP' }],
    ['NOOP anything at all', { kind: 'NOOP' }],
    ['HELP MAIL', { kind: 'HELP' }],
    ['VRFY bob', { kind: 'VRFY' }],
    ['VRFY', error('SYNTAX')],
    ['STARTTLS', { kind: 'STARTTLS' }],
    ['STARTTLS x', error('SYNTAX')],
    ['AUTH PLAIN AGJvYgBzZWNyZXQ=', { kind: 'AUTH', mechanism: 'PLAIN', initial: 'AGJvYgBzZWNyZXQ=' }],
    ['AUTH LOGIN', { kind: 'AUTH', mechanism: 'LOGIN', initial: null }],
    ['AUTH', error('SYNTAX')],
    ['BDAT 100', { kind: 'BDAT', size: 100, last: false }],
    ['BDAT 0 LAST', { kind: 'BDAT', size: 0, last: true }],
    ['bdat 12 last', { kind: 'BDAT', size: 12, last: true }],
    ['BDAT', error('SYNTAX')],
    ['BDAT -1', error('SYNTAX')],
    ['BDAT 1 FIRST', error('SYNTAX')],
    ['BDAT 9999999999999999', error('SYNTAX')],
    ['EXPN staff', error('NOT_IMPLEMENTED')],
    ['TURN', error('NOT_IMPLEMENTED')],
    ['ETRN example.com', error('NOT_IMPLEMENTED')],
    ['FOO', error('UNRECOGNIZED')],
    ['', error('UNRECOGNIZED')],
    ['GET / HTTP/1.1', error('NON_SMTP')],
    ['POST /x HTTP/1.1', error('NON_SMTP')],
    ['CONNECT mx.example:25 HTTP/1.1', error('NON_SMTP')],
  ])
})

describe('MAIL FROM', () => {
  check([
    ['MAIL FROM:<alice@example.com>', mailFrom('alice@example.com')],
    ['mail from:<Alice@Example.COM>', mailFrom('Alice@Example.COM')],
    ['MAIL FROM: <alice@example.com>', mailFrom('alice@example.com')],
    ['MAIL FROM:<>', mailFrom('')],
    ['MAIL FROM:<> SIZE=0', mailFrom('', { size: 0 })],
    ['MAIL FROM:<"john doe"@example.com>', mailFrom('"john doe"@example.com')],
    ['MAIL FROM:<"a\\"b>c"@example.com>', mailFrom('"a\\"b>c"@example.com')],
    ['MAIL FROM:<@relay.example,@b.example:alice@example.com>', mailFrom('alice@example.com')],
    ['MAIL FROM:<alice@[192.0.2.1]>', mailFrom('alice@[192.0.2.1]')],
    ['MAIL FROM:<alice@[IPv6:2001:db8::1]>', mailFrom('alice@[IPv6:2001:db8::1]')],
    ["MAIL FROM:<a.b+c!#$%&'*/=?^_`{|}~-@x-y.example>", mailFrom("a.b+c!#$%&'*/=?^_`{|}~-@x-y.example")],
    [
      'MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1',
      mailFrom('a@b.example', { size: 1000, body: '8BITMIME', ret: 'HDRS', envid: 'QQ+1' }),
    ],
    ['MAIL FROM:<a@b.example>  body=7bit  ret=full', mailFrom('a@b.example', { body: '7BIT', ret: 'FULL' })],
    [
      'MAIL FROM:<j\u00f6rg@b\u00fccher.example> SMTPUTF8',
      mailFrom('j\u00f6rg@b\u00fccher.example', { smtputf8: true }),
    ],
    ['MAIL FROM:<a@b.example> REQUIRETLS', mailFrom('a@b.example', { requireTls: true })], // RFC 8689 2
    ['MAIL FROM:<a@b.example> requiretls', mailFrom('a@b.example', { requireTls: true })],
    // errors
    ['MAIL FROM:<a@b.example> REQUIRETLS=YES', error('SYNTAX')],
    ['MAIL FROM:<j\u00f6rg@example.com>', error('NON_ASCII_ADDRESS')],
    ['MAIL FROM:<a@b\u00fccher.example>', error('NON_ASCII_ADDRESS')],
    ['MAIL FROM:alice@example.com', error('BAD_SENDER')],
    ['MAIL FROM:<alice@example.com', error('BAD_SENDER')],
    ['MAIL FROM:<alice>', error('BAD_SENDER')],
    ['MAIL FROM:<postmaster>', error('BAD_SENDER')],
    ['MAIL FROM:<alice@>', error('BAD_SENDER')],
    ['MAIL FROM:<@example.com>', error('BAD_SENDER')],
    ['MAIL FROM:<a..b@example.com>', error('BAD_SENDER')],
    ['MAIL FROM:<.a@example.com>', error('BAD_SENDER')],
    ['MAIL FROM:<a b@example.com>', error('BAD_SENDER')],
    ['MAIL FROM:<a@-x.example>', error('BAD_SENDER')],
    ['MAIL FROM:<a@x..example>', error('BAD_SENDER')],
    ['MAIL FROM:<a@x.example.>', error('BAD_SENDER')],
    ['MAIL FROM:<a@[999.1.1.1]>', error('BAD_SENDER')],
    ['MAIL FROM:<a@example.com> (comment)', error('SYNTAX')],
    [`MAIL FROM:<${'a'.repeat(65)}@example.com>`, error('BAD_SENDER')],
    [`MAIL FROM:<${'a'.repeat(64)}@example.com>`, mailFrom(`${'a'.repeat(64)}@example.com`)],
    [`MAIL FROM:<a@${'b'.repeat(63)}.example>`, mailFrom(`a@${'b'.repeat(63)}.example`)],
    [`MAIL FROM:<a@${'b'.repeat(64)}.example>`, error('BAD_SENDER')],
    [`MAIL FROM:<a@${'b.'.repeat(126)}example>`, error('BAD_SENDER')],
    ['MAIL FROM<a@b.example>', error('SYNTAX')],
    ['MAIL TO:<a@b.example>', error('SYNTAX')],
    ['MAIL FROM:<a@b.example>SIZE=1', error('SYNTAX')],
    ['MAIL FROM:<a@b.example> SIZE=abc', error('SYNTAX')],
    ['MAIL FROM:<a@b.example> SIZE', error('SYNTAX')],
    ['MAIL FROM:<a@b.example> SIZE=1 SIZE=2', error('SYNTAX')],
    ['MAIL FROM:<a@b.example> BODY=9BIT', error('SYNTAX')],
    ['MAIL FROM:<a@b.example> BODY=BINARYMIME', error('UNKNOWN_PARAMETER')],
    ['MAIL FROM:<a@b.example> SMTPUTF8=yes', error('SYNTAX')],
    ['MAIL FROM:<a@b.example> RET=ALL', error('SYNTAX')],
    ['MAIL FROM:<a@b.example> ENVID=a+zz', error('SYNTAX')],
    [`MAIL FROM:<a@b.example> ENVID=${'x'.repeat(101)}`, error('SYNTAX')],
    ['MAIL FROM:<a@b.example> AUTH=<>', error('UNKNOWN_PARAMETER')],
    ['MAIL FROM:<a@b.example> XFOO=1', error('UNKNOWN_PARAMETER')],
    ['MAIL FROM:<a@b.example> =1', error('SYNTAX')],
  ])
})

describe('RCPT TO', () => {
  check([
    ['RCPT TO:<bob@example.com>', rcptTo('bob@example.com')],
    ['rcpt to: <bob@example.com>', rcptTo('bob@example.com')],
    ['RCPT TO:<Postmaster>', rcptTo('postmaster')],
    ['RCPT TO:<postmaster>', rcptTo('postmaster')],
    ['RCPT TO:<@hop.example:bob@example.com>', rcptTo('bob@example.com')],
    ['RCPT TO:<bob@example.com> NOTIFY=NEVER', rcptTo('bob@example.com', { notify: ['NEVER'] })],
    [
      'RCPT TO:<bob@example.com> notify=success,failure,delay',
      rcptTo('bob@example.com', { notify: ['SUCCESS', 'FAILURE', 'DELAY'] }),
    ],
    [
      'RCPT TO:<bob@example.com> ORCPT=rfc822;bob+2Btag@example.com',
      rcptTo('bob@example.com', { orcpt: 'rfc822;bob+tag@example.com' }),
    ],
    ['RCPT TO:<b\u00f6b@example.com>', rcptTo('b\u00f6b@example.com'), UTF8],
    // errors
    ['RCPT TO:<b\u00f6b@example.com>', error('NON_ASCII_ADDRESS')],
    ['RCPT TO:<>', error('BAD_RECIPIENT')],
    ['RCPT TO:<bob>', error('BAD_RECIPIENT')],
    ['RCPT TO:bob@example.com', error('BAD_RECIPIENT')],
    ['RCPT TO <bob@example.com>', error('SYNTAX')],
    ['RCPT TO:<bob@example.com> NOTIFY=NEVER,SUCCESS', error('SYNTAX')],
    ['RCPT TO:<bob@example.com> NOTIFY=SUCCESS,SUCCESS', error('SYNTAX')],
    ['RCPT TO:<bob@example.com> NOTIFY=', error('SYNTAX')],
    ['RCPT TO:<bob@example.com> NOTIFY=SOMETIMES', error('SYNTAX')],
    ['RCPT TO:<bob@example.com> ORCPT=bob@example.com', error('SYNTAX')],
    ['RCPT TO:<bob@example.com> ORCPT=rfc822;', error('SYNTAX')],
    ['RCPT TO:<bob@example.com> ORCPT=rfc822;a+0Db', error('SYNTAX')],
    ['RCPT TO:<bob@example.com> SIZE=10', error('UNKNOWN_PARAMETER')],
  ])
})

describe('decodeLine', () => {
  it('refuses control characters, bare CR and LF, NUL and bad UTF-8', () => {
    for (const bad of ['NOOP\n', 'NO\rOP', 'NOOP\x00', 'NOOP\t1', 'NOOP\x7f']) {
      assert.deepEqual(decodeLine(Buffer.from(bad, 'latin1')), {
        kind: 'ERROR',
        error: 'BAD_CHARACTERS',
        detail: undefined,
      })
    }
    assert.equal((decodeLine(Buffer.from([0x4e, 0xff])) as CommandError).error, 'BAD_CHARACTERS')
    assert.equal(
      decodeLine(Buffer.from('MAIL FROM:<j\u00f6rg@example.com>')),
      'MAIL FROM:<j\u00f6rg@example.com>',
    )
  })
})

describe('xtext (RFC 3461 4)', () => {
  const rows: [string, string | null][] = [
    ['plain', 'plain'],
    ['a+2Bb', 'a+b'],
    ['a+3Db', 'a=b'],
    ['+C3+A9', '\u00e9'],
    ['a+2b', null],
    ['a+2', null],
    ['a=b', null],
    ['a+00', null],
    ['+FF', null],
  ]
  for (const [input, want] of rows) it(JSON.stringify(input), () => assert.equal(decodeXtext(input), want))
})

describe('replies', () => {
  it('formats single and multi-line replies with the enhanced code on every line', () => {
    assert.equal(formatReply(REPLIES.recipientOk), '250 2.1.5 Recipient OK\r\n')
    assert.equal(formatReply(REPLIES.greeting('mx.example', 'Hi')), '220 mx.example Hi\r\n')
    assert.equal(
      formatReply(REPLIES.help),
      '214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS\r\n214 2.0.0 See RFC 5321\r\n',
    )
    assert.equal(
      formatReply(withDetail(REPLIES.syntax, 'SIZE needs a number')),
      '501 5.5.4 Syntax error in parameters or arguments: SIZE needs a number\r\n',
    )
  })
  it('takes handler replies safely', () => {
    assert.deepEqual(fromHandler({ code: 550, enhanced: '5.1.1', message: 'No such user' }), {
      code: 550,
      enhanced: '5.1.1',
      text: 'No such user',
    })
    assert.equal(fromHandler({ code: 451, message: 'later' })!.enhanced, '4.0.0')
    assert.equal(fromHandler({ code: 550, enhanced: '4.1.1', message: 'x' })!.enhanced, '5.0.0')
    assert.equal(fromHandler({ code: 354, message: 'x' }), null)
    assert.equal(fromHandler({ code: 99, message: 'x' }), null)
    assert.equal(fromHandler({ code: 250.5, message: 'x' }), null)
    const injected = formatReply(fromHandler({ code: 550, message: 'no\r\n250 2.0.0 fake\x00' })!)
    assert.equal(injected, '550-5.0.0 no\r\n550 5.0.0 250 2.0.0 fake\r\n')
    assert.ok(formatReply(fromHandler({ code: 550, message: 'x'.repeat(2000) })!).length < 512)
  })
})
