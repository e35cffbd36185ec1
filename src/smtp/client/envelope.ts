// What goes on the wire for one outbound transaction, worked out before a byte is sent: the MAIL
// and RCPT parameters for the extensions the server offered (SIZE, BODY, SMTPUTF8, DSN,
// REQUIRETLS), and the message as DATA text. Pure: no sockets, no replies.
// Invariants:
// - A parameter is only sent when the server advertised its extension (RFC 5321 4.1.1.11).
// - SMTPUTF8 is asked for when an address or the header section is not ASCII (RFC 6531 3.4);
//   BODY=8BITMIME whenever any octet of the message is >= 0x80 (RFC 6152). Without 8BITMIME
//   the message goes as it is (no 7-bit downgrade).
// - A non-ASCII address is never sent to a server without SMTPUTF8 (RFC 6531 3.2): such a
//   recipient (every recipient, when it is the sender) is refused here with 553 5.6.7.
// - An address with a control character, '<' or '>' never reaches a command line (it would
//   inject commands): it is refused here with 501 (5.1.3 recipient, 5.1.7 sender).
// - DATA text has CRLF line ends only (a bare CR or LF becomes CRLF, RFC 5321 2.3.8, so no
//   server can read a different end of data than ours), every line starting with '.' gets one
//   more (4.5.2), and it ends with CRLF '.' CRLF. SIZE counts the text before dot-stuffing (RFC 1870).
// - ENVID and ORCPT are xtext (RFC 3461 4); an ORCPT address that is not ASCII is written as
//   `utf-8;` with \x{HEX} escapes (RFC 6533 3), raw UTF-8 only under SMTPUTF8.

import { headerEnd } from '../../mail/headers.ts'
import type { OutgoingRecipient, OutgoingTransaction } from '../../services/outbound/transport.ts'
import { makeReply, type Reply } from './reply.ts'

/** EHLO keywords (upper case) and their parameters (the rest of the line, '' when none). */
export type Extensions = ReadonlyMap<string, string>

export interface EnvelopePlan {
  /** The MAIL FROM command line, without CRLF. */
  mail: string
  /** One entry per recipient of the transaction, in order: the RCPT command line, or the local refusal. */
  rcpts: (
    | { address: string; line: string; refused: null }
    | { address: string; line: null; refused: Reply }
  )[]
  /** The message as DATA text, dot-stuffed and terminated, in pieces to be written in order. */
  data: Buffer[]
  size: number
  smtputf8: boolean
  eightBit: boolean
  /** The server offered DSN: the DSN parameters are in the commands. */
  dsn: boolean
}

const NON_ASCII = /[\u0080-\u{10ffff}]/u
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
const UNSAFE = /[\x00-\x1f\x7f<>]/

const BAD_SENDER: Reply = makeReply(501, ['5.1.7 The sender address cannot be written in a MAIL command'])
const BAD_RECIPIENT: Reply = makeReply(501, [
  '5.1.3 The recipient address cannot be written in a RCPT command',
])

/** Refusal for a non-ASCII address when the server has no SMTPUTF8. */
export const NO_SMTPUTF8: Reply = makeReply(553, [
  '5.6.7 The server does not offer SMTPUTF8, which this address needs (RFC 6531 3.2)',
])

export function planEnvelope(tx: OutgoingTransaction, ext: Extensions): EnvelopePlan {
  const { data, size, eightBit } = dataText(tx.message)
  const senderUtf8 = NON_ASCII.test(tx.mailFrom)
  const addressesUtf8 = senderUtf8 || tx.recipients.some((r) => NON_ASCII.test(r.address))
  const headerUtf8 = tx.message.subarray(0, headerEnd(tx.message)).some((b) => b >= 0x80)
  const smtputf8 = ext.has('SMTPUTF8') && (addressesUtf8 || headerUtf8)
  const dsn = ext.has('DSN')

  const params: string[] = []
  if (ext.has('SIZE')) params.push(`SIZE=${size}`)
  if (eightBit && ext.has('8BITMIME')) params.push('BODY=8BITMIME')
  if (smtputf8) params.push('SMTPUTF8')
  if (dsn && tx.ret) params.push(`RET=${tx.ret}`)
  if (dsn && tx.envid) params.push(`ENVID=${xtext(tx.envid)}`)
  if (tx.requireTls && ext.has('REQUIRETLS')) params.push('REQUIRETLS') // RFC 8689 4.2.1
  const mail = [`MAIL FROM:<${tx.mailFrom}>`, ...params].join(' ')

  const rcpts = tx.recipients.map((r) => {
    if (UNSAFE.test(tx.mailFrom)) return { address: r.address, line: null, refused: BAD_SENDER }
    if (UNSAFE.test(r.address)) return { address: r.address, line: null, refused: BAD_RECIPIENT }
    if (!smtputf8 && (senderUtf8 || NON_ASCII.test(r.address))) {
      return { address: r.address, line: null, refused: NO_SMTPUTF8 }
    }
    const p = dsn ? dsnParams(r, smtputf8) : []
    return { address: r.address, line: [`RCPT TO:<${r.address}>`, ...p].join(' '), refused: null }
  })
  return { mail, rcpts, data, size, smtputf8, eightBit, dsn }
}

function dsnParams(r: OutgoingRecipient, smtputf8: boolean): string[] {
  const out: string[] = []
  if (r.notify && r.notify.length > 0) out.push(`NOTIFY=${r.notify.join(',')}`)
  if (r.orcpt) {
    const semi = r.orcpt.indexOf(';')
    const type = semi > 0 ? r.orcpt.slice(0, semi) : 'rfc822'
    const address = semi > 0 ? r.orcpt.slice(semi + 1) : r.orcpt
    if (address && /^[A-Za-z0-9][A-Za-z0-9-]*$/.test(type)) {
      out.push(
        NON_ASCII.test(address)
          ? `ORCPT=utf-8;${utf8AddrXtext(address, smtputf8)}`
          : `ORCPT=${type};${xtext(address)}`,
      )
    }
  }
  return out
}

/** RFC 3461 4: xtext, every octet outside '!'..'~' and '+', '=' as +HH (UTF-8 octets for non-ASCII). */
export function xtext(value: string): string {
  let out = ''
  for (const b of Buffer.from(value, 'utf8')) {
    out +=
      b >= 0x21 && b <= 0x7e && b !== 0x2b && b !== 0x3d
        ? String.fromCharCode(b)
        : `+${b.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/**
 * RFC 6533 3: utf-8-addr-xtext (non-ASCII as \x{HEX}) or, with SMTPUTF8, utf-8-addr-unitext
 * (non-ASCII as it is); '+', '=', '\', space and controls are always escaped.
 */
export function utf8AddrXtext(value: string, raw8bit: boolean): string {
  let out = ''
  for (const ch of value) {
    const cp = ch.codePointAt(0)!
    const plain =
      (cp >= 0x21 && cp <= 0x7e && ch !== '+' && ch !== '=' && ch !== '\\') || (raw8bit && cp >= 0x80)
    out += plain ? ch : `\\x{${cp.toString(16).toUpperCase().padStart(2, '0')}}`
  }
  return out
}

const CRLF = Buffer.from('\r\n')
const DOT = Buffer.from('.')
const END = Buffer.from('.\r\n')

/**
 * The message as DATA text in pieces (slices of `message` plus the few bytes added), its size
 * with CRLF line ends before dot-stuffing, and whether it has octets >= 0x80.
 */
export function dataText(message: Buffer): { data: Buffer[]; size: number; eightBit: boolean } {
  const out: Buffer[] = []
  let size = 0
  let eightBit = false
  let start = 0 // the first byte not yet copied out
  let lineStart = true
  const n = message.length
  for (let i = 0; i < n; i++) {
    const b = message[i]!
    if (b >= 0x80) eightBit = true
    if (lineStart && b === 0x2e) {
      if (i > start) out.push(message.subarray(start, i))
      out.push(DOT)
      start = i
    }
    lineStart = false
    if (b === 0x0d && message[i + 1] === 0x0a) {
      i++
      lineStart = true
    } else if (b === 0x0d || b === 0x0a) {
      // a bare CR or LF: replaced by CRLF
      if (i > start) out.push(message.subarray(start, i))
      out.push(CRLF)
      size += 1
      start = i + 1
      lineStart = true
    }
  }
  if (n > start) out.push(message.subarray(start, n))
  size += n
  if (n > 0 && !lineStart) {
    out.push(CRLF)
    size += 2
  }
  out.push(END)
  return { data: out, size, eightBit }
}
