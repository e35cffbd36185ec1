// GET /v1/search: the messages of one mailbox matching a query in the language of query.ts,
// newest first, with the parsed query echoed so callers see how it was read. The same query
// works as GET /v1/messages?q=.

import type { Principal } from '../accounts/principal.ts'
import type { MessagesContext } from './context.ts'
import type { Page } from './cursor.ts'
import { listMessages } from './messages.ts'
import { type MailQuery, parseQuery } from './query.ts'
import type { MessageSummary } from './views.ts'

export interface SearchInput {
  q: string
  mailbox?: string
  limit?: number
  cursor?: string
}

export async function searchMessages(
  ctx: MessagesContext,
  p: Principal,
  input: SearchInput,
): Promise<Page<MessageSummary> & { query: MailQuery }> {
  const query = parseQuery(input.q)
  const page = await listMessages(ctx, p, {
    mailbox: input.mailbox,
    q: input.q,
    limit: input.limit,
    cursor: input.cursor,
  })
  return { ...page, query }
}
