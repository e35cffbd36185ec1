// Composing delivery status notifications (RFC 3464) that Postern sends to a sender about
// mail it queued: a multipart/report of report-type delivery-status with a human-readable
// part, the machine-readable message/delivery-status part and the returned message (or only
// its header section). Pure: the caller decides when a notice is owed and to whom.
// Invariants:
// - One notice may cover several recipients of one message, each with its own Action
//   (failed, delayed, delivered, relayed) and Status (RFC 3463), in the order given.
// - Original-Envelope-Id echoes ENVID and Original-Recipient echoes ORCPT (RFC 3461 6.3),
//   both as stored (xtext decoded); a value that cannot stand in a field (controls, or
//   non-ASCII outside a global notice) is written as xtext instead.
// - With `global` (the message was submitted with SMTPUTF8) the RFC 6533 types are used:
//   message/global-delivery-status, message/global or message/global-headers, so UTF-8
//   addresses stand as they are. Otherwise every DSN field is ASCII.
// - The returned content is never altered: the message (or its header section up to the
//   blank line) is copied byte for byte; the part is marked 8bit when it has 8-bit octets.
// - The notice itself is sent from the null reverse path by the caller (RFC 3461 6.2, RFC
//   5321 4.5.5), carries Auto-Submitted: auto-replied (RFC 3834 5) and never asks for a DSN.

import { randomBytes } from 'node:crypto'
import { headerEnd, rfc5322Date } from './headers.ts'

export type NoticeAction = 'failed' | 'delayed' | 'delivered' | 'relayed'

export interface NoticeRecipient {
  /** The address the message was sent to (Final-Recipient). */
  address: string
  /** ORCPT as `addr-type;address`, or null. */
  orcpt: string | null
  action: NoticeAction
  /** RFC 3463 status, e.g. '5.1.1', '4.4.1', '2.0.0'. */
  status: string
  /** The remote server's reply (`smtp;` Diagnostic-Code), or null. */
  diagnostic: string | null
  /** The server that gave the diagnostic (Remote-MTA), or null. */
  remoteMta: string | null
  /** Epoch ms of the last attempt, or null. */
  lastAttemptAt: number | null
  /** Delayed notices: epoch ms until which delivery goes on being tried. */
  willRetryUntil: number | null
}

export interface NoticeInput {
  /** This server's name (Reporting-MTA). */
  reportingMta: string
  /** `Name <address>` of the From field. */
  from: string
  /** The envelope sender of the original message, who gets the notice. */
  to: string
  messageId: string
  date: number
  envid: string | null
  /** Epoch ms the message was queued (Arrival-Date). */
  arrivalDate: number
  recipients: readonly NoticeRecipient[]
  /** The message as it was sent. */
  original: Buffer
  /** Return the whole message, or only its header section. */
  returnFull: boolean
  global: boolean
}

const NON_ASCII = /[\u0080-\u{10ffff}]/u
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
const CONTROL = /[\x00-\x1f\x7f]/
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
const CONTROLS = /[\x00-\x1f\x7f]+/g

/** RFC 3461 4 xtext: octets outside '!'..'~', '+' and '=' as +HH. */
function xtext(value: string): string {
  let out = ''
  for (const b of Buffer.from(value, 'utf8'))
    out +=
      b >= 0x21 && b <= 0x7e && b !== 0x2b && b !== 0x3d
        ? String.fromCharCode(b)
        : `+${b.toString(16).toUpperCase().padStart(2, '0')}`
  return out
}

/** A value for a DSN field: as it is when it may stand there, else xtext. */
function fieldValue(value: string, global: boolean): string {
  if (CONTROL.test(value) || (!global && NON_ASCII.test(value))) return xtext(value)
  return value
}

/** A one-line text (a remote reply) fit for a field: controls dropped, non-ASCII escaped outside global notices. */
function oneLine(value: string, global: boolean): string {
  const flat = value.replace(CONTROLS, ' ').trim()
  return global ? flat : flat.replace(/[^\x20-\x7e]/g, '?')
}

const SUBJECTS: Record<NoticeAction, string> = {
  failed: 'Undelivered Mail Returned to Sender',
  delayed: 'Delayed Mail (still being retried)',
  delivered: 'Successful Mail Delivery Report',
  relayed: 'Successful Mail Delivery Report',
}

/** The strongest action decides the subject: a failure before a delay before a success. */
function mainAction(recipients: readonly NoticeRecipient[]): NoticeAction {
  for (const a of ['failed', 'delayed', 'delivered', 'relayed'] as const)
    if (recipients.some((r) => r.action === a)) return a
  return 'failed'
}

function humanText(n: NoticeInput): string {
  const lines = [`This is the mail system at ${n.reportingMta}.`, '']
  const group = (action: NoticeAction, intro: string) => {
    const list = n.recipients.filter((r) => r.action === action)
    if (list.length === 0) return
    lines.push(intro, '')
    for (const r of list) {
      const why = r.diagnostic ? `: ${oneLine(r.diagnostic, true)}` : ''
      lines.push(`  <${r.address}>${why}`)
    }
    lines.push('')
  }
  group('failed', 'Your message could not be delivered to these recipients, and will not be retried:')
  group(
    'delayed',
    'Your message has not been delivered yet to these recipients. Delivery is still being tried;\nyou do not need to send it again:',
  )
  group('delivered', 'Your message was delivered to these recipients:')
  group(
    'relayed',
    "Your message was passed on to these recipients' mail servers, which do not report delivery\nthemselves (no further notice will come from them):",
  )
  return lines.join('\r\n').replace(/\r?\n/g, '\r\n')
}

function machineText(n: NoticeInput): string {
  const g = n.global
  const out = [`Reporting-MTA: dns; ${n.reportingMta}`]
  if (n.envid) out.push(`Original-Envelope-Id: ${fieldValue(n.envid, g)}`)
  out.push(`Arrival-Date: ${rfc5322Date(n.arrivalDate)}`)
  for (const r of n.recipients) {
    out.push('')
    if (r.orcpt) {
      const semi = r.orcpt.indexOf(';')
      const type = semi > 0 ? r.orcpt.slice(0, semi) : 'rfc822'
      const address = semi > 0 ? r.orcpt.slice(semi + 1) : r.orcpt
      out.push(`Original-Recipient: ${type};${fieldValue(address, g)}`)
    }
    const utf8 = NON_ASCII.test(r.address)
    // RFC 6533 3: a UTF-8 address is of type utf-8; outside a global notice as utf-8-addr-xtext.
    out.push(
      utf8
        ? `Final-Recipient: utf-8; ${g ? r.address : r.address.replace(/[^\x20-\x7e]/gu, (c) => `\\x{${c.codePointAt(0)!.toString(16).toUpperCase()}}`)}`
        : `Final-Recipient: rfc822; ${fieldValue(r.address, g)}`,
    )
    out.push(`Action: ${r.action}`)
    out.push(`Status: ${r.status}`)
    if (r.remoteMta) out.push(`Remote-MTA: dns; ${oneLine(r.remoteMta, false)}`)
    if (r.diagnostic) out.push(`Diagnostic-Code: smtp; ${oneLine(r.diagnostic, g)}`)
    if (r.lastAttemptAt !== null) out.push(`Last-Attempt-Date: ${rfc5322Date(r.lastAttemptAt)}`)
    if (r.action === 'delayed' && r.willRetryUntil !== null)
      out.push(`Will-Retry-Until: ${rfc5322Date(r.willRetryUntil)}`)
  }
  return `${out.join('\r\n')}\r\n`
}

const has8bit = (b: Buffer) => b.some((x) => x >= 0x80)

/** The notice as a complete RFC 5322 message, CRLF line ends, ready to be signed and queued. */
export function composeNotice(n: NoticeInput): Buffer {
  if (n.recipients.length === 0) throw new Error('a notice needs at least one recipient')
  const boundary = `=_dsn_${randomBytes(12).toString('hex')}`
  const action = mainAction(n.recipients)
  const human = Buffer.from(humanText(n), 'utf8')
  const machine = Buffer.from(machineText(n), 'utf8')
  const returned = n.returnFull ? n.original : n.original.subarray(0, headerEnd(n.original))
  const returnedType = n.returnFull
    ? n.global
      ? 'message/global'
      : 'message/rfc822'
    : n.global
      ? 'message/global-headers'
      : 'text/rfc822-headers'
  const cte = (b: Buffer) => (has8bit(b) ? '8bit' : '7bit')
  const head = [
    `From: ${n.from}`,
    `To: <${n.to}>`,
    `Subject: ${SUBJECTS[action]}`,
    `Date: ${rfc5322Date(n.date)}`,
    `Message-ID: ${n.messageId}`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=${n.global ? 'global-delivery-status' : 'delivery-status'};`,
    `\tboundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated delivery status notification.',
    '',
  ].join('\r\n')
  const part = (type: string, body: Buffer, extra: string[] = []) =>
    Buffer.concat([
      Buffer.from(
        [
          `--${boundary}`,
          `Content-Type: ${type}`,
          `Content-Transfer-Encoding: ${cte(body)}`,
          ...extra,
          '',
          '',
        ].join('\r\n'),
        'utf8',
      ),
      body,
      body.subarray(-2).toString('latin1') === '\r\n' ? Buffer.alloc(0) : Buffer.from('\r\n'),
    ])
  return Buffer.concat([
    Buffer.from(`${head}\r\n`, 'utf8'),
    part('text/plain; charset=utf-8', human, ['Content-Description: Notification']),
    part(n.global ? 'message/global-delivery-status' : 'message/delivery-status', machine, [
      'Content-Description: Delivery report',
    ]),
    part(returnedType, returned, [
      `Content-Description: ${n.returnFull ? 'Returned message' : 'Returned message headers'}`,
    ]),
    Buffer.from(`--${boundary}--\r\n`),
  ])
}
