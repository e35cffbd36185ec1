// LOGIN (RFC 9051 6.2.3) and AUTHENTICATE PLAIN (RFC 9051 6.2.2, RFC 4616) with SASL-IR
// (RFC 4959): the name is the mailbox address, the secret the mailbox password or an app
// password (services/mail-login decides, sharing the HTTP lock-out counters). Both are
// refused without TLS unless the client's address is in auth.plaintext_allowed_from.
// Response codes: AUTHENTICATIONFAILED, PRIVACYREQUIRED, UNAVAILABLE (locked), ALERT (the
// mailbox must change its password first), CONTACTADMIN (disabled).

import { loginMailbox } from '../../services/mail-login/login.ts'
import { type Done, type ImapCommand, ImapNo, NOT_AUTHENTICATED } from '../command.ts'
import { ImapSyntaxError } from '../protocol/parser.ts'
import type { ImapSession } from '../session.ts'

async function logIn(s: ImapSession, name: string, secret: string): Promise<Done> {
  if (!s.plaintextOk)
    throw new ImapNo(
      'Log-in over an unencrypted connection is not allowed: use STARTTLS or port 993.',
      'PRIVACYREQUIRED',
    )
  const result = await loginMailbox(s.ctx.login, { name, secret, ip: s.info.ip, via: 'imap' }, s.ctx.sleep)
  if (!result.ok) {
    s.log.info({ failure: result.failure }, 'IMAP log-in failed')
    switch (result.failure) {
      case 'LOCKED':
        throw new ImapNo(result.message, 'UNAVAILABLE')
      case 'PASSWORD_CHANGE_REQUIRED':
        throw new ImapNo(
          'This mailbox must change its password before mail clients may log in: set a new one in the web app or ask your administrator.',
          'ALERT',
        )
      case 'DISABLED':
        throw new ImapNo(result.message, 'CONTACTADMIN')
      default:
        throw new ImapNo('Invalid name or password.', 'AUTHENTICATIONFAILED')
    }
  }
  s.loggedIn(result.account)
  s.log.info({ mailbox: result.account.mailbox_id }, 'IMAP log-in')
  return { code: `CAPABILITY ${s.capabilities().join(' ')}`, text: 'Logged in.' }
}

export const login: ImapCommand = {
  states: NOT_AUTHENTICATED,
  async run(s, call) {
    const r = call.args
    r.space()
    const name = r.astring()
    r.space()
    const secret = r.astring()
    r.end()
    return logIn(s, name, secret)
  },
}

function decodePlain(b64: string): { name: string; secret: string } {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new ImapSyntaxError('Invalid base64 in the SASL response.')
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0')
  if (parts.length !== 3) throw new ImapNo('Malformed PLAIN response.', 'AUTHENTICATIONFAILED')
  const [authz, name, secret] = parts as [string, string, string]
  if (authz !== '' && authz.toLowerCase() !== name.toLowerCase())
    throw new ImapNo('Logging in as another user is not supported.', 'AUTHORIZATIONFAILED')
  return { name, secret }
}

export const authenticate: ImapCommand = {
  states: NOT_AUTHENTICATED,
  async run(s, call) {
    const r = call.args
    r.space()
    const mech = r.keyword()
    let initial: string | null = null
    if (r.trySpace()) initial = r.atom()
    r.end()
    if (mech !== 'PLAIN')
      throw new ImapNo(`Unsupported mechanism ${mech}; this server offers PLAIN.`, 'CANNOT')
    if (!s.plaintextOk)
      throw new ImapNo(
        'Log-in over an unencrypted connection is not allowed: use STARTTLS or port 993.',
        'PRIVACYREQUIRED',
      )
    let response = initial === '=' ? '' : initial
    if (response === null) {
      s.continue('')
      await s.flush()
      const line = await s.readLine()
      if (line === null) return { answered: true }
      response = line.toString('latin1').trim()
      if (response === '*') throw new ImapSyntaxError('Authentication cancelled.')
    }
    const { name, secret } = decodePlain(response)
    return logIn(s, name, secret)
  },
}
