// GET /v1/search: messages of one mailbox matching free text and operators (from:, to:,
// subject:, has:attachment, before:, after:, in:, is:unread, is:starred), newest first. The
// language is defined in services/messages/query.ts.

import { Type } from 'typebox'
import { searchMessages } from '../../services/messages/search.ts'
import { principalOf } from '../plugins/auth.ts'
import { errorResponses } from '../schemas/common.ts'
import {
  Cursor,
  Limit,
  MailboxParam,
  MailQuerySchema,
  MessageSummarySchema,
  messageBody,
  queryBody,
} from '../schemas/messages.ts'
import type { RoutePlugin } from '../types.ts'
import { mailContext } from './messages.ts'

export const searchRoutes: RoutePlugin = async (app, deps) => {
  const ctx = mailContext(deps)
  app.get(
    '/v1/search',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['messages'],
        summary: 'Search the messages of a mailbox',
        description:
          'Free words must all match (full text; the last also as a prefix). Operators: from:, to: (To or Cc), subject: (substrings, ignoring case), has:attachment, before:YYYY-MM-DD, after:YYYY-MM-DD (received, UTC; after includes the day), in:<folder id, name or role> (without it Trash and Junk are left out), is:unread, is:read, is:starred, is:unstarred. Quote values with spaces: subject:"quarterly report".',
        querystring: Type.Object({
          q: Type.String({ minLength: 1, maxLength: 1000 }),
          mailbox: MailboxParam,
          limit: Limit,
          cursor: Cursor,
        }),
        response: {
          200: Type.Object({
            data: Type.Array(MessageSummarySchema),
            next_cursor: Type.Union([Type.String(), Type.Null()]),
            query: MailQuerySchema,
          }),
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const r = await searchMessages(ctx, principalOf(req), req.query)
      return { data: r.data.map(messageBody), next_cursor: r.next_cursor, query: queryBody(r.query) }
    },
  )
}
