// Schemas of the events API and webhooks. Service views already carry ISO 8601 times, so
// bodies are the views as they are.

import { Type } from 'typebox'

const StrOrNull = Type.Union([Type.Null(), Type.String()])
const Time = Type.String({ format: 'date-time' })
const TimeOrNull = Type.Union([Type.Null(), Time])
const IntOrNull = Type.Union([Type.Null(), Type.Integer()])
const Obj = Type.Object({}, { additionalProperties: true })

export const EventItem = Type.Object({
  id: Type.String(),
  type: Type.String({ description: 'One of the event types (docs/events.md)' }),
  created_at: Time,
  actor: StrOrNull,
  ip: StrOrNull,
  subject_id: StrOrNull,
  mailbox_id: StrOrNull,
  recipient: StrOrNull,
  data: Obj,
})

export const EventQuery = Type.Object({
  type: Type.Optional(
    Type.String({
      maxLength: 2000,
      description: 'An event type, a comma list of types, or a prefix like email.*',
    }),
  ),
  email_id: Type.Optional(Type.String({ maxLength: 100, description: 'An outbound email (eml_...)' })),
  message_id: Type.Optional(Type.String({ maxLength: 100, description: 'A stored message (msg_...)' })),
  mailbox_id: Type.Optional(Type.String({ maxLength: 100 })),
  recipient: Type.Optional(Type.String({ maxLength: 320 })),
  since: Type.Optional(Type.String({ maxLength: 40, description: 'ISO 8601 time, inclusive' })),
  until: Type.Optional(Type.String({ maxLength: 40, description: 'ISO 8601 time, exclusive' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
})

const EventTypes = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
  maxItems: 100,
  description: 'Event types or prefixes (email.*) this endpoint receives; empty or absent: every type',
})

export const Webhook = Type.Object({
  id: Type.String(),
  url: Type.String(),
  description: Type.String(),
  event_types: Type.Array(Type.String()),
  status: Type.Union([Type.Literal('pending'), Type.Literal('active'), Type.Literal('disabled')]),
  verified_at: TimeOrNull,
  old_secret_until: TimeOrNull,
  failing_since: TimeOrNull,
  consecutive_failures: Type.Integer(),
  disabled_at: TimeOrNull,
  disabled_reason: StrOrNull,
  created_at: Time,
  updated_at: Time,
})

export const Verification = Type.Object({
  ok: Type.Boolean(),
  status_code: IntOrNull,
  error: StrOrNull,
})

export const WebhookCreate = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2000, description: 'http or https URL of the receiver' }),
    event_types: Type.Optional(EventTypes),
    description: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
)

export const WebhookUpdate = Type.Object(
  {
    url: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    event_types: Type.Optional(EventTypes),
    description: Type.Optional(Type.String({ maxLength: 500 })),
    enabled: Type.Optional(
      Type.Boolean({
        description: 'false disables the endpoint; true re-enables it (it answers a new challenge first)',
      }),
    ),
  },
  { additionalProperties: false },
)

export const WebhookCreated = Type.Object({
  webhook: Webhook,
  secret: Type.String({ description: 'whsec_...: shown once' }),
  verification: Verification,
})

export const WebhookVerified = Type.Object({ webhook: Webhook, verification: Verification })

export const WebhookUpdated = Type.Object({
  webhook: Webhook,
  verification: Type.Union([Type.Null(), Verification]),
})

export const SecretRotated = Type.Object({
  webhook: Webhook,
  secret: Type.String({ description: 'The new whsec_... secret: shown once' }),
})

export const VerifyBody = Type.Object(
  {
    challenge: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'The challenge the receiver was sent' }),
    ),
  },
  { additionalProperties: false },
)

export const Delivery = Type.Object({
  id: Type.String({ description: 'Also the webhook-id header of every attempt' }),
  webhook_id: Type.String(),
  event_id: StrOrNull,
  event_type: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed')]),
  attempts: Type.Integer(),
  next_attempt_at: TimeOrNull,
  last_status_code: IntOrNull,
  last_error: StrOrNull,
  delivered_at: TimeOrNull,
  created_at: Time,
  log: Type.Array(
    Type.Object({
      attempt: Type.Integer(),
      at: Time,
      status_code: IntOrNull,
      latency_ms: Type.Integer(),
      response_excerpt: Type.String({ description: 'At most 1 KB of the response body' }),
      error: StrOrNull,
    }),
  ),
})
