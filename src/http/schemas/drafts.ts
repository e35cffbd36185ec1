// Schemas of the drafts API and the mapper from the service view (epoch ms) to the body (ISO).

import { Type } from 'typebox'
import type { DraftView } from '../../services/drafts/drafts.ts'
import { toIso } from '../../time/clock.ts'

const Str = Type.String()
const StrOrNull = Type.Union([Type.String(), Type.Null()])
const Time = Type.String({ format: 'date-time' })
const Addresses = (what: string) =>
  Type.Optional(
    Type.Union(
      [Type.String({ maxLength: 1000 }), Type.Array(Type.String({ maxLength: 1000 }), { maxItems: 1000 })],
      {
        description: `${what}: one address or a list (a@b or Name <a@b>)`,
      },
    ),
  )

const fields = {
  from: Type.Optional(
    Type.String({
      maxLength: 1000,
      description:
        'The mailbox or one of its aliases; default the signed-in user’s default alias, else the mailbox',
    }),
  ),
  to: Addresses('To'),
  cc: Addresses('Cc'),
  bcc: Addresses('Bcc (kept in the stored draft, never in the sent message)'),
  reply_to: Addresses('Reply-To'),
  subject: Type.Optional(Type.String({ maxLength: 998 })),
  text: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  html: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  attachments: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
      maxItems: 100,
      description: 'Upload ids from POST /v1/attachments, in order (replaces the list on update)',
    }),
  ),
  in_reply_to: Type.Optional(
    Type.Union([Type.String({ maxLength: 1000 }), Type.Null()], {
      description: 'Message-ID of the message this answers (In-Reply-To and References follow from it)',
    }),
  ),
}

export const DraftCreateSchema = Type.Object(
  {
    mailbox: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 330,
        description: 'Mailbox id or address; required when you reach several mailboxes',
      }),
    ),
    ...fields,
  },
  { additionalProperties: false },
)

export const DraftPatchSchema = Type.Object(fields, {
  additionalProperties: false,
  description: 'The fields given replace those fields; the others keep their value',
})

export const DraftSchema = Type.Object({
  id: Type.String({ description: 'drf_... (API drafts) or the message id (drafts a mail client stored)' }),
  message_id: Type.String({ description: 'The message holding the draft now (changes on every update)' }),
  mailbox_id: Str,
  source: Type.Union([Type.Literal('api'), Type.Literal('imap')]),
  from: Str,
  to: Type.Array(Str),
  cc: Type.Array(Str),
  bcc: Type.Array(Str),
  reply_to: Type.Array(Str),
  subject: Str,
  text: Type.Union([Str, Type.Null()], {
    description: 'Null for drafts a mail client stored: read the message',
  }),
  html: StrOrNull,
  in_reply_to: StrOrNull,
  attachments: Type.Array(
    Type.Object({
      id: Type.Union([Str, Type.Null()], {
        description: 'The upload; null for a part of a client-stored draft',
      }),
      filename: StrOrNull,
      content_type: Str,
      size: Type.Integer(),
    }),
  ),
  created_at: Time,
  updated_at: Time,
})

export const DraftSendResult = Type.Object({
  id: Type.String({ description: 'The outbound email (eml_...); follow it with GET /v1/emails/{id}' }),
  status: Type.Union([Type.Literal('queued'), Type.Literal('scheduled'), Type.Literal('failed')]),
  suppressed: Type.Array(Str),
  draft_id: Str,
})

export const draftBody = (d: DraftView) => ({
  ...d,
  created_at: toIso(d.created_at),
  updated_at: toIso(d.updated_at),
})
