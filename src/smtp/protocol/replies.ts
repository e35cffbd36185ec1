// SMTP replies: the one place where Postern's SMTP server picks a reply code (RFC 5321 4.2) and
// its enhanced status code (RFC 3463, registry of RFC 5248), and the one formatter that writes
// replies on the wire. Pure.
// Invariants:
// - Every reply the server sends itself is named here; the parser and the session refer to
//   them by name, so a code pair is decided once.
// - Enhanced codes prefix every reply except the greeting, the EHLO/HELO answer and 354, which
//   have none (RFC 2034 4; 3xx has no enhanced class).
// - A formatted reply is CRLF-terminated lines of printable text: whatever a handler returns,
//   no CR, LF or control character reaches the wire, and lines are cut to stay under the
//   512-octet reply line limit (RFC 5321 4.5.3.1.5).

import type { SmtpReply } from '../handler.ts'
import type { CommandErrorCode } from './commands.ts'
import type { MessageLimits, MessageProblem } from './data-reader.ts'

/** A reply as the server holds it before formatting. */
export interface Reply {
  code: number
  /** RFC 3463 code, or null for the greeting, EHLO/HELO and 354. */
  enhanced: string | null
  /** One or more lines, separated by '\n'. */
  text: string
}

const r = (code: number, enhanced: string | null, text: string): Reply => ({ code, enhanced, text })

/** Every reply the server sends on its own account. */
export const REPLIES = {
  // 2xx and 3xx
  ok: r(250, '2.0.0', 'OK'),
  senderOk: r(250, '2.1.0', 'Sender OK'),
  recipientOk: r(250, '2.1.5', 'Recipient OK'),
  resetOk: r(250, '2.0.0', 'Reset OK'),
  chunkOk: (octets: number) => r(250, '2.0.0', `${octets} octets received`),
  cannotVrfy: r(252, '2.5.0', 'Cannot VRFY user, but will accept message and attempt delivery'), // RFC 5321 3.5.3
  help: r(
    214,
    '2.0.0',
    'Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS\nSee RFC 5321',
  ),
  tlsReady: r(220, '2.0.0', 'Ready to start TLS'), // RFC 3207 4
  bye: (host: string) => r(221, '2.0.0', `${host} closing connection`),
  startData: r(354, null, 'End data with <CR><LF>.<CR><LF>'),
  greeting: (host: string, banner: string) => r(220, null, `${host} ${banner}`),
  helo: (host: string) => r(250, null, host),
  ehlo: (host: string, extensions: readonly string[]) => r(250, null, [host, ...extensions].join('\n')),

  // 421: the session ends after these (RFC 5321 3.8)
  shuttingDown: (host: string) => r(421, '4.3.2', `${host} Service shutting down, try again later`),
  timeout: (host: string) => r(421, '4.4.2', `${host} Timeout, closing connection`),
  tooManyConnections: (host: string) => r(421, '4.7.0', `${host} Too many connections, try again later`),
  tooManyFromAddress: (host: string) =>
    r(421, '4.7.0', `${host} Too many connections from your address, try again later`),
  tooManyErrors: (host: string) => r(421, '4.7.0', `${host} Too many errors, closing connection`),
  tooManyUnknownRecipients: (host: string) =>
    r(421, '4.7.0', `${host} Too many unknown recipients, closing connection`),
  tooManyTransactions: (host: string) =>
    r(421, '4.7.0', `${host} Too many messages in one connection, reconnect to send more`),
  connectFailed: (host: string) => r(421, '4.3.0', `${host} Local error, try again later`),

  // 4xx
  localError: r(451, '4.3.0', 'Local error in processing, try again later'),
  tooManyRecipients: r(452, '4.5.3', 'Too many recipients'), // RFC 5321 4.5.3.1.10

  // 5xx, protocol
  unrecognized: r(500, '5.5.2', 'Command not recognized'),
  badCharacters: r(500, '5.5.2', 'Command line has control characters or is not UTF-8'),
  lineTooLong: r(500, '5.5.6', 'Line too long'),
  nonSmtp: r(500, '5.5.2', 'This is an SMTP server, closing connection'),
  syntax: r(501, '5.5.4', 'Syntax error in parameters or arguments'),
  badSender: r(501, '5.1.7', 'Bad sender address syntax'),
  badRecipient: r(501, '5.1.3', 'Bad recipient address syntax'),
  notImplemented: r(502, '5.5.1', 'Command not implemented'),
  tlsUnavailable: r(502, '5.5.1', 'STARTTLS not available'),
  authUnavailable: r(502, '5.5.1', 'AUTH not available on this port'), // DESIGN.md: never on the MX port
  // RFC 4954 and RFC 3207 for submission
  authOk: r(235, '2.7.0', 'Authentication successful'),
  authChallenge: (b64: string) => r(334, null, b64),
  authAlready: r(503, '5.5.1', 'Already authenticated'),
  authInTransaction: r(503, '5.5.1', 'AUTH is not allowed during a mail transaction'),
  authMechanism: r(504, '5.5.4', 'Unrecognized authentication mechanism: use PLAIN or LOGIN'),
  authCancelled: r(501, '5.7.0', 'Authentication cancelled'),
  authBadResponse: r(501, '5.5.2', 'Cannot decode the response (base64 expected)'),
  encryptionRequired: r(538, '5.7.11', 'Encryption required: use STARTTLS first, or port 465'),
  authRequired: r(530, '5.7.0', 'Authentication required'),
  // RFC 8689 2: REQUIRETLS is only valid in a TLS session (5.7.10 "Encryption needed", RFC 5248).
  requireTlsNeedsTls: r(530, '5.7.10', 'REQUIRETLS needs a TLS session: use STARTTLS first'),
  needHelo: r(503, '5.5.1', 'Send EHLO or HELO first'),
  needMail: r(503, '5.5.1', 'Send MAIL first'),
  nestedMail: r(503, '5.5.1', 'Sender already given, send RSET to start over'),
  needRcpt: r(503, '5.5.1', 'Send RCPT first'),
  rcptAfterBdat: r(503, '5.5.1', 'No RCPT after BDAT, send RSET to start over'),
  dataAfterBdat: r(503, '5.5.1', 'DATA cannot follow BDAT in one transaction'), // RFC 3030 3
  bdatFailed: r(503, '5.5.1', 'Transaction failed earlier, send RSET'), // RFC 3030 4 (pipelined chunks)
  tlsActive: r(503, '5.5.1', 'TLS already active'),
  transactionOpen: r(503, '5.5.1', 'Finish or reset the mail transaction first'),
  noValidRecipients: r(554, '5.5.1', 'No valid recipients'), // RFC 5321 3.3
  unknownParameter: r(555, '5.5.4', 'Parameter not recognized or not implemented'), // RFC 5321 4.1.1.11
  nonAsciiAddress: r(553, '5.6.7', 'Non-ASCII address needs SMTPUTF8'), // RFC 6531 3.5
  earlyTalker: r(554, '5.5.0', 'Protocol error: talking before the greeting'),

  // 5xx, the message
  sizeTooBig: (limit: number) =>
    r(552, '5.3.4', `Declared message size exceeds the limit of ${limit} octets`), // RFC 1870 6
  messageTooBig: (limit: number) => r(552, '5.3.4', `Message size exceeds the limit of ${limit} octets`),
  headerTooBig: (limit: number) => r(552, '5.3.4', `Header section exceeds the limit of ${limit} octets`),
  textLineTooLong: (limit: number) => r(552, '5.3.4', `Message has a line longer than ${limit} octets`),
  // RFC 5321 2.3.8 and 4.1.1.4, the SMTP smuggling defence: refuse, never repair.
  bareLineEnd: r(
    550,
    '5.6.0',
    'Message refused: bare LF or bare CR is not allowed, lines must end with CRLF',
  ),
} as const

/** The reply for each parser error (commands.ts). */
export const COMMAND_ERRORS: Readonly<Record<CommandErrorCode, Reply>> = {
  UNRECOGNIZED: REPLIES.unrecognized,
  BAD_CHARACTERS: REPLIES.badCharacters,
  NON_SMTP: REPLIES.nonSmtp,
  SYNTAX: REPLIES.syntax,
  BAD_SENDER: REPLIES.badSender,
  BAD_RECIPIENT: REPLIES.badRecipient,
  NON_ASCII_ADDRESS: REPLIES.nonAsciiAddress,
  UNKNOWN_PARAMETER: REPLIES.unknownParameter,
  NOT_IMPLEMENTED: REPLIES.notImplemented,
}

/** The reply for a message refused for its text (data-reader.ts), read to its end either way. */
export function messageProblemReply(problem: MessageProblem, limits: MessageLimits): Reply {
  switch (problem) {
    case 'TOO_BIG':
      return REPLIES.messageTooBig(limits.maxMessageBytes)
    case 'BARE_LINE_END':
      return REPLIES.bareLineEnd
    case 'HEADER_TOO_BIG':
      return REPLIES.headerTooBig(limits.maxHeaderBytes)
    case 'LINE_TOO_LONG':
      return REPLIES.textLineTooLong(limits.maxLineBytes)
  }
}

/** Adds a detail to a reply's text (first line), e.g. which parameter was wrong. */
export function withDetail(reply: Reply, detail: string | undefined): Reply {
  if (!detail) return reply
  const nl = reply.text.indexOf('\n')
  const first = nl < 0 ? reply.text : reply.text.slice(0, nl)
  return { ...reply, text: `${first}: ${detail}${nl < 0 ? '' : reply.text.slice(nl)}` }
}

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})$/

/**
 * A handler's reply as the server sends it: the code must be 200..599, the enhanced code must
 * match the code's class (else X.0.0 of the class). null when the code is unusable.
 */
export function fromHandler(reply: SmtpReply): Reply | null {
  const code = reply?.code
  if (!Number.isInteger(code) || code < 200 || code > 599 || (code >= 300 && code < 400)) return null
  const klass = String(code)[0]!
  const m = typeof reply.enhanced === 'string' ? ENHANCED.exec(reply.enhanced) : null
  const enhanced = m && m[1] === klass ? reply.enhanced! : `${klass}.0.0`
  const text = typeof reply.message === 'string' && reply.message.trim() !== '' ? reply.message : 'OK'
  return { code, enhanced, text }
}

/** Room for the code, enhanced code and CRLF in a 512-octet reply line. */
const MAX_TEXT = 480

function cleanLine(line: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  const clean = line.replace(/[\x00-\x1f\x7f]/g, ' ').trim()
  if (Buffer.byteLength(clean) <= MAX_TEXT) return clean
  return Buffer.from(clean)
    .subarray(0, MAX_TEXT)
    .toString('utf8')
    .replace(/\uFFFD+$/, '')
}

/** The wire form: `code-enh text` continuation lines and a last `code enh text` line (RFC 5321 4.2.1). */
export function formatReply(reply: Reply): string {
  const lines = reply.text.split(/\r\n|\r|\n/).map(cleanLine)
  const prefix = reply.enhanced ? `${reply.enhanced} ` : ''
  let out = ''
  for (let i = 0; i < lines.length; i++) {
    const sep = i === lines.length - 1 ? ' ' : '-'
    const text = `${prefix}${lines[i]}`.trimEnd()
    out += text ? `${reply.code}${sep}${text}\r\n` : `${reply.code}${sep === '-' ? '-' : ''}\r\n`
  }
  return out
}
