// API keys for programs: GET/POST /v1/api-keys, DELETE /v1/api-keys/{id}. Admin only; the key
// itself appears once, in the creation response.

import { Type } from 'typebox'
import { principalOf } from '../plugins/auth.ts'
import { ApiKey, KeyScope, keyBody, list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import type { RoutePlugin } from '../types.ts'

export const apiKeyRoutes: RoutePlugin = async (app, deps) => {
  const { keys } = deps.services.accounts
  const tags = ['api-keys']

  app.get(
    '/v1/api-keys',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'API keys of your organisation',
        response: { 200: list(ApiKey), ...errorResponses },
      },
    },
    async (req) => ({
      data: (await keys.list(principalOf(req).org_id)).map(keyBody),
      next_cursor: null,
    }),
  )

  app.post(
    '/v1/api-keys',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Create an API key (returned once in `key`)',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 100 }),
            scope: KeyScope,
            mailbox_id: Type.Optional(Type.String({ maxLength: 100 })),
            expires_at: Type.Optional(Type.String({ format: 'date-time' })),
            test: Type.Optional(
              Type.Boolean({
                description:
                  'A test key (pst_test_...): mail sent with it is composed, signed and stored but never sent; outcomes are simulated',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([ApiKey, Type.Object({ key: Type.String() })]), ...errorResponses },
      },
    },
    async (req, reply) => {
      const { expires_at, ...rest } = req.body
      const r = await keys.create(
        principalOf(req),
        { ...rest, expires_at: expires_at ? Date.parse(expires_at) : null },
        req.ip,
      )
      return reply.code(201).send({ ...keyBody(r.view), key: r.key })
    },
  )

  app.delete(
    '/v1/api-keys/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Revoke an API key',
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await keys.revoke(principalOf(req), req.params.id, req.ip)
      return reply.code(204).send(null)
    },
  )
}
