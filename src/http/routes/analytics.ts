// Deliverability analytics (scope read, the caller's org; a mailbox key or a member sees only
// the mailboxes it reaches): summary, time series, recent outcomes, and seed 004's debug
// report, all answered by services/analytics from the hourly rollups plus the events not
// folded yet.

import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { deliverabilitySummary, deliverabilityTimeseries } from '../../services/analytics/query.ts'
import { recentOutcomes } from '../../services/analytics/recent.ts'
import { deliverabilityReport } from '../../services/analytics/report.ts'
import { type AnalyticsQuery, DAY_MS, resolveScope } from '../../services/analytics/scope.ts'
import { ServiceError } from '../../services/errors.ts'
import { principalOf } from '../plugins/auth.ts'
import { list } from '../schemas/accounts.ts'
import { AnalyticsFilters, Outcome, OutcomeType, Report, Summary, Timeseries } from '../schemas/analytics.ts'
import { errorResponses } from '../schemas/common.ts'
import type { RoutePlugin } from '../types.ts'

const DEFINITIONS = `
Counts are of events (GET /v1/events), per recipient, over whole UTC hours:
- **sent**: recipients a delivery was started for (\`email.sent\`, one per recipient not suppressed).
- **delivered**: recipients whose server accepted the message (\`email.delivered\`, 2xx).
- **deferred**: temporary failures (\`email.deferred\`, 4xx), one per attempt; the recipient is retried.
- **bounced_hard**: permanent refusals (\`email.bounced\` with \`hard\`: 5xx, or a later DSN); the address is suppressed.
- **bounced_soft**: refusals that are not permanent (\`email.bounced\` without \`hard\`) and recipients given up after only temporary failures (\`email.failed\`, lifetime over). **bounced** is hard plus soft.
- **complained**: spam complaints (ARF feedback, \`email.complained\`).
- **opened**, **clicked**: every open and tracked click (\`email.opened\`, \`email.clicked\`), not unique; those flagged \`bot\` (Apple MPP, link scanners, prefetches) are left out.
- **unsubscribed**: one-click unsubscribes (\`email.unsubscribed\`).
- **suppressed**: recipients skipped because the address is on the suppression list (\`email.suppressed\`).

Rates (null when the denominator is 0, 4 decimals): delivery_rate = delivered / sent; bounce_rate =
bounced / sent (hard_ and soft_bounce_rate alike); deferral_rate = deferred / sent; complaint_rate,
open_rate, click_rate and unsubscribe_rate are over delivered; click_to_open_rate = clicked / opened.

Test-mode traffic (events with \`test: true\`) never counts in live numbers; a test key sees only test
traffic, and other callers see it instead of live with \`test=true\` (counted from the events, never rolled up).

Filters: \`domain\` is the sending domain (one of yours); \`recipient_domain\` the recipient's; \`tag\` a send
tag as \`name:value\`; \`mailbox\` the sending mailbox (a mailbox key or a member sees only the mailboxes it
reaches). Counts cover the events written so far: the hourly rollups plus the events not folded yet.
`.trim()

/**
 * A range or filter the schema cannot express (to before from, a tag without a value) is a bad
 * query string like any other: 400 VALIDATION_FAILED with the field, as the schema's own errors.
 */
function asQueryError(err: unknown): unknown {
  if (!(err instanceof ServiceError) || err.kind !== 'invalid' || err.code === 'INVALID_CURSOR') return err
  return Object.assign(new Error(err.message), {
    statusCode: 400,
    validationContext: 'querystring',
    validation: (err.details ?? []).map((d) => ({
      instancePath: `/${d.field.replace(/^querystring\./, '')}`,
      message: d.message,
      params: {},
    })),
  })
}

export const analyticsRoutes: RoutePlugin = async (app, deps) => {
  const ctx = { store: deps.services.outbound.store, clock: deps.services.outbound.clock }
  const scopeOf = (req: FastifyRequest, q: AnalyticsQuery, step?: number) =>
    resolveScope(ctx.store.db, principalOf(req), q, ctx.clock.now(), step).catch((err) => {
      throw asQueryError(err)
    })
  const tags = ['analytics']
  const Filters = Type.Object(AnalyticsFilters)

  app.get(
    '/v1/analytics/deliverability/summary',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary: 'Deliverability counts and rates over a time range',
        description: DEFINITIONS,
        querystring: Filters,
        response: { 200: Summary, ...errorResponses },
      },
    },
    async (req) => deliverabilitySummary(ctx, await scopeOf(req, req.query)),
  )

  app.get(
    '/v1/analytics/deliverability/timeseries',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary: 'Deliverability counts per hour or day, optionally one series per domain or tag',
        description: `${DEFINITIONS}

\`group_by\`: none (one series), sending_domain, recipient_domain, or tag (one series per \`name:value\`; a
message with two tags is in both). Series are ordered by sent, the first \`limit\` kept. Every bucket from
\`from\` to \`to\` is present (zeros included); at most 1,000 buckets.`,
        querystring: Type.Object({
          ...AnalyticsFilters,
          interval: Type.Optional(
            Type.Union([Type.Literal('hour'), Type.Literal('day')], { default: 'day' }),
          ),
          group_by: Type.Optional(
            Type.Union(
              [
                Type.Literal('none'),
                Type.Literal('sending_domain'),
                Type.Literal('recipient_domain'),
                Type.Literal('tag'),
              ],
              { default: 'none' },
            ),
          ),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, default: 10 })),
        }),
        response: { 200: Timeseries, ...errorResponses },
      },
    },
    async (req) => {
      const interval = req.query.interval ?? 'day'
      const step = interval === 'day' ? DAY_MS : DAY_MS / 24
      const s = await scopeOf(req, req.query, step)
      if ((s.to - s.from) / step > 1000)
        throw asQueryError(
          new ServiceError('invalid', 'RANGE_TOO_LARGE', `At most 1,000 ${interval}s per series.`, {
            details: [{ field: 'querystring.from', message: `the range holds more than 1,000 ${interval}s` }],
          }),
        )
      return deliverabilityTimeseries(ctx, s, {
        interval,
        group_by: req.query.group_by ?? 'none',
        limit: req.query.limit ?? 10,
      })
    },
  )

  app.get(
    '/v1/analytics/deliverability/recent',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary:
          'Latest delivery outcomes (bounces, complaints, deferrals ...) with the remote server’s answer',
        description:
          'Newest first. `type` (repeatable) narrows to delivered, deferred, bounced, failed, complained or suppressed; by default all of them. Same filters as the summary; test-mode events are left out.',
        querystring: Type.Object({
          ...AnalyticsFilters,
          type: Type.Optional(Type.Array(OutcomeType, { maxItems: 6 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
        }),
        response: { 200: list(Outcome), ...errorResponses },
      },
    },
    async (req) => {
      const s = await scopeOf(req, req.query)
      return recentOutcomes(ctx, s, {
        ...(req.query.type ? { types: req.query.type as never } : {}),
        ...(req.query.limit ? { limit: req.query.limit } : {}),
        ...(req.query.cursor ? { cursor: req.query.cursor } : {}),
      })
    },
  )

  app.get(
    '/v1/debug/deliverability/report',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary: 'Deliverability report (seed 004): summary, worst domains, latest problems',
        description: `The summary's counts and rates, the ten recipient and sending domains with most mail, and the
20 latest bounces, complaints, deferrals and failures, over the same filters (default: the last 7 days).

${DEFINITIONS}`,
        querystring: Filters,
        response: { 200: Report, ...errorResponses },
      },
    },
    async (req) => deliverabilityReport(ctx, await scopeOf(req, req.query)),
  )
}
