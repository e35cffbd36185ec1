// Who is calling and what they may do. A principal is a signed-in person (session) or a
// program (API key); scopes are the words routes require (API.md, "Scopes"). The one
// function `missingScope` decides every route's access, so the rule lives in one place.
// Invariant: role and disabled state come from the database on every request (the
// authenticators re-read them); nothing here trusts a token's claims.

export type Role = 'owner' | 'admin' | 'member'
export type KeyScope = 'admin' | 'send' | 'read' | 'write' | 'mailbox'
/** What a route may require. */
export type Scope = 'user' | 'owner' | 'admin' | 'operator' | 'send' | 'read' | 'write' | 'mailbox'

export interface Principal {
  kind: 'session' | 'key'
  org_id: string
  /** The person (sessions; for keys, who created the key). */
  user_id: string | null
  role: Role | null
  session_id: string | null
  key_id: string | null
  key_scope: KeyScope | null
  /** Set for mailbox-scoped keys: the only mailbox they reach. */
  mailbox_id: string | null
  /** A test key (test mode): its sends are simulated and it sees only test mail. Never set for sessions. */
  test?: boolean
  /** True when the principal's org operates the installation (the org made at setup); set
   * by the authenticator only for routes that need it. */
  operator?: boolean
}

/** What each key scope includes. */
const KEY_GRANTS: Record<KeyScope, readonly Scope[]> = {
  admin: ['admin', 'send', 'read', 'write', 'mailbox'],
  write: ['read', 'write', 'mailbox'],
  read: ['read', 'mailbox'],
  send: ['send'],
  mailbox: ['mailbox', 'read', 'write', 'send'],
}

/**
 * Null when `p` may use a route requiring `scope`, else a sentence naming what is missing.
 * People: any role has user/read/write/send/mailbox (limited to granted mailboxes by the
 * services), admin needs role admin or owner, owner needs owner. Keys never act as a person.
 * operator: admin (role or key) of the org that operates the installation (installation-wide
 * jobs and settings), never of any other org.
 */
export function missingScope(p: Principal, scope: Scope): string | null {
  if (scope === 'operator' && !p.operator)
    return 'this needs an administrator of the organisation that operates this installation (the one created at setup)'
  if (p.kind === 'session') {
    if (scope === 'owner') return p.role === 'owner' ? null : 'this needs the owner role'
    if (scope === 'operator')
      return p.role === 'owner' || p.role === 'admin' ? null : 'this needs the admin or owner role'
    if (scope === 'admin')
      return p.role === 'owner' || p.role === 'admin' ? null : 'this needs the admin or owner role'
    return null
  }
  if (scope === 'owner') return 'this needs the owner role: a signed-in owner (a session), not an API key'
  if (scope === 'user') return 'this needs a signed-in person (a session), not an API key'
  if (scope === 'operator')
    return p.key_scope === 'admin' ? null : `this needs the admin scope; this key has ${p.key_scope}`
  const scopeOfKey = p.key_scope as KeyScope
  return KEY_GRANTS[scopeOfKey].includes(scope)
    ? null
    : `this needs the ${scope} scope; this key has ${scopeOfKey}`
}
