// AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN, for submission only: the handler's auth
// policy decides whether AUTH is offered (TLS, or a trusted client address) and checks the
// name and secret. Challenges and responses are base64 lines read straight from the
// connection; `*` cancels. Secrets never reach the log (session.ts redacts AUTH lines, and the
// response lines are not traced).

import type { Command } from '../protocol/commands.ts'
import { REPLIES } from '../protocol/replies.ts'
import type { StepSession } from '../step-session.ts'

const B64 = /^[A-Za-z0-9+/]*={0,2}$/

/** One response line to a 334 challenge: the decoded text, 'cancel' for `*`, or null when malformed. */
async function response(s: StepSession, challenge: string): Promise<string | 'cancel' | null | 'gone'> {
  s.reply(REPLIES.authChallenge(challenge))
  const input = await s.conn.readLine()
  if ('end' in input) {
    s.interrupted(input.end)
    return 'gone'
  }
  if ('tooLong' in input) return null
  const line = input.line.toString('latin1').trim()
  if (line === '*') return 'cancel'
  if (!B64.test(line)) return null
  return Buffer.from(line, 'base64').toString('utf8')
}

export async function auth(s: StepSession, cmd: Extract<Command, { kind: 'AUTH' }>): Promise<void> {
  const policy = s.handler.auth
  if (!policy) return s.refuse(REPLIES.authUnavailable)
  if (!s.info.helo || !s.info.esmtp) return s.refuse(REPLIES.needHelo)
  if (s.info.auth) return s.refuse(REPLIES.authAlready)
  if (s.tx) return s.refuse(REPLIES.authInTransaction)
  if (!policy.offered(s.snapshot())) return s.refuse(REPLIES.encryptionRequired)
  const decode = (text: string) => (B64.test(text) ? Buffer.from(text, 'base64').toString('utf8') : null)
  let name: string
  let secret: string
  if (cmd.mechanism === 'PLAIN') {
    let text: string | 'cancel' | null | 'gone' =
      cmd.initial === '=' ? '' : cmd.initial ? decode(cmd.initial) : null
    if (cmd.initial === null) text = await response(s, '')
    if (text === 'gone') return
    if (text === 'cancel') return s.refuse(REPLIES.authCancelled)
    const parts = text === null ? [] : text.split('\0')
    if (parts.length !== 3) return s.refuse(REPLIES.authBadResponse)
    const [authz, user, pass] = parts as [string, string, string]
    if (authz !== '' && authz.toLowerCase() !== user.toLowerCase()) return s.refuse(REPLIES.authBadResponse)
    name = user
    secret = pass
  } else if (cmd.mechanism === 'LOGIN') {
    let user: string | 'cancel' | null | 'gone' = cmd.initial ? decode(cmd.initial) : null
    if (cmd.initial === null) user = await response(s, Buffer.from('Username:').toString('base64'))
    if (user === 'gone') return
    if (user === 'cancel') return s.refuse(REPLIES.authCancelled)
    if (user === null) return s.refuse(REPLIES.authBadResponse)
    const pass = await response(s, Buffer.from('Password:').toString('base64'))
    if (pass === 'gone') return
    if (pass === 'cancel') return s.refuse(REPLIES.authCancelled)
    if (pass === null) return s.refuse(REPLIES.authBadResponse)
    name = user
    secret = pass
  } else return s.refuse(REPLIES.authMechanism)
  const result = await s.ask('auth', () => policy.login(s.snapshot(), name, secret))
  if (!result) return s.reply(REPLIES.localError)
  if (!result.ok) return s.refuse(s.answer(result.reply, REPLIES.localError))
  s.info.auth = result.identity
  s.reply(REPLIES.authOk)
}
