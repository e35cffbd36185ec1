// The signed-in person's own account: profile, password, preferences, sessions, two-factor
// login and app passwords. Scope `user`: a session, never an API key.

import { Type } from 'typebox'
import { resendVerification } from '../../services/accounts/identity.ts'
import {
  changePassword,
  getMe,
  getPreferences,
  patchPreferences,
  updateMe,
} from '../../services/accounts/profile.ts'
import {
  confirmTotp,
  createAppPassword,
  disableTotp,
  enrolTotp,
  listAppPasswords,
  revokeAppPassword,
  totpStatus,
} from '../../services/accounts/two-factor.ts'
import { ServiceError } from '../../services/errors.ts'
import { principalOf } from '../plugins/auth.ts'
import {
  AppPassword,
  appPasswordBody,
  list,
  Me,
  Password,
  Session,
  sessionBody,
  userBody,
} from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import type { RoutePlugin } from '../types.ts'

const Id = Type.Object({ id: Type.String({ maxLength: 100 }) })
const Prefs = Type.Record(Type.String(), Type.Unknown())

export const meRoutes: RoutePlugin = async (app, deps) => {
  const { accounts } = deps.services
  const tags = ['me']
  const user = { auth: 'user' as const }

  // RFC 7396 bodies arrive as application/merge-patch+json.
  app.addContentTypeParser('application/merge-patch+json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string))
    } catch (err) {
      ;(err as { statusCode?: number }).statusCode = 400
      done(err as Error, undefined)
    }
  })

  app.get(
    '/v1/me',
    { config: user, schema: { tags, summary: 'Your profile', response: { 200: Me, ...errorResponses } } },
    async (req) => {
      const me = await getMe(accounts, principalOf(req))
      return { ...userBody(me), org_name: me.org_name }
    },
  )

  app.patch(
    '/v1/me',
    {
      config: user,
      schema: {
        tags,
        summary: 'Update your profile',
        body: Type.Object(
          { name: Type.Optional(Type.String({ maxLength: 200 })) },
          { additionalProperties: false },
        ),
        response: { 200: Me, ...errorResponses },
      },
    },
    async (req) => {
      const me = await updateMe(accounts, principalOf(req), req.body)
      return { ...userBody(me), org_name: me.org_name }
    },
  )

  app.patch(
    '/v1/me/password',
    {
      config: user,
      schema: {
        tags,
        summary: 'Change your password; ends your other sessions',
        body: Type.Object(
          { current_password: Password, new_password: Password },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ sessions_ended: Type.Integer() }), ...errorResponses },
      },
    },
    async (req) => changePassword(accounts, principalOf(req), req.body, req.ip),
  )

  app.post(
    '/v1/me/verify-email/resend',
    {
      config: user,
      schema: {
        tags,
        summary: 'Mail a new email verification code',
        response: { 202: Type.Object({ status: Type.Literal('accepted') }), ...errorResponses },
      },
    },
    async (req, reply) => {
      await resendVerification(accounts, principalOf(req).user_id as string)
      return reply.code(202).send({ status: 'accepted' as const })
    },
  )

  app.get(
    '/v1/me/preferences',
    {
      config: user,
      schema: { tags, summary: 'Your preferences', response: { 200: Prefs, ...errorResponses } },
    },
    async (req) => getPreferences(accounts, principalOf(req)),
  )

  app.patch(
    '/v1/me/preferences',
    {
      config: user,
      schema: {
        tags,
        summary: 'Merge-patch your preferences (RFC 7396: null removes a key)',
        body: Prefs,
        response: { 200: Prefs, ...errorResponses },
      },
    },
    async (req) => patchPreferences(accounts, principalOf(req), req.body),
  )

  app.get(
    '/v1/me/sessions',
    {
      config: user,
      schema: { tags, summary: 'Your active sessions', response: { 200: list(Session), ...errorResponses } },
    },
    async (req) => {
      const p = principalOf(req)
      const sessions = await accounts.sessions.list(p.user_id as string)
      return { data: sessions.map((s) => sessionBody(s, p.session_id)), next_cursor: null }
    },
  )

  app.delete(
    '/v1/me/sessions/:id',
    {
      config: user,
      schema: {
        tags,
        summary: 'End one of your sessions',
        params: Id,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      const p = principalOf(req)
      if (!(await accounts.sessions.revoke(p.user_id as string, req.params.id)))
        throw new ServiceError(
          'not_found',
          'SESSION_NOT_FOUND',
          `No active session ${req.params.id} of yours.`,
        )
      return reply.code(204).send(null)
    },
  )

  const TotpStatus = Type.Object({
    enabled: Type.Boolean(),
    pending: Type.Boolean(),
    recovery_codes_left: Type.Integer(),
  })
  app.get(
    '/v1/me/totp',
    {
      config: user,
      schema: { tags, summary: 'Two-factor login status', response: { 200: TotpStatus, ...errorResponses } },
    },
    async (req) => totpStatus(accounts, principalOf(req).user_id as string),
  )

  app.post(
    '/v1/me/totp',
    {
      config: user,
      schema: {
        tags,
        summary: 'Start two-factor enrolment: a secret and otpauth URI for an authenticator app (shown once)',
        response: {
          201: Type.Object({ secret: Type.String(), otpauth_uri: Type.String() }),
          ...errorResponses,
        },
      },
    },
    async (req, reply) => reply.code(201).send(await enrolTotp(accounts, principalOf(req))),
  )

  app.post(
    '/v1/me/totp/confirm',
    {
      config: user,
      schema: {
        tags,
        summary:
          'Confirm enrolment with a current code; turns two-factor on and returns recovery codes (shown once)',
        body: Type.Object(
          { code: Type.String({ minLength: 1, maxLength: 16 }) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ recovery_codes: Type.Array(Type.String()) }), ...errorResponses },
      },
    },
    async (req) => confirmTotp(accounts, principalOf(req), req.body.code, req.ip),
  )

  app.delete(
    '/v1/me/totp',
    {
      config: user,
      schema: {
        tags,
        summary: 'Turn two-factor login off (needs your password and a current or recovery code)',
        body: Type.Object(
          { password: Password, code: Type.Optional(Type.String({ maxLength: 64 })) },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await disableTotp(accounts, principalOf(req), req.body, req.ip)
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/v1/me/app-passwords',
    {
      config: user,
      schema: {
        tags,
        summary: 'Your app passwords (for IMAP and SMTP clients)',
        response: { 200: list(AppPassword), ...errorResponses },
      },
    },
    async (req) => ({
      data: (await listAppPasswords(accounts, principalOf(req))).map(appPasswordBody),
      next_cursor: null,
    }),
  )

  app.post(
    '/v1/me/app-passwords',
    {
      config: user,
      schema: {
        tags,
        summary: 'Create an app password for one mailbox you can access (shown once)',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 100 }),
            mailbox_id: Type.String({ maxLength: 100 }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Intersect([AppPassword, Type.Object({ password: Type.String() })]),
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const r = await createAppPassword(accounts, principalOf(req), req.body, req.ip)
      return reply.code(201).send({ ...appPasswordBody(r.view), password: r.password })
    },
  )

  app.delete(
    '/v1/me/app-passwords/:id',
    {
      config: user,
      schema: {
        tags,
        summary: 'Revoke an app password',
        params: Id,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await revokeAppPassword(accounts, principalOf(req), req.params.id, req.ip)
      return reply.code(204).send(null)
    },
  )
}
