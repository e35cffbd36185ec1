// Drafts: list, create, read, update, delete and send (services/drafts). Scope mailbox: a
// mailbox key reaches its own drafts, a session the mailboxes granted to it, an org-wide
// admin or write key every mailbox of its org; sending also needs the send scope.

import { Type } from 'typebox'
import { deleteDraft, draftView, findDraft, listDrafts } from '../../services/drafts/drafts.ts'
import { createDraft, updateDraft } from '../../services/drafts/save-draft.ts'
import { sendDraft } from '../../services/drafts/send-draft.ts'
import { principalOf } from '../plugins/auth.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import {
  DraftCreateSchema,
  DraftPatchSchema,
  DraftSchema,
  DraftSendResult,
  draftBody,
} from '../schemas/drafts.ts'
import { Cursor, Limit, MailboxParam } from '../schemas/messages.ts'
import type { RoutePlugin } from '../types.ts'
import { attachmentsContext } from './attachments.ts'
import { mailContext } from './messages.ts'

const IdParam = Type.Object({
  id: Type.String({
    minLength: 1,
    maxLength: 100,
    description: 'Draft id (drf_...) or, for a client-stored draft, its message id',
  }),
})

export const draftRoutes: RoutePlugin = async (app, deps) => {
  const ctx = { ...mailContext(deps), attachments: attachmentsContext(deps).attachments }
  const tags = ['drafts']
  // Drafts carry uploads by id, but text and HTML bodies may be large.
  const bodyLimit = deps.config.smtp.max_message_bytes

  app.get(
    '/v1/drafts',
    {
      config: { auth: 'mailbox' },
      schema: {
        tags,
        summary: 'Drafts of a mailbox (its Drafts folder, \\Draft), last saved first',
        querystring: Type.Object({ mailbox: MailboxParam, limit: Limit, cursor: Cursor }),
        response: { 200: list(DraftSchema), ...errorResponses },
      },
    },
    async (req) => {
      const page = await listDrafts(ctx, principalOf(req), req.query)
      return { data: page.data.map(draftBody), next_cursor: page.next_cursor }
    },
  )

  app.post(
    '/v1/drafts',
    {
      bodyLimit,
      config: { auth: 'mailbox' },
      schema: {
        tags,
        summary: 'Save a new draft in the mailbox’s Drafts folder',
        body: DraftCreateSchema,
        response: { 201: DraftSchema, ...errorResponses },
      },
    },
    async (req, reply) => reply.code(201).send(draftBody(await createDraft(ctx, principalOf(req), req.body))),
  )

  app.get(
    '/v1/drafts/:id',
    {
      config: { auth: 'mailbox' },
      schema: {
        tags,
        summary: 'One draft',
        params: IdParam,
        response: { 200: DraftSchema, ...errorResponses },
      },
    },
    async (req) => {
      const p = principalOf(req)
      return draftBody(await draftView(ctx.store.db, p, await findDraft(ctx.store.db, p, req.params.id)))
    },
  )

  app.patch(
    '/v1/drafts/:id',
    {
      bodyLimit,
      config: { auth: 'mailbox' },
      schema: {
        tags,
        summary: 'Change a draft: its message is replaced (IMAP clients see the old one expunged)',
        params: IdParam,
        body: DraftPatchSchema,
        response: { 200: DraftSchema, ...errorResponses },
      },
    },
    async (req) => draftBody(await updateDraft(ctx, principalOf(req), req.params.id, req.body)),
  )

  app.delete(
    '/v1/drafts/:id',
    {
      config: { auth: 'mailbox' },
      schema: {
        tags,
        summary: 'Delete a draft for good',
        params: IdParam,
        response: { 200: Type.Object({ id: Type.String(), deleted: Type.Literal(true) }), ...errorResponses },
      },
    },
    async (req) => deleteDraft(ctx, principalOf(req), req.params.id),
  )

  app.post(
    '/v1/drafts/:id/send',
    {
      config: { auth: 'mailbox' },
      schema: {
        tags,
        summary: 'Send a draft (as POST /v1/emails does); it leaves Drafts and its message lands in Sent',
        description:
          'Needs the send scope too. The From must be the draft’s mailbox or one of its aliases. With the mailbox’s save_sent_copy off, the draft is removed and no Sent copy is kept.',
        params: IdParam,
        response: { 202: DraftSendResult, ...errorResponses },
      },
    },
    async (req, reply) =>
      reply
        .code(202)
        .send(await sendDraft(ctx, deps.services.outbound, principalOf(req), req.params.id, { ip: req.ip })),
  )
}
