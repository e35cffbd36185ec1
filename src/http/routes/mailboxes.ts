// Mailboxes and their grants. Creating, changing and deleting need admin; reading needs the
// mailbox scope and shows only what the caller may see (a mailbox key: its own mailbox).
// {id} takes the mailbox id or its address.

import { Type } from 'typebox'
import {
  createMailbox,
  deleteMailbox,
  getMailbox,
  grantAccess,
  listGrants,
  listMailboxes,
  revokeAccess,
  updateMailbox,
} from '../../services/mailboxes/mailboxes.ts'
import { resetUids } from '../../services/mailboxes/reset-uids.ts'
import { toIso } from '../../time/clock.ts'
import { principalOf } from '../plugins/auth.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import {
  Grant,
  Mailbox,
  MailboxCreate,
  MailboxCreated,
  MailboxPatch,
  mailboxBody,
} from '../schemas/domains.ts'
import type { RoutePlugin } from '../types.ts'

const IdParam = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 330, description: 'Mailbox id or address' }),
})

export const mailboxRoutes: RoutePlugin = async (app, deps) => {
  const ctx = deps.services.domains
  const tags = ['mailboxes']
  const grantsBody = (g: Awaited<ReturnType<typeof listGrants>>) => ({
    data: g.map((x) => ({ ...x, created_at: toIso(x.created_at) })),
    next_cursor: null,
  })

  app.get(
    '/v1/mailboxes',
    {
      config: { auth: 'mailbox' },
      schema: {
        tags,
        summary: 'Mailboxes you can see',
        querystring: Type.Object({ domain: Type.Optional(Type.String({ maxLength: 300 })) }),
        response: { 200: list(Mailbox), ...errorResponses },
      },
    },
    async (req) => ({
      data: (await listMailboxes(ctx, principalOf(req), req.query)).map(mailboxBody),
      next_cursor: null,
    }),
  )

  app.post(
    '/v1/mailboxes',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary:
          'Create a mailbox; returns its IMAP/SMTP password (generated when not given) and a mailbox-scoped API key, each once',
        body: MailboxCreate,
        response: { 201: MailboxCreated, ...errorResponses },
      },
    },
    async (req, reply) => {
      const r = await createMailbox(ctx, principalOf(req), req.body, req.ip)
      return reply
        .code(201)
        .send({ mailbox: mailboxBody(r.mailbox), password: r.password, api_key: r.api_key })
    },
  )

  app.get(
    '/v1/mailboxes/:id',
    {
      config: { auth: 'mailbox' },
      schema: {
        tags,
        summary: 'One mailbox',
        params: IdParam,
        response: { 200: Mailbox, ...errorResponses },
      },
    },
    async (req) => mailboxBody(await getMailbox(ctx, principalOf(req), req.params.id)),
  )

  app.patch(
    '/v1/mailboxes/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Change a mailbox (name, quota, flags, password, owner)',
        params: IdParam,
        body: MailboxPatch,
        response: { 200: Mailbox, ...errorResponses },
      },
    },
    async (req) => mailboxBody(await updateMailbox(ctx, principalOf(req), req.params.id, req.body, req.ip)),
  )

  app.delete(
    '/v1/mailboxes/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Delete a mailbox and its mail',
        params: IdParam,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await deleteMailbox(ctx, principalOf(req), req.params.id, req.ip)
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/v1/mailboxes/:id/grants',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Users granted access to the mailbox',
        params: IdParam,
        response: { 200: list(Grant), ...errorResponses },
      },
    },
    async (req) => grantsBody(await listGrants(ctx, principalOf(req), req.params.id)),
  )

  app.post(
    '/v1/mailboxes/:id/grants',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Grant a user access to the mailbox (team inbox)',
        params: IdParam,
        body: Type.Object({ user_id: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
        response: { 200: list(Grant), ...errorResponses },
      },
    },
    async (req) =>
      grantsBody(await grantAccess(ctx, principalOf(req), req.params.id, req.body.user_id, req.ip)),
  )

  app.delete(
    '/v1/mailboxes/:id/grants/:user_id',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: "Remove a user's access (and their app passwords for it)",
        params: Type.Object({ id: IdParam.properties.id, user_id: Type.String({ maxLength: 100 }) }),
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await revokeAccess(ctx, principalOf(req), req.params.id, req.params.user_id, req.ip)
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/v1/mailboxes/:id/reset-uids',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary:
          'Give every folder of the mailbox a new IMAP UIDVALIDITY and number its messages again from 1 (mail clients resync; open IMAP sessions of the mailbox are closed)',
        params: IdParam,
        response: { 200: UidsReset, ...errorResponses },
      },
    },
    async (req) => resetUids(ctx, principalOf(req), req.params.id, req.ip),
  )
}

const UidsReset = Type.Object({
  mailbox_id: Type.String(),
  folders: Type.Array(
    Type.Object({
      id: Type.String(),
      name: Type.String(),
      uidvalidity: Type.Integer({ description: 'The new UIDVALIDITY' }),
      uidnext: Type.Integer(),
    }),
  ),
})
