// What every accounts use case receives: the store, clock, password hasher, session and key
// services, the login throttle, the key-encryption key for sealed secrets, and settings.
// Built once in main.ts; use-case files take it as their only argument.

import type { Store } from '../../store/db.ts'
import type { UserTable } from '../../store/schema.ts'
import type { Clock } from '../../time/clock.ts'
import type { VerifiedLogins } from '../mail-login/verified-cache.ts'
import type { AuthThrottle } from '../ratelimit/auth-throttle.ts'
import type { ApiKeyService } from './api-keys.ts'
import type { PasswordHasher } from './passwords.ts'
import type { Role } from './principal.ts'
import type { SessionService } from './sessions.ts'

export interface AccountsSettings {
  signup: 'open' | 'invite' | 'closed'
  /** Issuer shown in authenticator apps and system mail. */
  hostname: string
  /** Base URL for links in system mail. */
  publicUrl: () => string
}

export interface AccountsContext {
  store: Store
  clock: Clock
  hasher: PasswordHasher
  sessions: SessionService
  keys: ApiKeyService
  throttle: AuthThrottle
  /** Mail-client passwords verified recently (IMAP and SMTP share it). */
  mailLogins: VerifiedLogins
  keyEncryptionKey: Buffer
  settings: AccountsSettings
}

/** A user as the API shows it: never a hash or a secret. */
export interface UserView {
  id: string
  org_id: string
  email: string
  name: string
  role: Role
  disabled: boolean
  email_verified: boolean
  totp_enabled: boolean
  invited: boolean
  created_at: number
  last_login_at: number | null
}

export function userView(
  u: Pick<
    UserTable,
    | 'id'
    | 'org_id'
    | 'email'
    | 'role'
    | 'email_verified_at'
    | 'totp_enabled_at'
    | 'password_hash'
    | 'created_at'
    | 'last_login_at'
  > & { name: string; disabled: number },
): UserView {
  return {
    id: u.id,
    org_id: u.org_id,
    email: u.email,
    name: u.name,
    role: u.role,
    disabled: u.disabled === 1,
    email_verified: u.email_verified_at !== null,
    totp_enabled: u.totp_enabled_at !== null,
    invited: u.password_hash === null,
    created_at: u.created_at,
    last_login_at: u.last_login_at,
  }
}

/** Canonical form of an email address used as a login name: trimmed, lower case. */
export function canonicalEmail(email: string): string {
  return email.trim().toLowerCase()
}

const EMAIL = /^[^\s@<>()[\]\\,;:"]{1,64}@[a-z0-9.-]{1,253}\.[a-z0-9-]{2,63}$/i

export function isEmail(email: string): boolean {
  return EMAIL.test(email) && !email.includes('..')
}
