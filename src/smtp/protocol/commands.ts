// The SMTP command parser: one command line (without its CRLF) to a typed command or a typed
// error. Pure: no state beyond what the caller passes in ParseContext, no I/O.
// Invariants:
// - A line that decodeLine accepts is valid UTF-8 without control characters, so no CR, LF or
//   NUL can reach a command's arguments (lines end only at CRLF: RFC 5321 2.3.8).
// - Verbs are case-insensitive (RFC 5321 2.4); arguments keep their case.
// - Errors name a reply in replies.ts (CommandErrorCode -> REPLIES) plus an optional detail;
//   the parser never picks reply codes itself.
// - MAIL and RCPT parameters are only the ones Postern advertises: SIZE, BODY, SMTPUTF8, RET,
//   ENVID, REQUIRETLS on MAIL; NOTIFY, ORCPT on RCPT. Whether REQUIRETLS may be used in the
//   session (only over TLS, RFC 8689 2) is the MAIL step's check, not the parser's. Anything else is UNKNOWN_PARAMETER (555).
// Leniency, on purpose: spaces after `FROM:`/`TO:` and between parameters, and trailing spaces,
// are accepted (common in the wild and harmless); addresses without angle brackets are not.

import { isUtf8 } from 'node:buffer'
import type { MailFrom, RcptTo } from '../handler.ts'
import { decodeXtext, type EsmtpParam, parseParams, parsePath } from './paths.ts'

export type Command =
  | { kind: 'EHLO' | 'HELO'; domain: string }
  | { kind: 'MAIL'; from: MailFrom }
  | { kind: 'RCPT'; to: RcptTo }
  | { kind: 'DATA' }
  | { kind: 'BDAT'; size: number; last: boolean }
  | { kind: 'RSET' | 'NOOP' | 'QUIT' | 'STARTTLS' | 'HELP' | 'VRFY' }
  /** The mechanism only: an initial response is a secret and is dropped here. */
  | { kind: 'AUTH'; mechanism: string; initial: string | null }

export type CommandErrorCode =
  | 'UNRECOGNIZED'
  | 'BAD_CHARACTERS'
  | 'NON_SMTP'
  | 'SYNTAX'
  | 'BAD_SENDER'
  | 'BAD_RECIPIENT'
  | 'NON_ASCII_ADDRESS'
  | 'UNKNOWN_PARAMETER'
  | 'NOT_IMPLEMENTED'

export interface CommandError {
  kind: 'ERROR'
  error: CommandErrorCode
  /** Added to the reply text: what exactly was wrong. */
  detail?: string
}

export interface ParseContext {
  /** The transaction's MAIL carried SMTPUTF8: RCPT addresses may be UTF-8 (RFC 6531 3.4). */
  smtputf8: boolean
}

const fail = (error: CommandErrorCode, detail?: string): CommandError => ({ kind: 'ERROR', error, detail })

/** Command lines as text: refuses control characters (bare CR and LF among them) and bad UTF-8. */
export function decodeLine(raw: Buffer): string | CommandError {
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!
    if (c < 32 || c === 127) return fail('BAD_CHARACTERS')
  }
  if (!isUtf8(raw)) return fail('BAD_CHARACTERS')
  return raw.toString('utf8')
}

/** Verbs of RFC 5321 and extensions that Postern does not implement (502, RFC 5321 4.2.4). */
const NOT_IMPLEMENTED = new Set([
  'EXPN',
  'TURN',
  'ETRN',
  'ATRN',
  'SEND',
  'SOML',
  'SAML',
  'VERB',
  'XCLIENT',
  'XFORWARD',
])
/** HTTP request lines: a browser or proxy talking to the SMTP port (cross-protocol attacks). */
const NON_SMTP = new Set(['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'CONNECT', 'PATCH'])
const NO_ARGUMENTS = new Set(['DATA', 'RSET', 'QUIT', 'STARTTLS'])

/** Parses one decoded command line. */
export function parseCommand(line: string, ctx: ParseContext): Command | CommandError {
  const text = line.trimEnd()
  const sp = text.indexOf(' ')
  const verb = (sp < 0 ? text : text.slice(0, sp)).toUpperCase()
  const arg = sp < 0 ? '' : text.slice(sp + 1)
  switch (verb) {
    case 'EHLO':
    case 'HELO':
      return parseHello(verb, arg)
    case 'MAIL':
      return parseMail(arg)
    case 'RCPT':
      return parseRcpt(arg, ctx)
    case 'BDAT':
      return parseBdat(arg)
    case 'DATA':
    case 'RSET':
    case 'QUIT':
    case 'STARTTLS':
    case 'NOOP':
    case 'HELP':
    case 'VRFY':
      if (NO_ARGUMENTS.has(verb) && arg.trim() !== '') return fail('SYNTAX', `${verb} takes no arguments`)
      if (verb === 'VRFY' && arg.trim() === '') return fail('SYNTAX', 'VRFY needs an argument') // RFC 5321 4.1.1.6
      return { kind: verb }
    case 'AUTH': {
      const [mechanism = '', initial, extra] = arg.trim().split(/ +/)
      if (!/^[A-Za-z0-9_-]{1,20}$/.test(mechanism)) return fail('SYNTAX', 'AUTH needs a mechanism')
      if (extra !== undefined) return fail('SYNTAX', 'AUTH takes a mechanism and an initial response')
      return { kind: 'AUTH', mechanism: mechanism.toUpperCase(), initial: initial ?? null }
    }
    default:
      if (NOT_IMPLEMENTED.has(verb)) return fail('NOT_IMPLEMENTED')
      if (NON_SMTP.has(verb) && sp > 0) return fail('NON_SMTP')
      return fail('UNRECOGNIZED')
  }
}

/** EHLO/HELO SP ( Domain / address-literal ) (RFC 5321 4.1.1.1), checked only for shape. */
function parseHello(verb: 'EHLO' | 'HELO', arg: string): Command | CommandError {
  const domain = arg.trim()
  if (domain === '') return fail('SYNTAX', `${verb} needs a domain or address literal`)
  if (domain.includes(' ')) return fail('SYNTAX', `${verb} takes one argument`)
  if (Buffer.byteLength(domain) > 255) return fail('SYNTAX', 'domain too long')
  return { kind: verb, domain }
}

/** The text after `MAIL`/`RCPT`: `FROM:`/`TO:` then optional spaces; index of the path, or -1. */
function afterKeyword(arg: string, keyword: string): number {
  if (arg.slice(0, keyword.length).toUpperCase() !== keyword) return -1
  let i = keyword.length
  while (arg[i] === ' ') i++
  return i
}

/** MAIL FROM:<reverse-path> [SP Mail-parameters] (RFC 5321 4.1.1.2). */
function parseMail(arg: string): Command | CommandError {
  const at = afterKeyword(arg, 'FROM:')
  if (at < 0) return fail('SYNTAX', 'use MAIL FROM:<address>')
  const path = parsePath(arg, at, { allowNull: true, allowPostmaster: false })
  if ('error' in path) return fail('BAD_SENDER', path.error)
  const params = paramsAfter(arg, path.end)
  if ('error' in params) return fail('SYNTAX', params.error)
  const from: MailFrom = {
    address: path.address,
    size: null,
    body: null,
    smtputf8: false,
    ret: null,
    envid: null,
    requireTls: false,
  }
  for (const { keyword, value } of params) {
    switch (keyword) {
      case 'SIZE': // RFC 1870 3
        if (value === null || !/^\d{1,20}$/.test(value)) return fail('SYNTAX', 'SIZE needs a number')
        from.size = Number(value)
        break
      case 'BODY': {
        // RFC 6152 2; BINARYMIME (RFC 3030 3) is not advertised, so not accepted.
        const body = value?.toUpperCase()
        if (body === '7BIT' || body === '8BITMIME') from.body = body
        else if (body === 'BINARYMIME') return fail('UNKNOWN_PARAMETER', 'BODY=BINARYMIME is not offered')
        else return fail('SYNTAX', 'BODY is 7BIT or 8BITMIME')
        break
      }
      case 'SMTPUTF8': // RFC 6531 3.4
        if (value !== null) return fail('SYNTAX', 'SMTPUTF8 takes no value')
        from.smtputf8 = true
        break
      case 'RET': {
        // RFC 3461 4.3
        const ret = value?.toUpperCase()
        if (ret !== 'FULL' && ret !== 'HDRS') return fail('SYNTAX', 'RET is FULL or HDRS')
        from.ret = ret
        break
      }
      case 'ENVID': {
        // RFC 3461 4.4: xtext, at most 100 characters
        const envid = value === null ? null : decodeXtext(value)
        if (envid === null || envid === '' || value!.length > 100) return fail('SYNTAX', 'bad ENVID')
        from.envid = envid
        break
      }
      case 'REQUIRETLS': // RFC 8689 2: no value
        if (value !== null) return fail('SYNTAX', 'REQUIRETLS takes no value')
        from.requireTls = true
        break
      default:
        return fail('UNKNOWN_PARAMETER', keyword)
    }
  }
  if (path.nonAscii && !from.smtputf8) return fail('NON_ASCII_ADDRESS') // RFC 6531 3.5
  if (!from.smtputf8 && hasNonAscii(params)) return fail('SYNTAX', 'non-ASCII parameter without SMTPUTF8')
  return { kind: 'MAIL', from }
}

const NOTIFY_VALUES = new Set(['NEVER', 'SUCCESS', 'FAILURE', 'DELAY'])

/** RCPT TO:<forward-path> [SP Rcpt-parameters] (RFC 5321 4.1.1.3). */
function parseRcpt(arg: string, ctx: ParseContext): Command | CommandError {
  const at = afterKeyword(arg, 'TO:')
  if (at < 0) return fail('SYNTAX', 'use RCPT TO:<address>')
  const path = parsePath(arg, at, { allowNull: false, allowPostmaster: true })
  if ('error' in path) return fail('BAD_RECIPIENT', path.error)
  if (path.nonAscii && !ctx.smtputf8) return fail('NON_ASCII_ADDRESS') // RFC 6531 3.5
  const params = paramsAfter(arg, path.end)
  if ('error' in params) return fail('SYNTAX', params.error)
  if (!ctx.smtputf8 && hasNonAscii(params)) return fail('SYNTAX', 'non-ASCII parameter without SMTPUTF8')
  const to: RcptTo = { address: path.address, notify: null, orcpt: null }
  for (const { keyword, value } of params) {
    switch (keyword) {
      case 'NOTIFY': {
        // RFC 3461 4.1: NEVER, or a list of SUCCESS, FAILURE, DELAY
        const list = (value ?? '').toUpperCase().split(',')
        if (list.some((v) => !NOTIFY_VALUES.has(v)) || new Set(list).size !== list.length) {
          return fail('SYNTAX', 'NOTIFY is NEVER or a list of SUCCESS, FAILURE, DELAY')
        }
        if (list.includes('NEVER') && list.length > 1) return fail('SYNTAX', 'NOTIFY=NEVER stands alone')
        to.notify = list as RcptTo['notify']
        break
      }
      case 'ORCPT': {
        // RFC 3461 4.2: addr-type ";" xtext, at most 500 characters
        const semi = value?.indexOf(';') ?? -1
        const type = semi > 0 ? value!.slice(0, semi) : ''
        const address = semi > 0 ? decodeXtext(value!.slice(semi + 1)) : null
        if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(type) || !address || value!.length > 500) {
          return fail('SYNTAX', 'ORCPT is addr-type;xtext')
        }
        to.orcpt = `${type};${address}`
        break
      }
      default:
        return fail('UNKNOWN_PARAMETER', keyword)
    }
  }
  return { kind: 'RCPT', to }
}

function paramsAfter(arg: string, end: number): EsmtpParam[] | { error: string } {
  const rest = arg.slice(end)
  if (rest === '') return []
  if (rest[0] !== ' ') return { error: 'text after the address' }
  return parseParams(rest)
}

const hasNonAscii = (params: EsmtpParam[]) =>
  params.some((p) => p.value !== null && /[\u0080-\u{10ffff}]/u.test(p.value))

/** bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] (RFC 3030 2). */
function parseBdat(arg: string): Command | CommandError {
  const m = /^(\d{1,15})(?: +(LAST))? *$/i.exec(arg)
  if (!m) return fail('SYNTAX', 'use BDAT <size> [LAST]')
  return { kind: 'BDAT', size: Number(m[1]), last: m[2] !== undefined }
}
