// Public account flows: sign-up, log-in, log-out, email verification, forgotten and reset
// passwords, and claiming an invitation. Each is rate limited (config rate_limits.*) and
// answers with X-RateLimit-* headers; failures never reveal whether an account exists.

import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { canonicalEmail } from '../../services/accounts/context.ts'
import {
  claimInvite,
  forgotPassword,
  login,
  resetPassword,
  type SignedIn as SignedInResult,
  signup,
  verifyEmail,
} from '../../services/accounts/identity.ts'
import { SESSION_COOKIE } from '../../services/accounts/sessions.ts'
import { clearSessionCookie, readCookie, setSessionCookie } from '../cookies.ts'
import { enforceRateLimit } from '../rate-limit.ts'
import { Email, Password, SignedIn, User, userBody } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import type { AppDeps, RoutePlugin } from '../types.ts'

export const meta = (req: FastifyRequest) => ({
  ip: req.ip ?? null,
  userAgent: (req.headers['user-agent'] as string | undefined) ?? null,
})

export function signIn(deps: AppDeps, req: FastifyRequest, reply: FastifyReply, r: SignedInResult) {
  setSessionCookie(req, reply, SESSION_COOKIE, r.token, deps.services.accounts.sessions.ttlMs, {
    secure: deps.config.auth.secure_cookies,
  })
  return { user: userBody(r.user), org: r.org }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export const authRoutes: RoutePlugin = async (app, deps) => {
  const { accounts, limiter, rules } = deps.services
  const tags = ['auth']

  app.post(
    '/v1/auth/signup',
    {
      config: { auth: 'public' },
      schema: {
        tags,
        summary: 'Create an account and a new organisation (when sign-up is open)',
        body: Type.Object(
          {
            email: Email,
            password: Password,
            name: Type.Optional(Type.String({ maxLength: 200 })),
            org_name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: SignedIn, ...errorResponses },
      },
    },
    async (req, reply) => {
      await enforceRateLimit(limiter, reply, 'sign-ups from this address', [
        { rule: rules.signup, subject: req.ip },
      ])
      const r = await signup(accounts, req.body, meta(req))
      return reply.code(201).send(signIn(deps, req, reply, r))
    },
  )

  app.post(
    '/v1/auth/login',
    {
      config: { auth: 'public' },
      schema: {
        tags,
        summary:
          'Sign in with email and password (and a two-factor code when enabled); sets the session cookie',
        body: Type.Object(
          {
            email: Email,
            password: Password,
            totp_code: Type.Optional(Type.String({ maxLength: 16 })),
            recovery_code: Type.Optional(Type.String({ maxLength: 64 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: SignedIn, ...errorResponses },
      },
    },
    async (req, reply) => {
      await enforceRateLimit(limiter, reply, 'log-in attempts', [
        { rule: rules.login_ip, subject: req.ip },
        { rule: rules.login_email, subject: canonicalEmail(req.body.email) },
      ])
      const r = await login(accounts, req.body, meta(req), sleep)
      return signIn(deps, req, reply, r)
    },
  )

  app.post(
    '/v1/auth/logout',
    {
      config: { auth: 'public' },
      schema: {
        tags,
        summary: 'End the current session and clear the cookie',
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      const token = readCookie(req, SESSION_COOKIE)
      if (token) {
        const p = await accounts.sessions.authenticate(token)
        if (p?.session_id) await accounts.sessions.revoke(p.user_id as string, p.session_id)
      }
      clearSessionCookie(req, reply, SESSION_COOKIE, { secure: deps.config.auth.secure_cookies })
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/v1/auth/verify-email',
    {
      config: { auth: 'public' },
      schema: {
        tags,
        summary: 'Verify an email address with the 6-digit code mailed to it',
        body: Type.Object(
          { email: Email, code: Type.String({ minLength: 1, maxLength: 16 }) },
          { additionalProperties: false },
        ),
        response: { 200: User, ...errorResponses },
      },
    },
    async (req, reply) => {
      await enforceRateLimit(limiter, reply, 'verification attempts', [
        { rule: rules.verify_email, subject: req.ip },
      ])
      return userBody(await verifyEmail(accounts, req.body))
    },
  )

  app.post(
    '/v1/auth/forgot-password',
    {
      config: { auth: 'public' },
      schema: {
        tags,
        summary: 'Mail a password-reset link; always 202, whether or not the account exists',
        body: Type.Object({ email: Email }, { additionalProperties: false }),
        response: { 202: Type.Object({ status: Type.Literal('accepted') }), ...errorResponses },
      },
    },
    async (req, reply) => {
      await enforceRateLimit(limiter, reply, 'password-reset requests', [
        { rule: rules.forgot_ip, subject: req.ip },
        { rule: rules.forgot_email, subject: canonicalEmail(req.body.email) },
      ])
      await forgotPassword(accounts, req.body.email, meta(req))
      return reply.code(202).send({ status: 'accepted' as const })
    },
  )

  app.post(
    '/v1/auth/reset-password',
    {
      config: { auth: 'public' },
      schema: {
        tags,
        summary: 'Set a new password with a reset token (single use); ends every session of the account',
        body: Type.Object(
          { token: Type.String({ minLength: 1, maxLength: 200 }), password: Password },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await enforceRateLimit(limiter, reply, 'password-reset attempts', [
        { rule: rules.verify_email, subject: req.ip },
      ])
      await resetPassword(accounts, req.body, meta(req))
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/v1/auth/claim',
    {
      config: { auth: 'public' },
      schema: {
        tags,
        summary: 'Claim an invitation: choose a password and sign in',
        body: Type.Object(
          {
            token: Type.String({ minLength: 1, maxLength: 200 }),
            password: Password,
            name: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: SignedIn, ...errorResponses },
      },
    },
    async (req, reply) => {
      await enforceRateLimit(limiter, reply, 'invitation claims', [
        { rule: rules.verify_email, subject: req.ip },
      ])
      return signIn(deps, req, reply, await claimInvite(accounts, req.body, meta(req)))
    },
  )
}
