// Two-factor login (TOTP, RFC 6238) and app passwords. The TOTP secret is sealed with the
// key-encryption key (bound to the user id) and shown once at enrolment; it takes effect only
// after a code confirms it; a used time step is never accepted again. Recovery codes are
// stored as hashes and each works once. App passwords are random, shown once, stored as
// SHA-256, each for one mailbox the user may access, for IMAP and SMTP clients.

import type { Store } from '../../store/db.ts'
import { newId } from '../../store/ids.ts'
import type { UserTable } from '../../store/schema.ts'
import { ServiceError } from '../errors.ts'
import { writeEvent } from '../events/write.ts'
import { seal, unseal } from '../secrets/seal.ts'
import type { AccountsContext } from './context.ts'
import type { Principal } from './principal.ts'
import { newAppPassword, sha256Hex } from './secrets.ts'
import {
  base32Encode,
  hashRecoveryCode,
  newRecoveryCodes,
  newTotpSecret,
  otpauthUri,
  verifyTotp,
} from './totp.ts'

const sealContext = (userId: string) => `totp:${userId}`

export interface TotpStatus {
  enabled: boolean
  pending: boolean
  recovery_codes_left: number
}

export async function totpStatus(ctx: AccountsContext, userId: string): Promise<TotpStatus> {
  const u = await ctx.store.db
    .selectFrom('users')
    .select(['totp_secret_enc', 'totp_enabled_at'])
    .where('id', '=', userId)
    .executeTakeFirstOrThrow()
  const left = await ctx.store.db
    .selectFrom('recovery_codes')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .executeTakeFirstOrThrow()
  return {
    enabled: u.totp_enabled_at !== null,
    pending: u.totp_secret_enc !== null && u.totp_enabled_at === null,
    recovery_codes_left: Number(left.n),
  }
}

/** Starts enrolment: a new secret, shown once as base32 and an otpauth URI. */
export async function enrolTotp(
  ctx: AccountsContext,
  p: Principal,
): Promise<{ secret: string; otpauth_uri: string }> {
  const userId = p.user_id as string
  const u = await ctx.store.db
    .selectFrom('users')
    .select(['email', 'totp_enabled_at'])
    .where('id', '=', userId)
    .executeTakeFirstOrThrow()
  if (u.totp_enabled_at !== null)
    throw new ServiceError(
      'conflict',
      'TOTP_ENABLED',
      'Two-factor login is already on; turn it off first to enrol a new device.',
    )
  const secret = newTotpSecret()
  await ctx.store.db
    .updateTable('users')
    .set({
      totp_secret_enc: seal(ctx.keyEncryptionKey, sealContext(userId), secret),
      totp_last_step: null,
      updated_at: ctx.clock.now(),
    })
    .where('id', '=', userId)
    .execute()
  return {
    secret: base32Encode(secret),
    otpauth_uri: otpauthUri({ secret, issuer: ctx.settings.hostname, account: u.email }),
  }
}

/** Confirms enrolment with a current code; turns two-factor on and returns fresh recovery codes (shown once). */
export async function confirmTotp(
  ctx: AccountsContext,
  p: Principal,
  code: string,
  ip: string | null,
): Promise<{ recovery_codes: string[] }> {
  const userId = p.user_id as string
  const now = ctx.clock.now()
  const u = await ctx.store.db
    .selectFrom('users')
    .select(['totp_secret_enc', 'totp_enabled_at', 'totp_last_step'])
    .where('id', '=', userId)
    .executeTakeFirstOrThrow()
  if (u.totp_enabled_at !== null)
    throw new ServiceError('conflict', 'TOTP_ENABLED', 'Two-factor login is already on.')
  if (!u.totp_secret_enc)
    throw new ServiceError('conflict', 'TOTP_NOT_ENROLLED', 'Start enrolment first (POST /v1/me/totp).')
  const secret = unseal(ctx.keyEncryptionKey, sealContext(userId), u.totp_secret_enc)
  const step = verifyTotp(secret, code.trim(), now, { lastUsedStep: u.totp_last_step })
  if (step === null)
    throw new ServiceError(
      'invalid',
      'INVALID_TOTP',
      'The code does not match; check the device clock and try the current code.',
      {
        details: [{ field: 'code', message: 'does not match' }],
      },
    )
  const codes = newRecoveryCodes(10)
  await ctx.store.db.transaction().execute(async (tx) => {
    await tx
      .updateTable('users')
      .set({ totp_enabled_at: now, totp_last_step: step, updated_at: now })
      .where('id', '=', userId)
      .execute()
    await tx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute()
    await tx
      .insertInto('recovery_codes')
      .values(
        codes.map((c) => ({
          user_id: userId,
          org_id: p.org_id,
          code_hash: hashRecoveryCode(c),
          created_at: now,
          used_at: null,
        })),
      )
      .execute()
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'user.totp_enabled',
      actor: userId,
      ip,
      subject_id: userId,
    })
  })
  return { recovery_codes: codes }
}

/** Turns two-factor off; needs the password (and a current code when on). */
export async function disableTotp(
  ctx: AccountsContext,
  p: Principal,
  input: { password: string; code?: string },
  ip: string | null,
): Promise<void> {
  const userId = p.user_id as string
  const u = await ctx.store.db
    .selectFrom('users')
    .selectAll()
    .where('id', '=', userId)
    .executeTakeFirstOrThrow()
  if (!u.password_hash || !(await ctx.hasher.verify(u.password_hash, input.password)))
    throw new ServiceError('forbidden', 'WRONG_PASSWORD', 'The password is wrong.')
  if (u.totp_enabled_at !== null) {
    if (!input.code || !(await useSecondFactor(ctx, u, { totp_code: input.code, recovery_code: input.code })))
      throw new ServiceError(
        'forbidden',
        'INVALID_TOTP',
        'A current two-factor code (or a recovery code) is needed to turn two-factor off.',
      )
  }
  const now = ctx.clock.now()
  await ctx.store.db.transaction().execute(async (tx) => {
    await tx
      .updateTable('users')
      .set({ totp_secret_enc: null, totp_enabled_at: null, totp_last_step: null, updated_at: now })
      .where('id', '=', userId)
      .execute()
    await tx.deleteFrom('recovery_codes').where('user_id', '=', userId).execute()
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'user.totp_disabled',
      actor: userId,
      ip,
      subject_id: userId,
    })
  })
}

/**
 * Checks a second factor for a user with two-factor on: a TOTP code (a step newer than the
 * last accepted one) or an unused recovery code. Marks what it used. True when accepted.
 */
export async function useSecondFactor(
  ctx: { store: Store; clock: { now(): number }; keyEncryptionKey: Buffer },
  user: Pick<UserTable, 'id' | 'totp_secret_enc' | 'totp_last_step'>,
  input: { totp_code?: string; recovery_code?: string },
): Promise<boolean> {
  const now = ctx.clock.now()
  const db = ctx.store.db
  if (input.totp_code && user.totp_secret_enc) {
    const secret = unseal(ctx.keyEncryptionKey, sealContext(user.id), user.totp_secret_enc)
    const last = user.totp_last_step === null ? null : Number(user.totp_last_step)
    const step = verifyTotp(secret, input.totp_code.trim(), now, { lastUsedStep: last })
    if (step !== null) {
      // Conditional update: two concurrent log-ins with the same code cannot both pass.
      const r = await db
        .updateTable('users')
        .set({ totp_last_step: step })
        .where('id', '=', user.id)
        .where((eb) => (last === null ? eb('totp_last_step', 'is', null) : eb('totp_last_step', '=', last)))
        .executeTakeFirst()
      if (Number(r.numUpdatedRows) === 1) return true
    }
  }
  if (input.recovery_code) {
    const r = await db
      .updateTable('recovery_codes')
      .set({ used_at: now })
      .where('user_id', '=', user.id)
      .where('code_hash', '=', hashRecoveryCode(input.recovery_code))
      .where('used_at', 'is', null)
      .executeTakeFirst()
    if (Number(r.numUpdatedRows) === 1) return true
  }
  return false
}

export interface AppPasswordView {
  id: string
  name: string
  mailbox_id: string
  prefix: string
  created_at: number
  last_used_at: number | null
}

/** Whether the user may read the mailbox's mail: its owner, or granted access. */
export async function canAccessMailbox(store: Store, p: Principal, mailboxId: string): Promise<boolean> {
  if (p.kind === 'key') return p.mailbox_id === null ? p.key_scope !== 'send' : p.mailbox_id === mailboxId
  const row = await store.db
    .selectFrom('mailboxes as m')
    .leftJoin('mailbox_grants as g', (j) =>
      j.onRef('g.mailbox_id', '=', 'm.id').on('g.user_id', '=', p.user_id as string),
    )
    .select(['m.id', 'm.owner_user_id', 'g.user_id as granted'])
    .where('m.id', '=', mailboxId)
    .where('m.org_id', '=', p.org_id)
    .executeTakeFirst()
  return row !== undefined && (row.owner_user_id === p.user_id || row.granted !== null)
}

export async function createAppPassword(
  ctx: AccountsContext,
  p: Principal,
  input: { name: string; mailbox_id: string },
  ip: string | null,
): Promise<{ password: string; view: AppPasswordView }> {
  if (!(await canAccessMailbox(ctx.store, p, input.mailbox_id)))
    throw new ServiceError(
      'not_found',
      'MAILBOX_NOT_FOUND',
      `No mailbox ${input.mailbox_id} that you have access to.`,
    )
  const now = ctx.clock.now()
  const password = newAppPassword()
  const row = {
    id: newId('app', now),
    org_id: p.org_id,
    user_id: p.user_id as string,
    mailbox_id: input.mailbox_id,
    name: input.name,
    prefix: password.slice(0, 4),
    password_hash: sha256Hex(password),
    created_at: now,
    last_used_at: null,
    revoked_at: null,
  }
  await ctx.store.db.transaction().execute(async (tx) => {
    await tx.insertInto('app_passwords').values(row).execute()
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'app_password.created',
      actor: p.user_id,
      ip,
      subject_id: row.id,
      payload: { mailbox_id: row.mailbox_id, name: row.name },
    })
  })
  const { id, name, mailbox_id, prefix, created_at, last_used_at } = row
  return { password, view: { id, name, mailbox_id, prefix, created_at, last_used_at } }
}

export async function listAppPasswords(ctx: AccountsContext, p: Principal): Promise<AppPasswordView[]> {
  return ctx.store.db
    .selectFrom('app_passwords')
    .select(['id', 'name', 'mailbox_id', 'prefix', 'created_at', 'last_used_at'])
    .where('user_id', '=', p.user_id as string)
    .where('org_id', '=', p.org_id)
    .where('revoked_at', 'is', null)
    .orderBy('created_at', 'desc')
    .execute()
}

export async function revokeAppPassword(
  ctx: AccountsContext,
  p: Principal,
  id: string,
  ip: string | null,
): Promise<void> {
  const now = ctx.clock.now()
  const r = await ctx.store.db
    .updateTable('app_passwords')
    .set({ revoked_at: now })
    .where('id', '=', id)
    .where('user_id', '=', p.user_id as string)
    .where('org_id', '=', p.org_id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  if (Number(r.numUpdatedRows) !== 1)
    throw new ServiceError('not_found', 'APP_PASSWORD_NOT_FOUND', `No active app password ${id}.`)
  await writeEvent(ctx.store.db, now, {
    org_id: p.org_id,
    type: 'app_password.revoked',
    actor: p.user_id,
    ip,
    subject_id: id,
  })
}
