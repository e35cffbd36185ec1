// Schemas of the accounts API (users, sessions, keys, org), and the mappers from service views
// (epoch milliseconds) to API bodies (ISO 8601 UTC). One definition each, used by every route.

import { Type } from 'typebox'
import type { ApiKeyView } from '../../services/accounts/api-keys.ts'
import type { UserView } from '../../services/accounts/context.ts'
import type { SessionInfo } from '../../services/accounts/sessions.ts'
import type { OrgView } from '../../services/accounts/team.ts'
import type { AppPasswordView } from '../../services/accounts/two-factor.ts'
import { toIso, toIsoOrNull } from '../../time/clock.ts'

const Time = Type.String({ format: 'date-time' })
const TimeOrNull = Type.Union([Time, Type.Null()])
export const Role = Type.Union([Type.Literal('owner'), Type.Literal('admin'), Type.Literal('member')])
export const KeyScope = Type.Union([
  Type.Literal('admin'),
  Type.Literal('send'),
  Type.Literal('read'),
  Type.Literal('write'),
  Type.Literal('mailbox'),
])
export const Email = Type.String({ minLength: 3, maxLength: 320 })
export const Password = Type.String({ minLength: 1, maxLength: 1024 })

export const User = Type.Object({
  id: Type.String(),
  org_id: Type.String(),
  email: Type.String(),
  name: Type.String(),
  role: Role,
  disabled: Type.Boolean(),
  email_verified: Type.Boolean(),
  totp_enabled: Type.Boolean(),
  invited: Type.Boolean({ description: 'Invited and not yet claimed' }),
  created_at: Time,
  last_login_at: TimeOrNull,
})
export const Me = Type.Intersect([User, Type.Object({ org_name: Type.String() })])
export const OrgRef = Type.Object({ id: Type.String(), name: Type.String() })
export const SignedIn = Type.Object({ user: User, org: OrgRef })

export const Session = Type.Object({
  id: Type.String(),
  created_at: Time,
  expires_at: Time,
  last_seen_at: TimeOrNull,
  ip: Type.Union([Type.String(), Type.Null()]),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  current: Type.Boolean(),
})

export const ApiKey = Type.Object({
  id: Type.String(),
  name: Type.String(),
  prefix: Type.String(),
  scope: KeyScope,
  mailbox_id: Type.Union([Type.String(), Type.Null()]),
  created_by: Type.Union([Type.String(), Type.Null()]),
  created_at: Time,
  expires_at: TimeOrNull,
  last_used_at: TimeOrNull,
  revoked_at: TimeOrNull,
  test: Type.Boolean({ description: 'A test-mode key: its mail is simulated, never sent' }),
})

export const Org = Type.Object({
  id: Type.String(),
  name: Type.String(),
  settings: Type.Record(Type.String(), Type.Unknown()),
  created_at: Time,
  deleted_at: TimeOrNull,
})

export const AppPassword = Type.Object({
  id: Type.String(),
  name: Type.String(),
  mailbox_id: Type.String(),
  prefix: Type.String(),
  created_at: Time,
  last_used_at: TimeOrNull,
})

export const list = <T extends Parameters<typeof Type.Array>[0]>(item: T) =>
  Type.Object({ data: Type.Array(item), next_cursor: Type.Union([Type.String(), Type.Null()]) })

export const userBody = (u: UserView) => ({
  ...u,
  created_at: toIso(u.created_at),
  last_login_at: toIsoOrNull(u.last_login_at),
})
export const sessionBody = (s: SessionInfo, currentId: string | null) => ({
  ...s,
  created_at: toIso(s.created_at),
  expires_at: toIso(s.expires_at),
  last_seen_at: toIsoOrNull(s.last_seen_at),
  current: s.id === currentId,
})
export const keyBody = (k: ApiKeyView) => ({
  ...k,
  created_at: toIso(k.created_at),
  expires_at: toIsoOrNull(k.expires_at),
  last_used_at: toIsoOrNull(k.last_used_at),
  revoked_at: toIsoOrNull(k.revoked_at),
})
export const orgBody = (o: OrgView) => ({
  ...o,
  created_at: toIso(o.created_at),
  deleted_at: toIsoOrNull(o.deleted_at),
})
export const appPasswordBody = (a: AppPasswordView) => ({
  ...a,
  created_at: toIso(a.created_at),
  last_used_at: toIsoOrNull(a.last_used_at),
})
