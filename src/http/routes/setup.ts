// First-run setup: GET /v1/setup/status tells whether the installation still needs its first
// owner; POST /v1/setup creates it with the one-time token printed at start (rate limited).

import { Type } from 'typebox'
import { completeSetup } from '../../services/accounts/identity.ts'
import { enforceRateLimit } from '../rate-limit.ts'
import { Email, Password, SignedIn } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import type { RoutePlugin } from '../types.ts'
import { meta, signIn } from './auth.ts'

export const setupRoutes: RoutePlugin = async (app, deps) => {
  const { setup, accounts, limiter, rules } = deps.services
  app.get(
    '/v1/setup/status',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['service'],
        summary: 'Whether first-run setup is still needed',
        response: { 200: Type.Object({ needs_setup: Type.Boolean() }), ...errorResponses },
      },
    },
    async () => ({ needs_setup: await setup.needsSetup() }),
  )

  app.post(
    '/v1/setup',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['service'],
        summary: 'Create the first organisation and its owner with the setup token printed at start',
        body: Type.Object(
          {
            setup_token: Type.String({ minLength: 1, maxLength: 200 }),
            org_name: Type.String({ minLength: 1, maxLength: 200 }),
            email: Email,
            password: Password,
            name: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: SignedIn, ...errorResponses },
      },
    },
    async (req, reply) => {
      await enforceRateLimit(limiter, reply, 'setup attempts', [{ rule: rules.setup, subject: req.ip }])
      const { setup_token, ...input } = req.body
      const r = await completeSetup(accounts, setup, setup_token, input, meta(req))
      return reply.code(201).send(signIn(deps, req, reply, r))
    },
  )
}
