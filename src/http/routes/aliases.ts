// Aliases: read with the read scope, change with admin; a person picks their default
// send-from alias with POST /v1/aliases/{id}/default.

import { Type } from 'typebox'
import {
  createAlias,
  deleteAlias,
  getAlias,
  listAliases,
  setDefaultAlias,
  updateAlias,
} from '../../services/mailboxes/aliases.ts'
import { principalOf } from '../plugins/auth.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import { Alias, AliasCreate, AliasPatch, aliasBody } from '../schemas/domains.ts'
import type { RoutePlugin } from '../types.ts'

const IdParam = Type.Object({ id: Type.String({ maxLength: 100 }) })

export const aliasRoutes: RoutePlugin = async (app, deps) => {
  const ctx = deps.services.domains
  const tags = ['aliases']

  app.get(
    '/v1/aliases',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary: 'Aliases of your organisation',
        querystring: Type.Object({ domain: Type.Optional(Type.String({ maxLength: 300 })) }),
        response: { 200: list(Alias), ...errorResponses },
      },
    },
    async (req) => ({
      data: (await listAliases(ctx, principalOf(req), req.query)).map(aliasBody),
      next_cursor: null,
    }),
  )

  app.post(
    '/v1/aliases',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Create an alias (local@domain, or @domain for a catch-all) delivering to its targets',
        body: AliasCreate,
        response: { 201: Alias, ...errorResponses },
      },
    },
    async (req, reply) =>
      reply.code(201).send(aliasBody(await createAlias(ctx, principalOf(req), req.body, req.ip))),
  )

  app.get(
    '/v1/aliases/:id',
    {
      config: { auth: 'read' },
      schema: { tags, summary: 'One alias', params: IdParam, response: { 200: Alias, ...errorResponses } },
    },
    async (req) => aliasBody(await getAlias(ctx, principalOf(req), req.params.id)),
  )

  app.patch(
    '/v1/aliases/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: "Change an alias's targets or active flag",
        params: IdParam,
        body: AliasPatch,
        response: { 200: Alias, ...errorResponses },
      },
    },
    async (req) => aliasBody(await updateAlias(ctx, principalOf(req), req.params.id, req.body, req.ip)),
  )

  app.delete(
    '/v1/aliases/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Delete an alias',
        params: IdParam,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await deleteAlias(ctx, principalOf(req), req.params.id, req.ip)
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/v1/aliases/:id/default',
    {
      config: { auth: 'user' },
      schema: {
        tags,
        summary: 'Make this alias your default send-from address',
        params: IdParam,
        response: { 200: Alias, ...errorResponses },
      },
    },
    async (req) => aliasBody(await setDefaultAlias(ctx, principalOf(req), req.params.id)),
  )
}
