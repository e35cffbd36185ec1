// The organisation and its people: GET/PATCH/DELETE /v1/org, GET /v1/users,
// POST /v1/users/invite, PATCH /v1/users/{id}. Reading the org needs any signed-in principal;
// changing it needs admin; deleting it needs the owner.

import { Type } from 'typebox'
import {
  getOrg,
  hardDeleteOrg,
  inviteUser,
  listUsers,
  softDeleteOrg,
  updateOrg,
  updateUser,
} from '../../services/accounts/team.ts'
import { principalOf } from '../plugins/auth.ts'
import { list, Org, orgBody, Role, User, userBody } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import type { RoutePlugin } from '../types.ts'

export const orgRoutes: RoutePlugin = async (app, deps) => {
  const { accounts } = deps.services

  app.get(
    '/v1/org',
    {
      config: { auth: 'read' },
      schema: { tags: ['org'], summary: 'Your organisation', response: { 200: Org, ...errorResponses } },
    },
    async (req) => orgBody(await getOrg(accounts, principalOf(req))),
  )

  app.patch(
    '/v1/org',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['org'],
        summary: 'Rename the organisation or merge its settings (null removes a setting)',
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            settings: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
          },
          { additionalProperties: false },
        ),
        response: { 200: Org, ...errorResponses },
      },
    },
    async (req) => orgBody(await updateOrg(accounts, principalOf(req), req.body, req.ip)),
  )

  app.delete(
    '/v1/org',
    {
      config: { auth: 'owner' },
      schema: {
        tags: ['org'],
        summary: 'Delete the organisation: soft (sign-in stops, data kept) or, with hard=true, permanently',
        querystring: Type.Object({ hard: Type.Optional(Type.Boolean()) }),
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      const p = principalOf(req)
      if (req.query.hard) await hardDeleteOrg(accounts, p, req.ip)
      else await softDeleteOrg(accounts, p, req.ip)
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/v1/users',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['users'],
        summary: 'The users of your organisation',
        response: { 200: list(User), ...errorResponses },
      },
    },
    async (req) => ({
      data: (await listUsers(accounts, principalOf(req))).map(userBody),
      next_cursor: null,
    }),
  )

  app.post(
    '/v1/users/invite',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['users'],
        summary: 'Invite a person by email (they claim the invitation with POST /v1/auth/claim)',
        body: Type.Object(
          {
            email: Type.String({ minLength: 3, maxLength: 320 }),
            role: Role,
            name: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: User, ...errorResponses },
      },
    },
    async (req, reply) =>
      reply.code(201).send(userBody(await inviteUser(accounts, principalOf(req), req.body, req.ip))),
  )

  app.patch(
    '/v1/users/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['users'],
        summary: "Change a user's role or disable them (disabling ends their sessions and keys)",
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        body: Type.Object(
          { role: Type.Optional(Role), disabled: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: { 200: User, ...errorResponses },
      },
    },
    async (req) => userBody(await updateUser(accounts, principalOf(req), req.params.id, req.body, req.ip)),
  )
}
