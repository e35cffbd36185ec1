// Warm-up ramps of sender addresses (scope admin): GET/POST /v1/alias-warmups, GET/PATCH/DELETE
// /v1/alias-warmups/{id} (id or token), and POST /v1/aliases/{id}/warmup-token, which gives an
// alias's ramp a new token (making one on the default curve when the alias has none).

import { Type } from 'typebox'
import {
  createWarmup,
  deleteWarmup,
  getWarmup,
  issueAliasWarmupToken,
  listWarmups,
  updateWarmup,
} from '../../services/warmup/warmups.ts'
import { principalOf } from '../plugins/auth.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import { Warmup, WarmupCreate, WarmupUpdate } from '../schemas/warmup.ts'
import type { RoutePlugin } from '../types.ts'

const IdParam = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100, description: 'Ramp id (wup_...) or token (wmt_...)' }),
})

export const warmupRoutes: RoutePlugin = async (app, deps) => {
  const ctx = deps.services.outbound
  const tags = ['warm-up']

  app.get(
    '/v1/alias-warmups',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Warm-up ramps of sender addresses, newest first, with where each stands today',
        querystring: Type.Object({
          address: Type.Optional(Type.String({ maxLength: 320 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
        }),
        response: { 200: list(Warmup), ...errorResponses },
      },
    },
    async (req) => listWarmups(ctx, principalOf(req), req.query),
  )

  app.post(
    '/v1/alias-warmups',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary:
          'Start a warm-up ramp for a sender address (or alias): daily caps growing over N days, the default curve or your own list',
        body: WarmupCreate,
        response: { 201: Warmup, ...errorResponses },
      },
    },
    async (req, reply) => reply.code(201).send(await createWarmup(ctx, principalOf(req), req.body, req.ip)),
  )

  app.get(
    '/v1/alias-warmups/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'One ramp: day n of N, today’s cap, used today, when the day resets',
        params: IdParam,
        response: { 200: Warmup, ...errorResponses },
      },
    },
    async (req) => getWarmup(ctx, principalOf(req), req.params.id),
  )

  app.patch(
    '/v1/alias-warmups/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Change a ramp’s schedule (a list or curve parameters) or restart it at day 1',
        params: IdParam,
        body: WarmupUpdate,
        response: { 200: Warmup, ...errorResponses },
      },
    },
    async (req) => updateWarmup(ctx, principalOf(req), req.params.id, req.body, req.ip),
  )

  app.delete(
    '/v1/alias-warmups/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Delete a ramp; the address sends without its caps (mail it held is released)',
        params: IdParam,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await deleteWarmup(ctx, principalOf(req), req.params.id, req.ip)
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/v1/aliases/:id/warmup-token',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary:
          'Issue a new warm-up token for an alias’s ramp (201 with a new ramp on the default curve when it had none)',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100, description: 'Alias id' }) }),
        response: { 200: Warmup, 201: Warmup, ...errorResponses },
      },
    },
    async (req, reply) => {
      const r = await issueAliasWarmupToken(ctx, principalOf(req), req.params.id, req.ip)
      return reply.code(r.created ? 201 : 200).send(r.view)
    },
  )
}
