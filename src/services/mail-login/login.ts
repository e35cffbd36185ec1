// Mail-client log-in (IMAP LOGIN/AUTHENTICATE, SMTP AUTH): the one rule for both protocols
// (DESIGN.md "Identity and access"). The name is the mailbox address; the secret is the
// mailbox password or an app password made for that mailbox by a user with access to it.
// Invariants:
// - Failures count against the same lock-out counters as the HTTP log-in (account = the
//   address, and the client address), so a password cannot be guessed faster over IMAP.
// - When the mailbox's owner has two-factor log-in on, the mailbox password stops working
//   (auth.mailbox_password_with_2fa relaxes this); app passwords keep working.
// - Unknown names cost one password verification too, so timing does not tell which exist.
// - Every outcome is an event (auth.login_succeeded / auth.login_failed, payload.via), never
//   carrying the secret. Whether plain text is allowed (TLS or plaintext_allowed_from) is the
//   protocol's check, before this is called.

import { parseAddress } from '../../mail/address.ts'
import type { Store } from '../../store/db.ts'
import type { Clock } from '../../time/clock.ts'
import type { PasswordHasher } from '../accounts/passwords.ts'
import { sameSecret, sha256Hex } from '../accounts/secrets.ts'
import { writeEvent } from '../events/write.ts'
import type { AuthThrottle } from '../ratelimit/auth-throttle.ts'
import type { VerifiedLogins } from './verified-cache.ts'

export interface MailLoginContext {
  store: Store
  clock: Clock
  hasher: PasswordHasher
  throttle: AuthThrottle
  /** Recently verified mailbox passwords (verified-cache.ts); none: every log-in verifies. */
  verified?: VerifiedLogins
  settings: { mailboxPasswordWith2fa: boolean }
}

export interface MailAccount {
  mailbox_id: string
  org_id: string
  address: string
  /** Set when the secret was an app password (its id), null for the mailbox password. */
  app_password_id: string | null
}

export type MailLoginFailure =
  /** Wrong name or secret (RFC 5530 AUTHENTICATIONFAILED, SMTP 535 5.7.8). */
  | 'INVALID_CREDENTIALS'
  /** Too many failures for this account or address (retryAfterS says how long). */
  | 'LOCKED'
  /** Right secret, but the mailbox must change its password first (seed 003 force_pw_update). */
  | 'PASSWORD_CHANGE_REQUIRED'
  /** The mailbox, its domain or its organisation is disabled. */
  | 'DISABLED'

export type MailLoginResult =
  | { ok: true; account: MailAccount }
  | { ok: false; failure: MailLoginFailure; message: string; retryAfterS?: number }

export interface MailLoginInput {
  name: string
  secret: string
  ip: string | null
  via: 'imap' | 'smtp'
}

const failed = (failure: MailLoginFailure, message: string, retryAfterS?: number): MailLoginResult => ({
  ok: false,
  failure,
  message,
  ...(retryAfterS !== undefined ? { retryAfterS } : {}),
})

const canonical = (name: string): string | null => {
  try {
    return parseAddress(name).canonical
  } catch {
    return null
  }
}

export async function loginMailbox(
  ctx: MailLoginContext,
  input: MailLoginInput,
  sleep: (ms: number) => Promise<void>,
): Promise<MailLoginResult> {
  const address = canonical(input.name)
  const keys = { account: address ?? input.name.trim().toLowerCase().slice(0, 320), ip: input.ip }
  const state = await ctx.throttle.check(keys)
  if (state.locked)
    return failed(
      'LOCKED',
      `Too many failed log-ins; try again in ${state.retryAfterS} seconds.`,
      state.retryAfterS,
    )
  if (state.delayMs > 0) await sleep(state.delayMs)

  const db = ctx.store.db
  const row = address
    ? await db
        .selectFrom('mailboxes as m')
        .innerJoin('domains as d', 'd.id', 'm.domain_id')
        .innerJoin('orgs as o', 'o.id', 'm.org_id')
        .leftJoin('users as u', 'u.id', 'm.owner_user_id')
        .select([
          'm.id',
          'm.org_id',
          'm.address',
          'm.password_hash',
          'm.active',
          'm.force_pw_update',
          'd.status as domain_status',
          'o.deleted_at as org_deleted_at',
          'u.totp_enabled_at as owner_totp',
        ])
        .where('m.address', '=', address)
        .executeTakeFirst()
    : undefined
  const now = ctx.clock.now()
  const event = async (ok: boolean, reason?: string, appId?: string | null) =>
    writeEvent(db, now, {
      org_id: row?.org_id ?? null,
      type: ok ? 'auth.login_succeeded' : 'auth.login_failed',
      actor: row?.id ?? null,
      ip: input.ip,
      subject_id: row?.id ?? null,
      payload: {
        via: input.via,
        ...(reason ? { reason } : {}),
        ...(appId ? { app_password_id: appId } : {}),
      },
    })

  // App passwords first: they are random, so a SHA-256 lookup is enough (and cheap).
  let appId: string | null = null
  if (row) {
    const hash = sha256Hex(input.secret)
    const app = await db
      .selectFrom('app_passwords')
      .select(['id', 'password_hash'])
      .where('mailbox_id', '=', row.id)
      .where('password_hash', '=', hash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst()
    if (app && sameSecret(app.password_hash, hash)) appId = app.id
  }
  let ok = appId !== null
  let reason = 'password'
  if (!ok) {
    const passwordAllowed = row ? row.owner_totp === null || ctx.settings.mailboxPasswordWith2fa : true
    if (row?.password_hash && passwordAllowed) {
      const stored = row.password_hash
      ok = ctx.verified?.has(stored, input.secret) || (await ctx.hasher.verify(stored, input.secret))
      if (ok) ctx.verified?.add(stored, input.secret)
    } else {
      await ctx.hasher.verifyNothing(input.secret)
      if (row && !passwordAllowed) reason = 'two_factor_needs_app_password'
    }
  }
  if (!row || !ok) {
    const after = await ctx.throttle.recordFailure(keys)
    await event(false, row ? reason : 'unknown_mailbox')
    if (after.locked)
      return failed(
        'LOCKED',
        `Too many failed log-ins; try again in ${after.retryAfterS} seconds.`,
        after.retryAfterS,
      )
    return failed(
      'INVALID_CREDENTIALS',
      reason === 'two_factor_needs_app_password'
        ? 'Invalid credentials (this mailbox’s owner uses two-factor log-in: use an app password)'
        : 'Invalid credentials',
    )
  }
  if (!Number(row.active) || row.domain_status !== 'verified' || row.org_deleted_at !== null) {
    await event(false, 'disabled')
    return failed('DISABLED', 'This mailbox is disabled; ask an administrator of your organisation.')
  }
  await ctx.throttle.recordSuccess(keys)
  if (Number(row.force_pw_update)) {
    await event(false, 'password_change_required')
    return failed(
      'PASSWORD_CHANGE_REQUIRED',
      'This mailbox must change its password before mail clients can log in: set a new one in the web app or ask an administrator (PATCH /v1/mailboxes/{id})',
    )
  }
  if (appId)
    await db.updateTable('app_passwords').set({ last_used_at: now }).where('id', '=', appId).execute()
  await event(true, undefined, appId)
  return {
    ok: true,
    account: { mailbox_id: row.id, org_id: row.org_id, address: row.address, app_password_id: appId },
  }
}
