// Schemas of the management plane (domains, DKIM keys, DNS records and status, mailboxes,
// aliases) and the mappers from service views to API bodies (ISO times).

import { Type } from 'typebox'
import type { DkimKeyView } from '../../services/domains/dkim.ts'
import type { DomainView } from '../../services/domains/domains.ts'
import type { AliasView } from '../../services/mailboxes/aliases.ts'
import type { MailboxView } from '../../services/mailboxes/mailboxes.ts'
import { toIso, toIsoOrNull } from '../../time/clock.ts'

const Time = Type.String({ format: 'date-time' })
const TimeOrNull = Type.Union([Time, Type.Null()])
const Mb = (description: string) => Type.Integer({ minimum: 0, maximum: 100_000_000, description })

export const DkimKey = Type.Object({
  id: Type.String(),
  selector: Type.String(),
  algorithm: Type.Union([Type.Literal('rsa'), Type.Literal('ed25519')]),
  public_key: Type.String({ description: 'The p= value published in DNS' }),
  status: Type.Union([Type.Literal('active'), Type.Literal('retiring'), Type.Literal('retired')]),
  created_at: Time,
  retire_after: TimeOrNull,
  retired_at: TimeOrNull,
})

export const Domain = Type.Object({
  id: Type.String(),
  name: Type.String({ description: 'Lower case, IDN as punycode' }),
  status: Type.Union([Type.Literal('pending'), Type.Literal('verified')]),
  verified_at: TimeOrNull,
  active: Type.Boolean(),
  description: Type.String(),
  max_aliases: Type.Integer(),
  max_mailboxes: Type.Integer(),
  default_quota_mb: Type.Integer(),
  max_quota_mb: Type.Integer(),
  total_quota_mb: Type.Integer(),
  backup_mx: Type.Boolean(),
  mailboxes: Type.Integer(),
  aliases: Type.Integer(),
  quota_allocated_mb: Type.Integer(),
  used_bytes: Type.Integer(),
  dns_checked_at: TimeOrNull,
  created_at: Time,
  updated_at: Time,
})
export const DomainWithKeys = Type.Intersect([Domain, Type.Object({ dkim: Type.Array(DkimKey) })])

const limits = {
  active: Type.Optional(Type.Boolean()),
  description: Type.Optional(Type.String({ maxLength: 500 })),
  max_aliases: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  max_mailboxes: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  default_quota_mb: Type.Optional(Mb('Quota of a new mailbox when none is given')),
  max_quota_mb: Type.Optional(Mb('Largest quota one mailbox may have')),
  total_quota_mb: Type.Optional(Mb('Sum of all mailbox quotas of the domain')),
  backup_mx: Type.Optional(Type.Boolean()),
}
export const DomainCreate = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 300 }), ...limits },
  { additionalProperties: false },
)
export const DomainPatch = Type.Object(limits, { additionalProperties: false })

export const DnsRecord = Type.Object({
  type: Type.String(),
  name: Type.String(),
  value: Type.String(),
  ttl: Type.Integer(),
  purpose: Type.String(),
  required: Type.Boolean(),
  note: Type.String(),
})
export const DnsRecords = Type.Object({
  domain: Type.String(),
  records: Type.Array(DnsRecord),
  zone: Type.String({ description: 'The records as a zone-file snippet' }),
})
export const DnsStatus = Type.Object({
  domain: Type.String(),
  checked_at: Time,
  ownership_ok: Type.Boolean(),
  mx_ok: Type.Boolean(),
  verified_ready: Type.Boolean(),
  records: Type.Array(
    Type.Intersect([
      DnsRecord,
      Type.Object({
        state: Type.Union([
          Type.Literal('ok'),
          Type.Literal('missing'),
          Type.Literal('different'),
          Type.Literal('error'),
          Type.Literal('unchecked'),
        ]),
        found: Type.Array(Type.String()),
        detail: Type.String(),
      }),
    ]),
  ),
})

export const Mailbox = Type.Object({
  id: Type.String(),
  address: Type.String(),
  domain_id: Type.String(),
  local_part: Type.String(),
  name: Type.String(),
  active: Type.Boolean(),
  quota_mb: Type.Integer(),
  used_bytes: Type.Integer(),
  force_pw_update: Type.Boolean(),
  tls_enforce_in: Type.Boolean(),
  tls_enforce_out: Type.Boolean(),
  save_sent_copy: Type.Boolean(),
  owner_user_id: Type.Union([Type.String(), Type.Null()]),
  created_at: Time,
  updated_at: Time,
})
const mailboxFields = {
  name: Type.Optional(Type.String({ maxLength: 200 })),
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  quota_mb: Type.Optional(Mb('Quota in MB')),
  active: Type.Optional(Type.Boolean()),
  force_pw_update: Type.Optional(Type.Boolean()),
  tls_enforce_in: Type.Optional(
    Type.Boolean({ description: 'Refuse incoming SMTP to this mailbox without TLS' }),
  ),
  tls_enforce_out: Type.Optional(
    Type.Boolean({ description: 'Deliver outgoing mail from this mailbox only over TLS' }),
  ),
  save_sent_copy: Type.Optional(
    Type.Boolean({
      description:
        'Copy mail this mailbox sends (SMTP submission, API, drafts) to its Sent folder (default true); turn off for clients that save their own copy',
    }),
  ),
  owner_user_id: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 100 })])),
}
export const MailboxCreate = Type.Object(
  {
    domain: Type.String({ minLength: 1, maxLength: 300, description: 'Domain id or name' }),
    local_part: Type.String({ minLength: 1, maxLength: 130 }),
    ...mailboxFields,
  },
  { additionalProperties: false },
)
export const MailboxPatch = Type.Object(mailboxFields, { additionalProperties: false })
export const MailboxCreated = Type.Object({
  mailbox: Mailbox,
  password: Type.Union([Type.String(), Type.Null()], {
    description: 'The generated IMAP/SMTP password, shown once (null when you gave one)',
  }),
  api_key: Type.Object({
    id: Type.String(),
    key: Type.String({ description: 'A key scoped to this mailbox, shown once' }),
  }),
})
export const Grant = Type.Object({ user_id: Type.String(), email: Type.String(), created_at: Time })

export const Alias = Type.Object({
  id: Type.String(),
  address: Type.String({ description: 'local@domain, or @domain for a catch-all' }),
  domain_id: Type.String(),
  catch_all: Type.Boolean(),
  targets: Type.Array(Type.String()),
  active: Type.Boolean(),
  created_at: Time,
  updated_at: Time,
})
export const AliasCreate = Type.Object(
  {
    address: Type.String({ minLength: 2, maxLength: 330 }),
    targets: Type.Array(Type.String({ maxLength: 330 }), { minItems: 1, maxItems: 100 }),
    active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)
export const AliasPatch = Type.Object(
  {
    targets: Type.Optional(Type.Array(Type.String({ maxLength: 330 }), { minItems: 1, maxItems: 100 })),
    active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)

export const domainBody = (d: DomainView) => ({
  ...d,
  verified_at: toIsoOrNull(d.verified_at),
  dns_checked_at: toIsoOrNull(d.dns_checked_at),
  created_at: toIso(d.created_at),
  updated_at: toIso(d.updated_at),
})
export const dkimBody = (k: DkimKeyView) => ({
  ...k,
  created_at: toIso(k.created_at),
  retire_after: toIsoOrNull(k.retire_after),
  retired_at: toIsoOrNull(k.retired_at),
})
export const mailboxBody = (m: MailboxView) => ({
  ...m,
  created_at: toIso(m.created_at),
  updated_at: toIso(m.updated_at),
})
export const aliasBody = (a: AliasView) => ({
  ...a,
  created_at: toIso(a.created_at),
  updated_at: toIso(a.updated_at),
})
