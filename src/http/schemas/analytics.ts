// Schemas of the deliverability analytics routes (summary, time series, recent outcomes, the
// debug report): counts, rates and the shared query filters.

import { Type } from 'typebox'

const Time = Type.String({ format: 'date-time' })
const Rate = Type.Union([Type.Number(), Type.Null()])
const Str = Type.Union([Type.String(), Type.Null()])

const counterFields = {
  sent: Type.Integer(),
  delivered: Type.Integer(),
  deferred: Type.Integer(),
  bounced_hard: Type.Integer(),
  bounced_soft: Type.Integer(),
  complained: Type.Integer(),
  opened: Type.Integer(),
  clicked: Type.Integer(),
  unsubscribed: Type.Integer(),
  suppressed: Type.Integer(),
}

export const Counts = Type.Object({ ...counterFields, bounced: Type.Integer() })

export const Rates = Type.Object({
  delivery_rate: Rate,
  bounce_rate: Rate,
  hard_bounce_rate: Rate,
  soft_bounce_rate: Rate,
  deferral_rate: Rate,
  complaint_rate: Rate,
  open_rate: Rate,
  click_rate: Rate,
  click_to_open_rate: Rate,
  unsubscribe_rate: Rate,
})

export const AnalyticsFilters = {
  from: Type.Optional(
    Type.String({
      format: 'date-time',
      description: 'Start (rounded down to the hour); default: 7 days before `to`',
    }),
  ),
  to: Type.Optional(
    Type.String({ format: 'date-time', description: 'End (rounded up to the hour); default: now' }),
  ),
  mailbox: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 320,
      description: 'Only sends from this mailbox (id or address)',
    }),
  ),
  domain: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      description: 'Only sends from this domain of yours (id or name)',
    }),
  ),
  recipient_domain: Type.Optional(
    Type.String({ minLength: 1, maxLength: 255, description: 'Only outcomes for recipients at this domain' }),
  ),
  tag: Type.Optional(
    Type.String({
      minLength: 3,
      maxLength: 512,
      description: 'Only sends carrying this tag, as `name:value`',
    }),
  ),
  test: Type.Optional(
    Type.Boolean({
      description: 'Test-mode traffic instead of live (a test key always gets test traffic only)',
    }),
  ),
}

export const Summary = Type.Object({
  object: Type.Literal('deliverability_summary'),
  from: Time,
  to: Time,
  counts: Counts,
  rates: Rates,
})

export const Timeseries = Type.Object({
  object: Type.Literal('deliverability_timeseries'),
  interval: Type.Union([Type.Literal('hour'), Type.Literal('day')]),
  group_by: Type.String(),
  from: Time,
  to: Time,
  series: Type.Array(
    Type.Object({
      group: Str,
      totals: Counts,
      rates: Rates,
      points: Type.Array(Type.Object({ start: Time, ...counterFields })),
    }),
  ),
})

export const OutcomeType = Type.Union(
  ['delivered', 'deferred', 'bounced', 'failed', 'complained', 'suppressed'].map((t) => Type.Literal(t)),
)

export const Outcome = Type.Object({
  id: Type.String(),
  object: Type.Literal('deliverability_outcome'),
  type: Type.String(),
  email_id: Str,
  recipient: Str,
  recipient_domain: Str,
  code: Type.Union([Type.Integer(), Type.Null()]),
  enhanced_code: Str,
  response: Str,
  hard: Type.Union([Type.Boolean(), Type.Null()]),
  source: Str,
  created_at: Time,
})

const DomainLine = Type.Object({ domain: Type.String(), counts: Counts, rates: Rates })

export const Report = Type.Object({
  object: Type.Literal('deliverability_report'),
  from: Time,
  to: Time,
  summary: Type.Object({ counts: Counts, rates: Rates }),
  recipient_domains: Type.Array(DomainLine),
  sending_domains: Type.Array(DomainLine),
  recent_problems: Type.Array(Outcome),
})
