// The notice composer (src/mail/dsn.ts) read back by the report parser (src/mail/reports.ts),
// and the notice policy (src/services/outbound/dsn-policy.ts), table-driven: which NOTIFY gets
// which notice, what a success owes per next hop, what is returned, and how fields that cannot
// stand as they are (controls, UTF-8 outside a global notice) are written.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { composeNotice, type NoticeInput } from '../../src/mail/dsn.ts'
import { parseDsn } from '../../src/mail/reports.ts'
import { returnsFull, successNotice, wantsNotice } from '../../src/services/outbound/dsn-policy.ts'

const original = Buffer.from(
  'From: Ann <ann@a.example>\r\nTo: bob@b.example\r\nSubject: Hello\r\n\r\nThe body.\r\n',
  'latin1',
)

const input = (o: Partial<NoticeInput> = {}): NoticeInput => ({
  reportingMta: 'mx.a.example',
  from: 'Mail Delivery System <postern@mx.a.example>',
  to: 'ann@a.example',
  messageId: '<n1@mx.a.example>',
  date: Date.UTC(2026, 11, 3, 9, 0, 0),
  envid: 'env-1',
  arrivalDate: Date.UTC(2026, 11, 3, 8, 0, 0),
  recipients: [
    {
      address: 'bob@b.example',
      orcpt: 'rfc822;bob@b.example',
      action: 'failed',
      status: '5.1.1',
      diagnostic: '550 5.1.1 No such user',
      remoteMta: 'mx.b.example',
      lastAttemptAt: Date.UTC(2026, 11, 3, 8, 30, 0),
      willRetryUntil: null,
    },
  ],
  original,
  returnFull: true,
  global: false,
  ...o,
})

describe('DSN policy', () => {
  it('maps NOTIFY to the notices owed (absent: failure only; NEVER: none)', () => {
    const table: [string | null, boolean, boolean, boolean][] = [
      // notify, failure, delay, success
      [null, true, false, false],
      ['', true, false, false],
      ['NEVER', false, false, false],
      ['FAILURE', true, false, false],
      ['DELAY', false, true, false],
      ['SUCCESS', false, false, true],
      ['SUCCESS,FAILURE,DELAY', true, true, true],
      ['failure,delay', true, true, false],
    ]
    for (const [notify, failure, delay, success] of table)
      assert.deepEqual(
        [wantsNotice(notify, 'failure'), wantsNotice(notify, 'delay'), wantsNotice(notify, 'success')],
        [failure, delay, success],
        `NOTIFY=${notify}`,
      )
  })

  it('owes "delivered" locally, "relayed" to a hop without DSN, nothing to a hop with DSN', () => {
    assert.equal(successNotice('SUCCESS', true, false), 'delivered')
    assert.equal(successNotice('SUCCESS', false, false), 'relayed')
    assert.equal(successNotice('SUCCESS', false, true), null)
    assert.equal(successNotice('FAILURE', true, false), null)
    assert.equal(successNotice(null, false, false), null)
  })

  it('returns the whole message only in failure notices, unless RET=HDRS or it is too big', () => {
    assert.equal(returnsFull('failed', null, 100, 1000), true)
    assert.equal(returnsFull('failed', 'FULL', 100, 1000), true)
    assert.equal(returnsFull('failed', 'HDRS', 100, 1000), false)
    assert.equal(returnsFull('failed', 'FULL', 1001, 1000), false)
    for (const a of ['delayed', 'delivered', 'relayed'] as const)
      assert.equal(returnsFull(a, 'FULL', 100, 1000), false, a)
  })
})

describe('composeNotice', () => {
  it('writes a multipart/report the report parser reads back field for field', async () => {
    const raw = composeNotice(input())
    const text = raw.toString('latin1')
    assert.match(text, /^Content-Type: multipart\/report; report-type=delivery-status;/m)
    assert.match(text, /^Auto-Submitted: auto-replied\r$/m)
    assert.match(text, /^Subject: Undelivered Mail Returned to Sender\r$/m)
    assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(text), 'CRLF line ends only')
    const dsn = await parseDsn(raw)
    assert.ok(dsn)
    assert.equal(dsn.reportingMta, 'mx.a.example')
    assert.equal(dsn.envelopeId, 'env-1')
    assert.deepEqual(dsn.recipients, [
      {
        finalRecipient: 'bob@b.example',
        originalRecipient: 'bob@b.example',
        action: 'failed',
        status: '5.1.1',
        diagnosticCode: '550 5.1.1 No such user',
        remoteMta: 'mx.b.example',
      },
    ])
    assert.match(text, /Content-Type: message\/rfc822\r\nContent-Transfer-Encoding: 7bit/)
    assert.ok(raw.includes(original), 'the returned message byte for byte')
  })

  it('returns only the header section when asked, and lists several recipients with their actions', async () => {
    const raw = composeNotice(
      input({
        returnFull: false,
        recipients: [
          {
            ...input().recipients[0]!,
            action: 'delayed',
            status: '4.4.1',
            willRetryUntil: Date.UTC(2026, 11, 8),
          },
          {
            ...input().recipients[0]!,
            address: 'carl@b.example',
            orcpt: null,
            action: 'relayed',
            status: '2.0.0',
          },
        ],
      }),
    )
    const text = raw.toString('latin1')
    assert.match(text, /^Subject: Delayed Mail \(still being retried\)\r$/m)
    assert.match(text, /Content-Type: text\/rfc822-headers/)
    assert.match(text, /^Will-Retry-Until: Tue, 08 Dec 2026 00:00:00 \+0000\r$/m)
    assert.ok(!text.includes('The body.'))
    const dsn = await parseDsn(raw)
    assert.deepEqual(
      dsn?.recipients.map((r) => [r.finalRecipient, r.action, r.status, r.originalRecipient]),
      [
        ['bob@b.example', 'delayed', '4.4.1', 'bob@b.example'],
        ['carl@b.example', 'relayed', '2.0.0', null],
      ],
    )
  })

  it('keeps fields ASCII outside a global notice, and uses the RFC 6533 types inside one', async () => {
    const utf8 = {
      ...input().recipients[0]!,
      address: 'j\u00f6rg@b.example',
      orcpt: 'rfc822;j\u00f6rg@b.example',
      diagnostic: '553 5.6.7 no SMTPUTF8\r\nInjected: x',
    }
    const ascii = composeNotice(input({ envid: 'e\u00e9\u0001', recipients: [utf8] })).toString('utf8')
    const machine = ascii.slice(ascii.indexOf('Reporting-MTA'), ascii.indexOf('Content-Type: message/rfc822'))
    assert.ok(/^[\t\r\n\x20-\x7e]*$/.test(machine), 'an ASCII machine part')
    assert.match(machine, /^Original-Envelope-Id: e\+C3\+A9\+01\r$/m)
    assert.match(machine, /^Final-Recipient: utf-8; j\\x\{F6\}rg@b\.example\r$/m)
    assert.match(machine, /^Diagnostic-Code: smtp; 553 5\.6\.7 no SMTPUTF8 Injected: x\r$/m, 'one line')
    assert.doesNotMatch(ascii, /^Injected:/m)

    const global = composeNotice(input({ global: true, recipients: [utf8] }))
    const g = global.toString('utf8')
    assert.match(g, /report-type=global-delivery-status/)
    assert.match(g, /Content-Type: message\/global-delivery-status/)
    assert.match(g, /Content-Type: message\/global\r\n/)
    assert.match(g, /^Final-Recipient: utf-8; j\u00f6rg@b\.example\r$/m)
    const dsn = await parseDsn(global)
    assert.equal(dsn?.recipients[0]?.finalRecipient, 'j\u00f6rg@b.example')
  })

  it('refuses a notice about nobody', () => {
    assert.throws(() => composeNotice(input({ recipients: [] })), /at least one recipient/)
  })
})
