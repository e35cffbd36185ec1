// Stored messages: list (filters, search, cursor pages), one message parsed, the raw bytes and
// one attachment as downloads, changes (flags, keywords, folders, labels) and deletion (to
// Trash; from Trash, for good). Reads need scope read, changes scope write; either way only
// the mailboxes the caller reaches (services/messages/access.ts).
// Downloads are served as attachments with nosniff and a sandboxing CSP, so mail content never
// runs as this origin's page.

import type { FastifyReply } from 'fastify'
import { Type } from 'typebox'
import type { MessagesContext } from '../../services/messages/context.ts'
import {
  type Download,
  deleteMessage,
  getMessage,
  listMessages,
  messageAttachment,
  rawMessage,
  updateMessage,
} from '../../services/messages/messages.ts'
import { principalOf } from '../plugins/auth.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import {
  Cursor,
  DeleteResultSchema,
  Limit,
  MailboxParam,
  MessageDetailSchema,
  MessagePatchSchema,
  MessageSummarySchema,
  messageBody,
} from '../schemas/messages.ts'
import type { AppDeps, RoutePlugin } from '../types.ts'

/** The context of the mail-reading services, from the app's services. */
export const mailContext = (deps: AppDeps): MessagesContext => ({
  store: deps.services.domains.store,
  clock: deps.services.domains.clock,
  bus: deps.services.domains.bus,
  blobs: deps.services.blobs,
})

const IdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100, description: 'Message id' }) })

/** RFC 6266 / RFC 8187: an ASCII fallback and the UTF-8 name. */
export function contentDisposition(filename: string): string {
  const clean =
    filename
      .toWellFormed()
      .replace(/[\p{Cc}\p{Cf}"\\/]/gu, '_')
      .trim()
      .slice(0, 200) || 'download'
  const ascii = clean.replace(/[^\x20-\x7e]/g, '_')
  const utf8 = encodeURIComponent(clean).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  )
  return `attachment; filename="${ascii}"; filename*=UTF-8''${utf8}`
}

const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i

export function sendDownload(reply: FastifyReply, d: Download): FastifyReply {
  return reply
    .header('content-disposition', contentDisposition(d.filename))
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', 'sandbox')
    .header('cache-control', 'private, no-store')
    .type(MEDIA_TYPE.test(d.content_type) ? d.content_type.toLowerCase() : 'application/octet-stream')
    .send(d.bytes)
}

export const messageRoutes: RoutePlugin = async (app, deps) => {
  const ctx = mailContext(deps)
  const tags = ['messages']

  app.get(
    '/v1/messages',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary: 'Messages of a mailbox, newest first',
        description:
          'Without folder (or an in: term in q) messages in Trash and Junk are left out. q takes the language of GET /v1/search.',
        querystring: Type.Object({
          mailbox: MailboxParam,
          folder: Type.Optional(
            Type.String({ minLength: 1, maxLength: 300, description: 'Folder id, name or role' }),
          ),
          thread: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
          unread: Type.Optional(Type.Boolean()),
          q: Type.Optional(Type.String({ maxLength: 1000 })),
          limit: Limit,
          cursor: Cursor,
        }),
        response: { 200: list(MessageSummarySchema), ...errorResponses },
      },
    },
    async (req) => {
      const page = await listMessages(ctx, principalOf(req), req.query)
      return { data: page.data.map(messageBody), next_cursor: page.next_cursor }
    },
  )

  app.get(
    '/v1/messages/:id',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary: 'One message, parsed: headers, text and HTML bodies, attachments, folders, flags',
        params: IdParam,
        response: { 200: MessageDetailSchema, ...errorResponses },
      },
    },
    async (req) => messageBody(await getMessage(ctx, principalOf(req), req.params.id)),
  )

  app.get(
    '/v1/messages/:id/raw',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary: 'The message as received (message/rfc822), as a download',
        params: IdParam,
        response: { ...errorResponses },
      },
    },
    async (req, reply) => sendDownload(reply, await rawMessage(ctx, principalOf(req), req.params.id)),
  )

  app.get(
    '/v1/messages/:id/attachments/:n',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary: "The n-th attachment's bytes (n as in the message's attachments list), as a download",
        params: Type.Object({
          id: IdParam.properties.id,
          n: Type.Integer({ minimum: 0, maximum: 10_000 }),
        }),
        response: { ...errorResponses },
      },
    },
    async (req, reply) =>
      sendDownload(reply, await messageAttachment(ctx, principalOf(req), req.params.id, req.params.n)),
  )

  app.patch(
    '/v1/messages/:id',
    {
      config: { auth: 'write' },
      schema: {
        tags,
        summary: 'Change flags, keywords, folders or labels of a message',
        params: IdParam,
        body: MessagePatchSchema,
        response: { 200: MessageSummarySchema, ...errorResponses },
      },
    },
    async (req) => messageBody(await updateMessage(ctx, principalOf(req), req.params.id, req.body)),
  )

  app.delete(
    '/v1/messages/:id',
    {
      config: { auth: 'write' },
      schema: {
        tags,
        summary: 'Move a message to Trash; a message already only in Trash is deleted for good',
        params: IdParam,
        response: { 200: DeleteResultSchema, ...errorResponses },
      },
    },
    async (req) => deleteMessage(ctx, principalOf(req), req.params.id),
  )
}
