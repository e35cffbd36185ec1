import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type Arf, type Dsn, parseArf, parseDsn } from '../../src/mail/reports.ts'

// Fixtures are written here in the shape each system sends (field order, folding, part
// layout, wording), with example names and documentation addresses.

const crlf = (s: string): Buffer => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8')
const lf = (s: string): Buffer => Buffer.from(s, 'utf8')

const returnedMessage = `Return-Path: <bounces+eml_01jc5x3ab0cdefghjkmnpqrstv-9gca5sy8m8e9a1na@example.com>
Received: from mail.example.com (mail.example.com [192.0.2.25])
\tby mx.example.org (Postfix) with ESMTPS id 4Xk2Lm0abcz9sW
\tfor <nobody@example.org>; Tue,  5 Nov 2024 10:00:00 +0100 (CET)
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;
\th=from:to:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=abc
From: Alice <alice@example.com>
To: nobody@example.org
Subject: =?UTF-8?Q?Caf=C3=A9?= meeting
Message-ID: <01jc5x3ab0cdefghjkmnpqrstv@example.com>
Date: Tue, 05 Nov 2024 09:59:58 +0100
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

See you at ten.
`

const postfix = `Return-Path: <>
Received: by mail.example.net (Postfix)
\tid 4ABC123DEF; Tue,  5 Nov 2024 10:00:01 +0100 (CET)
Date: Tue,  5 Nov 2024 10:00:01 +0100 (CET)
From: MAILER-DAEMON@mail.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounces+eml_01jc5x3ab0cdefghjkmnpqrstv-9gca5sy8m8e9a1na@example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4ABC123DEF.1730797201/mail.example.net"
Message-Id: <20241105090001.4ABC123DEF@mail.example.net>

This is a MIME-encapsulated message.

--4ABC123DEF.1730797201/mail.example.net
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<nobody@example.org>: host mx.example.org[192.0.2.10] said: 550 5.1.1
    <nobody@example.org>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--4ABC123DEF.1730797201/mail.example.net
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.net
X-Postfix-Queue-ID: 4ABC123DEF
X-Postfix-Sender: rfc822; bounces+eml_01jc5x3ab0cdefghjkmnpqrstv-9gca5sy8m8e9a1na@example.com
Arrival-Date: Tue,  5 Nov 2024 10:00:00 +0100 (CET)
Original-Envelope-Id: eml_01jc5x3ab0cdefghjkmnpqrstv

Final-Recipient: rfc822; nobody@example.org
Original-Recipient: rfc822;nobody@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: Recipient address
    rejected: User unknown in virtual mailbox table

--4ABC123DEF.1730797201/mail.example.net
Content-Description: Undelivered Message
Content-Type: message/rfc822

${returnedMessage}
--4ABC123DEF.1730797201/mail.example.net--
`

const postfixDelayed = `From: MAILER-DAEMON@mail.example.net (Mail Delivery System)
Subject: Delayed Mail (still being retried)
To: bounces+eml_01jc5x3ab0cdefghjkmnpqrstv-9gca5sy8m8e9a1na@example.com
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="D1.1730797201/mail.example.net"

--D1.1730797201/mail.example.net
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.example.net.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

--D1.1730797201/mail.example.net
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.net
X-Postfix-Queue-ID: D1
Arrival-Date: Tue,  5 Nov 2024 06:00:00 +0100 (CET)

Final-Recipient: rfc822; slow@example.org
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mx.example.org[192.0.2.10]:25: Connection
    timed out
Will-Retry-Until: Tue, 12 Nov 2024 06:00:00 +0100 (CET)

Final-Recipient: rfc822; gone@example.org
Action: failed
Status: 5.4.4
Diagnostic-Code: X-Postfix; Host or domain name not found. Name service error
    for name=example.org type=MX: Host not found, try again

--D1.1730797201/mail.example.net
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Alice <alice@example.com>
To: slow@example.org, gone@example.org
Subject: Slow
Message-ID: <delayed-1@example.com>

--D1.1730797201/mail.example.net--
`

const exim = `Return-path: <>
Envelope-to: bounces+eml_01jc5x3ab0cdefghjkmnpqrstv-9gca5sy8m8e9a1na@example.com
X-Failed-Recipients: nobody@example.org
Auto-Submitted: auto-replied
From: Mail Delivery System <Mailer-Daemon@mail.example.net>
To: bounces+eml_01jc5x3ab0cdefghjkmnpqrstv-9gca5sy8m8e9a1na@example.com
Content-Type: multipart/report; report-type=delivery-status; boundary=1730797201-eximdsn-1804289383
MIME-Version: 1.0
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1t8Abc-000123-AB@mail.example.net>
Date: Tue, 05 Nov 2024 10:00:01 +0000

--1730797201-eximdsn-1804289383
Content-type: text/plain; charset=us-ascii

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  nobody@example.org
    host mx.example.org [192.0.2.10]
    SMTP error from remote mail server after RCPT TO:<nobody@example.org>:
    550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown

--1730797201-eximdsn-1804289383
Content-type: message/delivery-status

Reporting-MTA: dns; mail.example.net

Action: failed
Final-Recipient: rfc822;nobody@example.org
Status: 5.0.0
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown

--1730797201-eximdsn-1804289383
Content-type: message/rfc822

${returnedMessage}
--1730797201-eximdsn-1804289383--
`

const gmail = `Delivered-To: bounces+eml_01jc5x3ab0cdefghjkmnpqrstv-9gca5sy8m8e9a1na@example.com
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: bounces+eml_01jc5x3ab0cdefghjkmnpqrstv-9gca5sy8m8e9a1na@example.com
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
References: <01jc5x3ab0cdefghjkmnpqrstv@example.com>
In-Reply-To: <01jc5x3ab0cdefghjkmnpqrstv@example.com>
X-Failed-Recipients: nobody@example.org
Message-ID: <6729e1c1.050a0220.abc123.0001.GMR@mx.google.com>
Date: Tue, 05 Nov 2024 01:00:01 -0800 (PST)
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000a1b2c3d4e5f60718"; report-type=delivery-status

--000000000000a1b2c3d4e5f60718
Content-Type: multipart/related; boundary="000000000000a1b2c3d4e5f60719"

--000000000000a1b2c3d4e5f60719
Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f6071a"

--000000000000a1b2c3d4e5f6071a
Content-Type: text/plain; charset="UTF-8"

** Address not found **

Your message wasn't delivered to nobody@example.org because the address couldn't be found, or is unable to receive mail.

--000000000000a1b2c3d4e5f6071a
Content-Type: text/html; charset="UTF-8"

<html><body><h1>Address not found</h1></body></html>

--000000000000a1b2c3d4e5f6071a--

--000000000000a1b2c3d4e5f60719--

--000000000000a1b2c3d4e5f60718
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; alice@example.com
Arrival-Date: Tue, 05 Nov 2024 01:00:00 -0800 (PST)
X-Original-Message-ID: <01jc5x3ab0cdefghjkmnpqrstv@example.com>

Final-Recipient: rfc822; nobody@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org. (192.0.2.10, the server for the domain
 example.org.)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist.
 550 5.1.1 Please try double-checking the recipient's email address.
Last-Attempt-Date: Tue, 05 Nov 2024 01:00:01 -0800 (PST)

--000000000000a1b2c3d4e5f60718
Content-Type: message/rfc822

${returnedMessage}
--000000000000a1b2c3d4e5f60718--
`

const microsoft = `Received: from AM0PR01MB1234.eurprd01.prod.exchangelabs.com
 (2603:10a6:208:1::1) by AM0PR01MB5678.eurprd01.prod.exchangelabs.com with
 HTTPS; Tue, 5 Nov 2024 09:00:02 +0000
From: <postmaster@contoso.onmicrosoft.com>
To: <bounces+eml_01jc5x3ab0cdefghjkmnpqrstv-9gca5sy8m8e9a1na@example.com>
Date: Tue, 5 Nov 2024 09:00:02 +0000
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4c5d0e3a-7c58-4f2f-9a0b-1d2e3f405162"
Subject: Undeliverable: Lunch
Message-ID: <f1e2d3c4-b5a6-9780-1a2b-3c4d5e6f7a8b@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>
MIME-Version: 1.0

--4c5d0e3a-7c58-4f2f-9a0b-1d2e3f405162
Content-Type: multipart/alternative; differentiator=1;
\tboundary="c7b3e0a1-2b3c-4d5e-8f90-a1b2c3d4e5f6"

--c7b3e0a1-2b3c-4d5e-8f90-a1b2c3d4e5f6
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Your message to nobody@contoso.com couldn't be delivered.
nobody wasn't found at contoso.com.

--c7b3e0a1-2b3c-4d5e-8f90-a1b2c3d4e5f6
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

<html><body>Your message to nobody@contoso.com couldn=27t be delivered.</body></html>

--c7b3e0a1-2b3c-4d5e-8f90-a1b2c3d4e5f6--

--4c5d0e3a-7c58-4f2f-9a0b-1d2e3f405162
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com
Received-From-MTA: dns;EUR01-HE1-obe.outbound.protection.outlook.com
Arrival-Date: Tue, 5 Nov 2024 09:00:01 +0000

Final-Recipient: rfc822;nobody@contoso.com
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup
X-Display-Name: nobody

--4c5d0e3a-7c58-4f2f-9a0b-1d2e3f405162
Content-Type: text/rfc822-headers

Return-Path: <bounces+eml_01jc5x3ab0cdefghjkmnpqrstv-9gca5sy8m8e9a1na@example.com>
From: Alice <alice@example.com>
To: nobody@contoso.com
Subject: Lunch
Message-ID: <lunch-42@example.com>
Date: Tue, 05 Nov 2024 09:59:58 +0100

--4c5d0e3a-7c58-4f2f-9a0b-1d2e3f405162--
`

const postfixDsn: Dsn = {
  reportingMta: 'mail.example.net',
  envelopeId: 'eml_01jc5x3ab0cdefghjkmnpqrstv',
  recipients: [
    {
      finalRecipient: 'nobody@example.org',
      originalRecipient: 'nobody@example.org',
      action: 'failed',
      status: '5.1.1',
      diagnosticCode:
        '550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table',
      remoteMta: 'mx.example.org',
    },
  ],
  originalMessageId: '<01jc5x3ab0cdefghjkmnpqrstv@example.com>',
}

/** A small DSN around one delivery-status body, for the variations. */
function dsnWith(status: string, opts: { head?: string; returned?: string; part?: string } = {}): string {
  return `From: MAILER-DAEMON@mail.example.net
To: bounces@example.com
Subject: Delivery Status Notification
MIME-Version: 1.0
${opts.head ?? 'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"'}

--b1
Content-Type: text/plain

Report.

--b1
${opts.part ?? 'Content-Type: message/delivery-status'}

${status}
${opts.returned ?? ''}--b1--
`
}

describe('parseDsn: real-world shapes', () => {
  const cases: { name: string; raw: Buffer; want: Dsn }[] = [
    { name: 'Postfix bounce, CRLF', raw: crlf(postfix), want: postfixDsn },
    { name: 'Postfix bounce, LF', raw: lf(postfix), want: postfixDsn },
    {
      name: 'Postfix delay warning and failure for two recipients, returned headers only',
      raw: crlf(postfixDelayed),
      want: {
        reportingMta: 'mail.example.net',
        envelopeId: null,
        recipients: [
          {
            finalRecipient: 'slow@example.org',
            originalRecipient: null,
            action: 'delayed',
            status: '4.4.1',
            diagnosticCode: 'connect to mx.example.org[192.0.2.10]:25: Connection timed out',
            remoteMta: null,
          },
          {
            finalRecipient: 'gone@example.org',
            originalRecipient: null,
            action: 'failed',
            status: '5.4.4',
            diagnosticCode:
              'Host or domain name not found. Name service error for name=example.org type=MX: Host not found, try again',
            remoteMta: null,
          },
        ],
        originalMessageId: '<delayed-1@example.com>',
      },
    },
    {
      name: 'Exim: lower-case Content-type, unquoted boundary, Action before Final-Recipient',
      raw: lf(exim),
      want: {
        reportingMta: 'mail.example.net',
        envelopeId: null,
        recipients: [
          {
            finalRecipient: 'nobody@example.org',
            originalRecipient: null,
            action: 'failed',
            status: '5.0.0',
            diagnosticCode: '550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown',
            remoteMta: 'mx.example.org',
          },
        ],
        originalMessageId: '<01jc5x3ab0cdefghjkmnpqrstv@example.com>',
      },
    },
    {
      name: 'Gmail: nested multipart/related, Remote-MTA with a comment, folded diagnostic',
      raw: crlf(gmail),
      want: {
        reportingMta: 'googlemail.com',
        envelopeId: null,
        recipients: [
          {
            finalRecipient: 'nobody@example.org',
            originalRecipient: null,
            action: 'failed',
            status: '5.1.1',
            diagnosticCode:
              "550-5.1.1 The email account that you tried to reach does not exist. 550 5.1.1 Please try double-checking the recipient's email address.",
            remoteMta: 'mx.example.org',
          },
        ],
        originalMessageId: '<01jc5x3ab0cdefghjkmnpqrstv@example.com>',
      },
    },
    {
      name: 'Microsoft 365: multipart/alternative first, no space after the types, text/rfc822-headers',
      raw: crlf(microsoft),
      want: {
        reportingMta: 'AM0PR01MB1234.eurprd01.prod.exchangelabs.com',
        envelopeId: null,
        recipients: [
          {
            finalRecipient: 'nobody@contoso.com',
            originalRecipient: null,
            action: 'failed',
            status: '5.1.10',
            diagnosticCode:
              '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup',
            remoteMta: null,
          },
        ],
        originalMessageId: '<lunch-42@example.com>',
      },
    },
  ]
  for (const c of cases) {
    test(c.name, async () => assert.deepEqual(await parseDsn(c.raw), c.want))
  }
})

describe('parseDsn: variations', () => {
  const one = (r: Partial<Dsn['recipients'][number]>) => ({
    finalRecipient: 'a@example.org',
    originalRecipient: null,
    action: 'failed' as const,
    status: '5.1.1',
    diagnosticCode: null,
    remoteMta: null,
    ...r,
  })
  const cases: { name: string; raw: string; want: Partial<Dsn> }[] = [
    {
      name: 'only the required fields; no returned message',
      raw: dsnWith(
        'Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n',
      ),
      want: { reportingMta: 'mx.example.net', recipients: [one({})], originalMessageId: null },
    },
    {
      name: 'no per-message fields at all',
      raw: dsnWith('Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n'),
      want: { reportingMta: null, recipients: [one({})] },
    },
    {
      name: 'field names and values in odd case, extra blank lines, angle brackets',
      raw: dsnWith(
        'REPORTING-MTA: DNS; MX.Example.NET\n\n\n\nfinal-recipient: RFC822; <A@Example.org>\naction: Failed (permanent)\nstatus: 5.1.1 (user unknown)\n\n',
      ),
      want: {
        reportingMta: 'MX.Example.NET',
        recipients: [one({ finalRecipient: 'A@Example.org' })],
      },
    },
    {
      name: 'Action missing: taken from a 5.x.x Status',
      raw: dsnWith('Reporting-MTA: dns; m\n\nFinal-Recipient: rfc822; a@example.org\nStatus: 5.2.2\n'),
      want: { recipients: [one({ status: '5.2.2' })] },
    },
    {
      name: 'Action missing: taken from a 4.x.x Status',
      raw: dsnWith('Reporting-MTA: dns; m\n\nFinal-Recipient: rfc822; a@example.org\nStatus: 4.2.2\n'),
      want: { recipients: [one({ status: '4.2.2', action: 'delayed' })] },
    },
    {
      name: 'unknown Action and no Status: null',
      raw: dsnWith('Reporting-MTA: dns; m\n\nFinal-Recipient: rfc822; a@example.org\nAction: bounced\n'),
      want: { recipients: [one({ status: null, action: null })] },
    },
    {
      name: 'success notification',
      raw: dsnWith(
        'Reporting-MTA: dns; m\n\nFinal-Recipient: rfc822; a@example.org\nAction: delivered\nStatus: 2.0.0\nRemote-MTA: dns; mx.example.org\n',
      ),
      want: { recipients: [one({ action: 'delivered', status: '2.0.0', remoteMta: 'mx.example.org' })] },
    },
    {
      name: 'relayed and expanded',
      raw: dsnWith(
        'Reporting-MTA: dns; m\n\nFinal-Recipient: rfc822; a@example.org\nAction: relayed\nStatus: 2.0.0\n\nFinal-Recipient: rfc822; list@example.org\nAction: expanded\nStatus: 2.0.0\n',
      ),
      want: {
        recipients: [
          one({ action: 'relayed', status: '2.0.0' }),
          one({ finalRecipient: 'list@example.org', action: 'expanded', status: '2.0.0' }),
        ],
      },
    },
    {
      name: 'only Original-Recipient',
      raw: dsnWith(
        'Reporting-MTA: dns; m\n\nOriginal-Recipient: rfc822;a@example.org\nAction: failed\nStatus: 5.1.1\n',
      ),
      want: { recipients: [one({ originalRecipient: 'a@example.org' })] },
    },
    {
      name: 'a recipient block without any recipient is dropped',
      raw: dsnWith('Reporting-MTA: dns; m\n\nAction: failed\nStatus: 5.1.1\n'),
      want: { recipients: [] },
    },
    {
      name: 'addresses are not xtext-decoded',
      raw: dsnWith(
        'Reporting-MTA: dns; m\n\nFinal-Recipient: rfc822; user+AB@example.org\nOriginal-Recipient: rfc822;user+2BAB@example.org\nAction: failed\nStatus: 5.1.1\n',
      ),
      want: {
        recipients: [
          one({ finalRecipient: 'user+AB@example.org', originalRecipient: 'user+2BAB@example.org' }),
        ],
      },
    },
    {
      name: 'the delivery-status part in base64',
      raw: dsnWith(
        Buffer.from(
          'Reporting-MTA: dns; m.example.net\r\n\r\nFinal-Recipient: rfc822; a@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n',
        )
          .toString('base64')
          .replace(/.{40}/g, '$&\n'),
        { part: 'Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64' },
      ),
      want: { reportingMta: 'm.example.net', recipients: [one({})] },
    },
    {
      name: 'the delivery-status part in quoted-printable',
      raw: dsnWith(
        'Reporting-MTA: dns; m.example.net\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 caf=C3=A9 is closed, this line is long=\n and soft-broken\n',
        { part: 'Content-Type: message/delivery-status\nContent-Transfer-Encoding: quoted-printable' },
      ),
      want: {
        recipients: [one({ diagnosticCode: '550 5.1.1 café is closed, this line is long and soft-broken' })],
      },
    },
    {
      name: 'RFC 6533 global delivery status with a UTF-8 address',
      raw: dsnWith(
        'Reporting-MTA: dns; m\n\nFinal-Recipient: utf-8; jöran@bücher.example\nAction: failed\nStatus: 5.1.1\n',
        {
          head: 'Content-Type: multipart/report; report-type=global-delivery-status; boundary="b1"',
          part: 'Content-Type: message/global-delivery-status',
        },
      ),
      want: { recipients: [one({ finalRecipient: 'jöran@bücher.example' })] },
    },
    {
      name: 'report-type missing: the delivery-status part decides',
      raw: dsnWith(
        'Reporting-MTA: dns; m\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n',
        {
          head: 'Content-Type: multipart/report; boundary=b1',
        },
      ),
      want: { recipients: [one({})] },
    },
    {
      name: 'RFC 2231 boundary and quoted report-type',
      raw: dsnWith(
        'Reporting-MTA: dns; m\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n',
        {
          head: `Content-Type: multipart/report; report-type="Delivery-Status"; boundary*=us-ascii''b1`,
        },
      ),
      want: { recipients: [one({})] },
    },
    {
      name: 'transport padding after the boundary lines, no closing boundary',
      raw: dsnWith(
        'Reporting-MTA: dns; m\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n',
      )
        .replace(/^--b1$/gm, '--b1  \t')
        .replace('--b1--\n', ''),
      want: { recipients: [one({})] },
    },
    {
      name: 'returned message id without angle brackets, folded onto the next line',
      raw: dsnWith(
        'Reporting-MTA: dns; m\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n',
        {
          returned:
            '\n--b1\nContent-Type: message/rfc822\n\nFrom: x@example.com\nMessage-ID:\n <folded@example.com>\n\nbody\n',
        },
      ),
      want: { originalMessageId: '<folded@example.com>' },
    },
    {
      name: 'an extra empty line before the returned message',
      raw: dsnWith(
        'Reporting-MTA: dns; m\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n',
        {
          returned: '\n--b1\nContent-Type: message/rfc822\n\n\nMessage-ID: <late@example.com>\n\nbody\n',
        },
      ),
      want: { originalMessageId: '<late@example.com>' },
    },
    {
      name: 'the report inside a multipart/mixed wrapper',
      raw: `From: postmaster@example.net\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=outer\n\n--outer\nContent-Type: text/plain\n\nFooter added by a gateway.\n--outer\n${dsnWith(
        'Reporting-MTA: dns; m\n\nFinal-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n',
      )
        .split('MIME-Version: 1.0\n')[1]
        ?.trimEnd()}\n--outer--\n`,
      want: { recipients: [one({})] },
    },
  ]
  for (const c of cases) {
    test(c.name, async () => {
      const got = await parseDsn(lf(c.raw))
      assert.ok(got, 'expected a DSN')
      for (const [k, v] of Object.entries(c.want)) assert.deepEqual(got[k as keyof Dsn], v, k)
      const again = await parseDsn(crlf(c.raw))
      assert.deepEqual(again, got, 'CRLF and LF give the same result')
    })
  }
})

const arfRfc5965 = `From: <abusedesk@example.com>
Date: Thu, 8 Mar 2005 17:40:36 EDT
Subject: FW: Earn money
To: <abuse@example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.  For more information
about this format please see http://www.mipassoc.org/arf/.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <bounces+eml_01jc5x3ab0cdefghjkmnpqrstv-9gca5sy8m8e9a1na@example.com>
Original-Rcpt-To: <user@example.com>
Original-Rcpt-To: <other@example.com>
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT
Reporting-MTA: dns; mail.example.com
Source-IP: 192.0.2.1
Authentication-Results: mail.example.com;
               spf=pass smtp.mail=example.com
Reported-Domain: example.com
Removal-Recipient: user@example.com

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: <alice@example.com>
Received: from mailserver.example.com (mailserver.example.com [192.0.2.1])
        by mail.example.com; Thu, 8 Mar 2005 14:00:00 EDT
To: <user@example.com>
Subject: Earn money
MIME-Version: 1.0
Content-type: text/plain
Message-ID: <8787KJKJ3K4J3K4J3K4J3.mail@example.com>
Date: Thu, 02 Sep 2004 12:31:03 -0500

Spam Spam Spam
--part1_13d.2e68ed54_boundary--
`

// A mailbox provider's complaint loop: redacted recipient, returned headers only, a
// Source-IP with a comment, and a feedback type in upper case.
const arfProvider = `Return-Path: <>
From: Complaints <feedback@fbl.example.org>
To: fbl@example.com
Subject: Complaint about message from 192.0.2.25
MIME-Version: 1.0
Content-Type: multipart/report; boundary="----=_Part_1_2"; report-type="feedback-report"

------=_Part_1_2
Content-Type: text/plain; charset=us-ascii

A user of our service marked a message from your network as spam.
------=_Part_1_2
Content-Type: message/feedback-report

Feedback-Type: ABUSE
User-Agent: ExampleFBL/2.3
Version: 1
Original-Mail-From: <>
Original-Rcpt-To: redacted@example.org
Source-IP: 192.0.2.25 (mail.example.com)
Arrival-Date: Tue, 05 Nov 2024 10:00:00 +0000

------=_Part_1_2
Content-Type: text/rfc822-headers

Received: from mail.example.com (mail.example.com [192.0.2.25])
\tby mx.example.org; Tue, 05 Nov 2024 10:00:00 +0000
From: Alice <alice@example.com>
To: redacted@example.org
Subject: =?UTF-8?Q?Caf=C3=A9?= news
Message-ID: <news-7@example.com>
------=_Part_1_2--
`

describe('parseArf', () => {
  const cases: { name: string; raw: Buffer; want: Arf }[] = [
    {
      name: 'RFC 5965 example shape, two recipients, folded fields',
      raw: lf(arfRfc5965),
      want: {
        feedbackType: 'abuse',
        userAgent: 'SomeGenerator/1.0',
        version: '1',
        originalMailFrom: 'bounces+eml_01jc5x3ab0cdefghjkmnpqrstv-9gca5sy8m8e9a1na@example.com',
        originalRcptTo: ['user@example.com', 'other@example.com'],
        arrivalDate: 'Thu, 8 Mar 2005 14:00:00 EDT',
        reportingMta: 'mail.example.com',
        sourceIp: '192.0.2.1',
        originalMessageId: '<8787KJKJ3K4J3K4J3K4J3.mail@example.com>',
        originalHeaders: [
          { name: 'From', value: '<alice@example.com>' },
          {
            name: 'Received',
            value:
              'from mailserver.example.com (mailserver.example.com [192.0.2.1])        by mail.example.com; Thu, 8 Mar 2005 14:00:00 EDT',
          },
          { name: 'To', value: '<user@example.com>' },
          { name: 'Subject', value: 'Earn money' },
          { name: 'MIME-Version', value: '1.0' },
          { name: 'Content-type', value: 'text/plain' },
          { name: 'Message-ID', value: '<8787KJKJ3K4J3K4J3K4J3.mail@example.com>' },
          { name: 'Date', value: 'Thu, 02 Sep 2004 12:31:03 -0500' },
        ],
      },
    },
    {
      name: 'provider feedback loop, CRLF: null sender, redacted recipient, headers only',
      raw: crlf(arfProvider),
      want: {
        feedbackType: 'abuse',
        userAgent: 'ExampleFBL/2.3',
        version: '1',
        originalMailFrom: '',
        originalRcptTo: ['redacted@example.org'],
        arrivalDate: 'Tue, 05 Nov 2024 10:00:00 +0000',
        reportingMta: null,
        sourceIp: '192.0.2.25',
        originalMessageId: '<news-7@example.com>',
        originalHeaders: [
          {
            name: 'Received',
            value:
              'from mail.example.com (mail.example.com [192.0.2.25])\tby mx.example.org; Tue, 05 Nov 2024 10:00:00 +0000',
          },
          { name: 'From', value: 'Alice <alice@example.com>' },
          { name: 'To', value: 'redacted@example.org' },
          { name: 'Subject', value: '=?UTF-8?Q?Caf=C3=A9?= news' },
          { name: 'Message-ID', value: '<news-7@example.com>' },
        ],
      },
    },
    {
      name: 'only Feedback-Type; no returned message',
      raw: lf(
        'Content-Type: multipart/report; report-type=feedback-report; boundary=x\n\n--x\nContent-Type: text/plain\n\nspam\n--x\nContent-Type: message/feedback-report\n\nFeedback-Type: not-spam\n--x--\n',
      ),
      want: {
        feedbackType: 'not-spam',
        userAgent: null,
        version: null,
        originalMailFrom: null,
        originalRcptTo: [],
        arrivalDate: null,
        reportingMta: null,
        sourceIp: null,
        originalMessageId: null,
        originalHeaders: [],
      },
    },
  ]
  for (const c of cases) {
    test(c.name, async () => assert.deepEqual(await parseArf(c.raw), c.want))
  }

  test('a DSN is not an ARF report, and an ARF report is not a DSN', async () => {
    assert.equal(await parseArf(crlf(postfix)), null)
    assert.equal(await parseDsn(lf(arfRfc5965)), null)
  })
})

describe('not reports: null, never an exception', () => {
  const plain = 'From: a@example.com\nTo: b@example.org\nSubject: hi\n\nhello\n'
  const forwarded = `From: alice@example.com\nTo: help@example.net\nSubject: Fwd: bounce\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=fw\n\n--fw\nContent-Type: text/plain\n\nWhy did this bounce?\n--fw\nContent-Type: message/rfc822\n\n${postfix}\n--fw--\n`
  const inputs: { name: string; raw: Buffer }[] = [
    { name: 'empty', raw: Buffer.alloc(0) },
    { name: 'a plain message', raw: lf(plain) },
    { name: 'a bounce forwarded as an attachment', raw: lf(forwarded) },
    {
      name: 'a bounce written as text only (no multipart/report)',
      raw: lf(
        `${plain.replace('Subject: hi', 'Subject: Undelivered Mail Returned to Sender')}\nFinal-Recipient: rfc822; x@example.org\nAction: failed\nStatus: 5.1.1\n`,
      ),
    },
    {
      name: 'multipart/report of another type',
      raw: lf(
        dsnWith('Reporting-MTA: dns; m\n\nFinal-Recipient: rfc822; a@example.org\n', {
          head: 'Content-Type: multipart/report; report-type=disposition-notification; boundary="b1"',
        }),
      ),
    },
    {
      name: 'multipart/report without the machine-readable part',
      raw: lf(dsnWith('Reporting-MTA: dns; m\n', { part: 'Content-Type: text/plain' })),
    },
    {
      name: 'multipart/report without a boundary',
      raw: lf('Content-Type: multipart/report; report-type=delivery-status\n\nReporting-MTA: dns; m\n'),
    },
    { name: 'binary noise', raw: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)) },
    { name: 'headers only, no blank line', raw: lf('Content-Type: multipart/report; boundary=x') },
    { name: 'colons and folds only', raw: lf(':\n \n:\n\t:::\n\n') },
    {
      name: 'a boundary line and nothing else',
      raw: lf('Content-Type: multipart/report; boundary=x\n\n--x\n'),
    },
    {
      name: 'deeply nested multiparts',
      raw: lf(
        `Content-Type: multipart/mixed; boundary=b0\n\n${Array.from({ length: 50 }, (_, i) => `--b${i}\nContent-Type: multipart/mixed; boundary=b${i + 1}\n\n`).join('')}`,
      ),
    },
    {
      name: 'a very long header line of spaces (no runaway regular expressions)',
      raw: lf(`Content-Type: multipart/report;${' '.repeat(200_000)}x\n--${' '.repeat(200_000)}x\n\n`),
    },
  ]
  for (const { name, raw } of inputs) {
    test(name, async () => {
      assert.equal(await parseDsn(raw), null)
      assert.equal(await parseArf(raw), null)
    })
  }

  test('not a Buffer', async () => {
    for (const v of [undefined, null, 'text', 42, {}]) {
      assert.equal(await parseDsn(v as unknown as Buffer), null)
      assert.equal(await parseArf(v as unknown as Buffer), null)
    }
  })

  test('thousands of parts stay bounded', async () => {
    const body = Array.from({ length: 5000 }, () => '--x\nContent-Type: text/plain\n\nx\n').join('')
    const raw = lf(
      `Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n${body}--x--\n`,
    )
    // Past the part limit the reader gives up: no report is found, and it does not throw.
    assert.equal(await parseDsn(raw), null)
  })
})
