// Conversations: list, one thread with its messages, an action on every message of a thread
// (read, star, archive, trash, spam, move, labels), the same action on up to 100 threads with
// a result per id, and permanent deletion of a thread that is entirely in Trash.

import { Type } from 'typebox'
import {
  bulkUpdateThreads,
  deleteThread,
  getThread,
  listThreads,
  updateThread,
} from '../../services/messages/threads.ts'
import { principalOf } from '../plugins/auth.ts'
import { toProblem } from '../problem.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import {
  BulkResultSchema,
  BulkSchema,
  Cursor,
  Limit,
  MailboxParam,
  ThreadActionSchema,
  ThreadDetailSchema,
  ThreadSummarySchema,
  threadBody,
  threadDetailBody,
} from '../schemas/messages.ts'
import type { RoutePlugin } from '../types.ts'
import { mailContext } from './messages.ts'

const IdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100, description: 'Thread id' }) })

export const threadRoutes: RoutePlugin = async (app, deps) => {
  const ctx = mailContext(deps)
  const tags = ['threads']

  app.get(
    '/v1/threads',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary: 'Conversations of a mailbox, latest activity first',
        description:
          'A thread is listed when one of its messages is in the folder (without folder: outside Trash and Junk).',
        querystring: Type.Object({
          mailbox: MailboxParam,
          folder: Type.Optional(
            Type.String({ minLength: 1, maxLength: 300, description: 'Folder id, name or role' }),
          ),
          unread: Type.Optional(Type.Boolean()),
          limit: Limit,
          cursor: Cursor,
        }),
        response: { 200: list(ThreadSummarySchema), ...errorResponses },
      },
    },
    async (req) => {
      const page = await listThreads(ctx, principalOf(req), req.query)
      return { data: page.data.map(threadBody), next_cursor: page.next_cursor }
    },
  )

  app.post(
    '/v1/threads/bulk',
    {
      config: { auth: 'write' },
      schema: {
        tags,
        summary: 'The same action on up to 100 threads; each succeeds or fails on its own',
        body: BulkSchema,
        response: { 200: BulkResultSchema, ...errorResponses },
      },
    },
    async (req) => {
      const results = await bulkUpdateThreads(ctx, principalOf(req), req.body.ids, req.body.action)
      return {
        results: results.map((r) => {
          if (r.ok) return { id: r.id, ok: true, status: 200 }
          const p = toProblem(r.error, req)
          return { id: r.id, ok: false, status: p.status, code: p.code, detail: p.detail }
        }),
      }
    },
  )

  app.get(
    '/v1/threads/:id',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary: 'One thread with all its messages',
        params: IdParam,
        querystring: Type.Object({
          bodies: Type.Optional(
            Type.Boolean({
              description: 'Also parse the latest 50 messages (text, html, headers, attachments)',
            }),
          ),
        }),
        response: { 200: ThreadDetailSchema, ...errorResponses },
      },
    },
    async (req) =>
      threadDetailBody(await getThread(ctx, principalOf(req), req.params.id, { bodies: req.query.bodies })),
  )

  app.patch(
    '/v1/threads/:id',
    {
      config: { auth: 'write' },
      schema: {
        tags,
        summary: 'Apply an action to every message of a thread',
        params: IdParam,
        body: ThreadActionSchema,
        response: { 200: ThreadSummarySchema, ...errorResponses },
      },
    },
    async (req) => threadBody(await updateThread(ctx, principalOf(req), req.params.id, req.body)),
  )

  app.delete(
    '/v1/threads/:id',
    {
      config: { auth: 'write' },
      schema: {
        tags,
        summary: 'Delete a thread for good; every message must be only in Trash (else 409)',
        params: IdParam,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await deleteThread(ctx, principalOf(req), req.params.id)
      return reply.code(204).send(null)
    },
  )
}
