// Schemas of the sending API (emails, batch, validate, trace), the queue and suppressions.
// Service views already carry ISO 8601 times, so bodies are the views as they are.

import { Type } from 'typebox'

const Str = Type.String()
const StrOrNull = Type.Union([Type.Null(), Type.String()])
const Time = Type.String({ format: 'date-time' })
const TimeOrNull = Type.Union([Type.Null(), Time])
const Obj = Type.Object({}, { additionalProperties: true })
const Int = Type.Integer()
const IntOrNull = Type.Union([Type.Null(), Type.Integer()])

const AddressList = Type.Union([
  Type.String({ maxLength: 1000 }),
  Type.Array(Type.String({ maxLength: 1000 }), { maxItems: 1000 }),
])

export const SendBody = Type.Object(
  {
    from: Type.String({
      minLength: 3,
      maxLength: 1000,
      description: 'a@example.com or "Name <a@example.com>"',
    }),
    to: AddressList,
    cc: Type.Optional(AddressList),
    bcc: Type.Optional(AddressList),
    reply_to: Type.Optional(AddressList),
    subject: Type.String({ maxLength: 998 }),
    text: Type.Optional(Type.String()),
    html: Type.Optional(Type.String()),
    attachments: Type.Optional(
      Type.Array(
        Type.Union([
          Type.Object(
            {
              filename: Type.String({ minLength: 1, maxLength: 255 }),
              content: Type.String({ description: 'base64' }),
              content_type: Type.Optional(Type.String({ maxLength: 255 })),
              content_id: Type.Optional(
                Type.String({ maxLength: 255, description: 'For inline images: cid:<content_id>' }),
              ),
            },
            { additionalProperties: false },
          ),
          Type.Object(
            {
              id: Type.String({
                minLength: 1,
                maxLength: 100,
                description: 'An upload from POST /v1/attachments (att_...); its filename and type are used',
              }),
              content_id: Type.Optional(
                Type.String({ maxLength: 255, description: 'For inline images: cid:<content_id>' }),
              ),
            },
            { additionalProperties: false },
          ),
        ]),
        { maxItems: 100 },
      ),
    ),
    headers: Type.Optional(Type.Record(Type.String({ maxLength: 76 }), Type.String({ maxLength: 998 }))),
    tags: Type.Optional(
      Type.Union([
        Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 256 })),
        Type.Array(
          Type.Object({ name: Type.String({ maxLength: 64 }), value: Type.String({ maxLength: 256 }) }),
          {
            maxItems: 20,
          },
        ),
      ]),
    ),
    scheduled_at: Type.Optional(
      Type.String({ format: 'date-time', description: 'Send later (at most 30 days ahead)' }),
    ),
    track_opens: Type.Optional(
      Type.Boolean({ description: 'Add an open pixel to the HTML; opens become email.opened events' }),
    ),
    track_clicks: Type.Optional(
      Type.Boolean({
        description:
          "Route the HTML's http(s) links through click redirects; clicks become email.clicked events",
      }),
    ),
    list_unsubscribe: Type.Optional(
      Type.Boolean({
        description:
          'Add List-Unsubscribe with one-click POST (RFC 8058); the link suppresses the recipient. Needs exactly one recipient.',
      }),
    ),
    require_tls: Type.Optional(
      Type.Boolean({
        description:
          'REQUIRETLS (RFC 8689): deliver only over TLS with a verified certificate to next hops that offer REQUIRETLS (which keep the requirement); bounced with 5.7.30 when no MX host qualifies. A TLS-Required: No header is then ignored.',
      }),
    ),
  },
  { additionalProperties: false },
)

export const SendResult = Type.Object({
  id: Str,
  status: Type.Union([Type.Literal('queued'), Type.Literal('scheduled'), Type.Literal('failed')]),
  suppressed: Type.Array(Str, { description: 'Recipients skipped because they are on the suppression list' }),
})

export const BatchResult = Type.Object({ data: Type.Array(SendResult) })

export const Recipient = Type.Object({
  address: Str,
  type: Type.Union([Type.Literal('to'), Type.Literal('cc'), Type.Literal('bcc')]),
  state: Str,
  attempts: Int,
  last_code: IntOrNull,
  last_enhanced_code: StrOrNull,
  last_response: StrOrNull,
  remote_mta: StrOrNull,
  delivered_at: TimeOrNull,
  next_attempt_at: TimeOrNull,
})

const summaryFields = {
  id: Str,
  object: Type.Literal('email'),
  from: Str,
  to: Type.Array(Str),
  cc: Type.Array(Str),
  bcc: Type.Array(Str),
  reply_to: Type.Array(Str),
  subject: Str,
  status: Str,
  origin: Str,
  tags: Type.Record(Type.String(), Type.String()),
  message_id: StrOrNull,
  size: Int,
  attempts: Int,
  held_reason: StrOrNull,
  created_at: Time,
  scheduled_at: TimeOrNull,
  first_attempt_at: TimeOrNull,
  next_attempt_at: TimeOrNull,
  finished_at: TimeOrNull,
  test: Type.Boolean({ description: 'Sent with a test key: simulated, never sent to the network' }),
}

export const EmailSummary = Type.Object(summaryFields)
export const Email = Type.Object({
  ...summaryFields,
  recipients: Type.Array(Recipient),
  events: Type.Array(Type.Object({ type: Str, recipient: StrOrNull, created_at: Time, data: Obj })),
})

export const Trace = Type.Object({
  email_id: Str,
  steps: Type.Array(Type.Object({ at: Time, attempt: Int, kind: Str, detail: Obj })),
  final: Type.Object({ status: Str, recipients: Type.Array(Recipient) }),
})

export const Validation = Type.Object({
  valid: Type.Boolean(),
  errors: Type.Array(Type.Object({ field: Str, message: Str })),
  size: IntOrNull,
  recipients: Type.Array(
    Type.Object({
      address: Str,
      status: Type.Union([
        Type.Literal('ok'),
        Type.Literal('suppressed'),
        Type.Literal('local'),
        Type.Literal('no_mail_server'),
        Type.Literal('dns_error'),
      ]),
      detail: StrOrNull,
      mx: Type.Array(Str),
    }),
  ),
})

export const EmailStatus = Type.Union([
  Type.Literal('scheduled'),
  Type.Literal('queued'),
  Type.Literal('sending'),
  Type.Literal('sent'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
  Type.Literal('held'),
])

export const QueueStatus = Type.Object({
  paused: Type.Boolean(),
  paused_at: TimeOrNull,
  messages: Type.Record(Type.String(), Type.Integer()),
  recipients: Type.Record(Type.String(), Type.Integer()),
  oldest_pending_at: TimeOrNull,
  next_attempt_at: TimeOrNull,
})

export const Suppression = Type.Object({
  id: Str,
  address: Str,
  reason: Str,
  detail: Str,
  email_id: StrOrNull,
  created_at: Time,
})

export const SuppressionCreate = Type.Object(
  {
    address: Type.String({ minLength: 3, maxLength: 320 }),
    reason: Type.Optional(Type.Union([Type.Literal('manual'), Type.Literal('unsubscribe')])),
    detail: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
)
