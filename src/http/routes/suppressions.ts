// The org's suppression list (scope admin): list, add, release.

import { Type } from 'typebox'
import { addSuppression, listSuppressions, releaseSuppression } from '../../services/outbound/suppressions.ts'
import { principalOf } from '../plugins/auth.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import { Suppression, SuppressionCreate } from '../schemas/outbound.ts'
import type { RoutePlugin } from '../types.ts'

export const suppressionRoutes: RoutePlugin = async (app, deps) => {
  const ctx = deps.services.outbound
  const tags = ['suppressions']

  app.get(
    '/v1/suppressions',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Addresses mail is not sent to (hard bounces, complaints, unsubscribes, manual)',
        querystring: Type.Object({
          address: Type.Optional(Type.String({ maxLength: 320 })),
          reason: Type.Optional(
            Type.Union([
              Type.Literal('hard_bounce'),
              Type.Literal('complaint'),
              Type.Literal('manual'),
              Type.Literal('unsubscribe'),
            ]),
          ),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
        }),
        response: { 200: list(Suppression), ...errorResponses },
      },
    },
    async (req) => listSuppressions(ctx, principalOf(req), req.query),
  )

  app.post(
    '/v1/suppressions',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Suppress an address',
        body: SuppressionCreate,
        response: { 201: Suppression, ...errorResponses },
      },
    },
    async (req, reply) => reply.code(201).send(await addSuppression(ctx, principalOf(req), req.body)),
  )

  app.delete(
    '/v1/suppressions/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Release a suppression (by id or address) so mail is sent to the address again',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 320 }) }),
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await releaseSuppression(ctx, principalOf(req), req.params.id)
      return reply.code(204).send(null)
    },
  )
}
