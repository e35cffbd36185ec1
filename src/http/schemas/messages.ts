// Schemas of the mail-reading API (messages, threads, folders, labels, search) and the mappers
// from service views (epoch milliseconds) to API bodies (ISO 8601 UTC). One definition each.

import { Type } from 'typebox'
import type { FolderView, LabelView } from '../../services/messages/folders.ts'
import type { MailQuery } from '../../services/messages/query.ts'
import type { ThreadDetail, ThreadSummary } from '../../services/messages/threads.ts'
import type { MessageSummary } from '../../services/messages/views.ts'
import { toIso, toIsoOrNull } from '../../time/clock.ts'

const Time = Type.String({ format: 'date-time' })
const TimeOrNull = Type.Union([Time, Type.Null()])
const Str = Type.String()
const StrOrNull = Type.Union([Type.String(), Type.Null()])

export const FolderRole = Type.Union([
  Type.Literal('inbox'),
  Type.Literal('sent'),
  Type.Literal('drafts'),
  Type.Literal('junk'),
  Type.Literal('trash'),
  Type.Literal('archive'),
  Type.Null(),
])

export const Address = Type.Object({ name: Str, address: Str })
const LabelRef = Type.Object({ id: Str, name: Str })

const summaryFields = {
  id: Str,
  mailbox_id: Str,
  thread_id: StrOrNull,
  subject: Str,
  from: Type.Union([Address, Type.Null()]),
  to: Type.Array(Address),
  cc: Type.Array(Address),
  reply_to: Type.Array(Address),
  sent_at: Type.Union([Time, Type.Null()], { description: 'The Date header' }),
  received_at: Time,
  size: Type.Integer({ description: 'Bytes of the raw message' }),
  has_attachments: Type.Boolean(),
  preview: Type.String({ description: 'The start of the text' }),
  seen: Type.Boolean(),
  flagged: Type.Boolean(),
  answered: Type.Boolean(),
  draft: Type.Boolean(),
  keywords: Type.Array(Str, { description: 'IMAP keywords other than system flags, e.g. $Important' }),
  folders: Type.Array(
    Type.Object({
      id: Str,
      name: Str,
      role: FolderRole,
      uid: Type.Integer({ description: 'IMAP UID there' }),
    }),
  ),
  labels: Type.Array(LabelRef, { description: 'The role-less folders holding the message' }),
}
export const MessageSummarySchema = Type.Object(summaryFields)

export const AttachmentInfo = Type.Object({
  index: Type.Integer({ description: 'n in GET /v1/messages/{id}/attachments/{n}' }),
  filename: StrOrNull,
  content_type: Str,
  size: Type.Integer(),
  content_id: StrOrNull,
  disposition: StrOrNull,
})

const detailFields = {
  message_id_header: StrOrNull,
  in_reply_to: StrOrNull,
  references: Type.Array(Str),
  auth_results: StrOrNull,
  spam_score: Type.Union([Type.Number(), Type.Null()]),
  envelope_from: Type.Union([Type.String(), Type.Null()], { description: 'The SMTP envelope sender' }),
  headers: Type.Array(
    Type.Object({ name: Str, value: Type.String({ description: 'Unfolded; encoded words not decoded' }) }),
  ),
  text: Type.Union([Type.String(), Type.Null()]),
  html: Type.Union([Type.String(), Type.Null()], {
    description: 'As stored (cid: links kept); sanitise before showing it',
  }),
  attachments: Type.Array(AttachmentInfo),
  parse_warning: Type.Union([Type.String(), Type.Null()], {
    description:
      'Set when the MIME structure was too large or broken to parse; the raw message is still available',
  }),
}
export const MessageDetailSchema = Type.Object({ ...summaryFields, ...detailFields })

const Keywords = Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 50 })
const Refs = (what: string) =>
  Type.Array(Type.String({ minLength: 1, maxLength: 300 }), { maxItems: 50, description: what })
const AddRemove = (what: string) =>
  Type.Object(
    { add: Type.Optional(Refs(what)), remove: Type.Optional(Refs(what)) },
    { additionalProperties: false },
  )

export const MessagePatchSchema = Type.Object(
  {
    seen: Type.Optional(Type.Boolean()),
    flagged: Type.Optional(Type.Boolean()),
    answered: Type.Optional(Type.Boolean()),
    keywords: Type.Optional(
      Type.Object(
        { add: Type.Optional(Keywords), remove: Type.Optional(Keywords) },
        { additionalProperties: false, description: 'IMAP keywords (atoms such as $Important)' },
      ),
    ),
    folders: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 300 }), {
        minItems: 1,
        maxItems: 50,
        description: 'Exactly these folders (ids, names or roles): the message leaves the others',
      }),
    ),
    labels: Type.Optional(AddRemove('Label ids or names; a message whose last folder goes lands in Archive')),
  },
  { additionalProperties: false },
)

export const DeleteResultSchema = Type.Object({
  id: Str,
  result: Type.Union([Type.Literal('trashed'), Type.Literal('deleted')], {
    description: 'trashed: moved to Trash; deleted: it was only in Trash and is gone for good',
  }),
})

export const ThreadSummarySchema = Type.Object({
  id: Str,
  mailbox_id: Str,
  subject: Str,
  snippet: Type.String({ description: 'Preview of the latest message' }),
  message_count: Type.Integer(),
  unread_count: Type.Integer(),
  participants: Type.Array(Address),
  first_message_at: Time,
  last_message_at: Time,
  starred: Type.Boolean(),
  has_attachments: Type.Boolean(),
  labels: Type.Array(LabelRef),
  folders: Type.Array(Type.Object({ id: Str, name: Str, role: FolderRole })),
})

const optionalDetail = Object.fromEntries(
  Object.entries(detailFields).map(([k, v]) => [k, Type.Optional(v)]),
) as { [K in keyof typeof detailFields]: ReturnType<typeof Type.Optional<(typeof detailFields)[K]>> }

export const ThreadDetailSchema = Type.Object({
  ...ThreadSummarySchema.properties,
  messages: Type.Array(Type.Object({ ...summaryFields, ...optionalDetail }), {
    description: 'Oldest first; with bodies=true each carries the fields of GET /v1/messages/{id}',
  }),
})

export const ThreadActionSchema = Type.Object(
  {
    read: Type.Optional(Type.Boolean()),
    star: Type.Optional(Type.Boolean()),
    archive: Type.Optional(
      Type.Boolean({
        description: 'true: out of the inbox into Archive; false: from Archive back to the inbox',
      }),
    ),
    trash: Type.Optional(
      Type.Boolean({ description: 'true: into Trash, out of every other folder; false: back to the inbox' }),
    ),
    spam: Type.Optional(
      Type.Boolean({ description: 'true: into Junk, out of every other folder; false: back to the inbox' }),
    ),
    move: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 300,
        description: 'Folder id, name or role: out of inbox, archive, junk and trash, into this folder',
      }),
    ),
    labels: Type.Optional(AddRemove('Label ids or names')),
  },
  { additionalProperties: false, description: 'At most one of archive, trash, spam and move' },
)

export const BulkSchema = Type.Object(
  {
    ids: Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { minItems: 1, maxItems: 100 }),
    action: ThreadActionSchema,
  },
  { additionalProperties: false },
)

export const BulkResultSchema = Type.Object({
  results: Type.Array(
    Type.Object({
      id: Str,
      ok: Type.Boolean(),
      status: Type.Integer({ description: 'HTTP status this thread alone would have had' }),
      code: Type.Optional(Str),
      detail: Type.Optional(Str),
    }),
  ),
})

export const FolderSchema = Type.Object({
  id: Str,
  mailbox_id: Str,
  name: Type.String({ description: "Full name, '/' between hierarchy levels" }),
  role: FolderRole,
  parent: StrOrNull,
  subscribed: Type.Boolean(),
  uidvalidity: Type.Integer(),
  uidnext: Type.Integer(),
  highestmodseq: Type.Integer(),
  total: Type.Integer(),
  unread: Type.Integer(),
  created_at: Time,
  updated_at: Time,
})

const FolderName = Type.String({ minLength: 1, maxLength: 200 })
export const FolderCreateSchema = Type.Object(
  { name: FolderName, subscribed: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
)
export const FolderPatchSchema = Type.Object(
  { name: Type.Optional(FolderName), subscribed: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
)

export const LabelSchema = Type.Object({
  id: Str,
  mailbox_id: Str,
  name: Str,
  total: Type.Integer(),
  unread: Type.Integer(),
  created_at: Time,
  updated_at: Time,
})
export const LabelCreateSchema = Type.Object({ name: FolderName }, { additionalProperties: false })
export const LabelPatchSchema = Type.Object(
  { name: Type.Optional(FolderName) },
  { additionalProperties: false },
)

export const MailQuerySchema = Type.Object({
  words: Type.Array(Str),
  from: Type.Array(Str),
  to: Type.Array(Str),
  subject: Type.Array(Str),
  has_attachment: Type.Union([Type.Boolean(), Type.Null()]),
  before: TimeOrNull,
  after: TimeOrNull,
  in: Type.Array(Str),
  unread: Type.Union([Type.Boolean(), Type.Null()]),
  starred: Type.Union([Type.Boolean(), Type.Null()]),
})

export const Limit = Type.Optional(
  Type.Integer({ minimum: 1, maximum: 200, description: 'Page size (default 50)' }),
)
export const Cursor = Type.Optional(
  Type.String({ maxLength: 300, description: 'next_cursor of the previous page' }),
)
export const MailboxParam = Type.Optional(
  Type.String({
    minLength: 1,
    maxLength: 330,
    description: 'Mailbox id or address; required when you can read several mailboxes',
  }),
)

// --- Mappers ---------------------------------------------------------------------------------

export const messageBody = <T extends MessageSummary>(m: T) => ({
  ...m,
  sent_at: toIsoOrNull(m.sent_at),
  received_at: toIso(m.received_at),
})

export const threadBody = <T extends ThreadSummary>(t: T) => ({
  ...t,
  first_message_at: toIso(t.first_message_at),
  last_message_at: toIso(t.last_message_at),
})

export const threadDetailBody = (t: ThreadDetail) => ({
  ...threadBody(t),
  messages: t.messages.map(messageBody),
})

export const folderBody = (f: FolderView) => ({
  ...f,
  created_at: toIso(f.created_at),
  updated_at: toIso(f.updated_at),
})

export const labelBody = (l: LabelView) => ({
  ...l,
  created_at: toIso(l.created_at),
  updated_at: toIso(l.updated_at),
})

export const queryBody = (q: MailQuery) => ({
  ...q,
  before: toIsoOrNull(q.before),
  after: toIsoOrNull(q.after),
})
