// GET /v1/events (scope read): every event of the org, newest first, with filters.

import { listEvents } from '../../services/events/list.ts'
import { principalOf } from '../plugins/auth.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import { EventItem, EventQuery } from '../schemas/webhooks.ts'
import type { RoutePlugin } from '../types.ts'

export const eventRoutes: RoutePlugin = async (app, deps) => {
  const ctx = deps.services.webhooks
  app.get(
    '/v1/events',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['events'],
        summary: 'Events: outbound lifecycle, inbound mail, domains, security (newest first)',
        description:
          'Filters combine: type (a type, a comma list, or a prefix like `email.*`), email_id, message_id, ' +
          'mailbox_id, recipient, since (inclusive) and until (exclusive). Events are kept for ' +
          '`events.retention_days`. A mailbox-scoped key (or a member) sees only the events of its mailboxes.',
        querystring: EventQuery,
        response: { 200: list(EventItem), ...errorResponses },
      },
    },
    async (req) => listEvents(ctx, principalOf(req), req.query),
  )
}
