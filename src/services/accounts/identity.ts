// How people get in: first-run setup, sign-up, log-in, email verification, forgotten and
// reset passwords, and claiming an invitation. Invariants:
// - Nothing reveals whether an email has an account: log-in verifies a password even for
//   unknown emails, and a reset request always succeeds.
// - Every token or code is single use, expiring, and stored only as a hash.
// - Failed log-ins go through the shared throttle (the same counters serve IMAP and SMTP).

import { type Kysely, sql, type Transaction } from 'kysely'
import { newId } from '../../store/ids.ts'
import type { Database } from '../../store/schema.ts'
import { ServiceError } from '../errors.ts'
import { writeEvent } from '../events/write.ts'
import { OPERATOR_KEY, type SetupService } from '../setup/setup-token.ts'
import { queueSystemMail } from '../system-mail/system-mail.ts'
import { type AccountsContext, canonicalEmail, isEmail, type UserView, userView } from './context.ts'
import { newNumericCode, newSecret, sha256Hex } from './secrets.ts'
import { useSecondFactor } from './two-factor.ts'

export interface ClientMeta {
  ip: string | null
  userAgent: string | null
}

export interface SignedIn {
  user: UserView
  org: { id: string; name: string }
  /** The session cookie value. */
  token: string
  session_id: string
}

const VERIFY_CODE_TTL = 30 * 60_000
const VERIFY_MAX_ATTEMPTS = 5
const RESET_TTL = 60 * 60_000
const INVITE_TTL = 7 * 86_400_000

type Tx = Kysely<Database> | Transaction<Database>

function invalid(field: string, message: string, code = 'VALIDATION_FAILED'): ServiceError {
  return new ServiceError('invalid', code, `${field} ${message}`, { details: [{ field, message }] })
}

function checkEmail(email: string): string {
  const e = canonicalEmail(email)
  if (!isEmail(e)) throw invalid('email', 'is not a valid email address')
  return e
}

function checkPassword(ctx: AccountsContext, password: string, email?: string): void {
  const problems = ctx.hasher.weaknesses(password, { email })
  if (problems.length)
    throw new ServiceError('invalid', 'WEAK_PASSWORD', `The password ${problems.join('; ')}.`, {
      details: problems.map((message) => ({ field: 'password', message })),
    })
}

/** A new users row: one place for the defaults of every account column. */
function newUserRow(
  now: number,
  u: {
    org_id: string
    email: string
    name: string
    password_hash: string | null
    role: 'owner' | 'admin' | 'member'
    verified: boolean
  },
) {
  return {
    id: newId('usr', now),
    org_id: u.org_id,
    email: u.email,
    name: u.name,
    password_hash: u.password_hash,
    role: u.role,
    disabled: 0 as const,
    email_verified_at: u.verified ? now : null,
    totp_secret_enc: null,
    totp_enabled_at: null,
    totp_last_step: null,
    preferences: '{}',
    last_login_at: null,
    created_at: now,
    updated_at: now,
  }
}

async function createOrgWithOwner(
  tx: Tx,
  now: number,
  input: { org_name: string; email: string; password_hash: string; name: string; verified: boolean },
) {
  const org = {
    id: newId('org', now),
    name: input.org_name,
    settings: '{}',
    created_at: now,
    updated_at: now,
    deleted_at: null,
  }
  await tx.insertInto('orgs').values(org).execute()
  const user = newUserRow(now, {
    org_id: org.id,
    email: input.email,
    name: input.name,
    password_hash: input.password_hash,
    role: 'owner',
    verified: input.verified,
  })
  await tx.insertInto('users').values(user).execute()
  return { org, user }
}

async function emailTaken(tx: Tx, email: string): Promise<boolean> {
  return (
    (await tx.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst()) !== undefined
  )
}

/** Opens a session for a user and shapes the answer every sign-in path gives. */
async function signedIn(
  ctx: AccountsContext,
  user: Parameters<typeof userView>[0],
  org: { id: string; name: string },
  meta: ClientMeta,
): Promise<SignedIn> {
  const { token, session } = await ctx.sessions.create(user, meta)
  return { user: userView(user), org: { id: org.id, name: org.name }, token, session_id: session.id }
}

/** Sends a fresh 6-digit verification code, replacing any earlier unused one. */
async function sendVerificationCode(
  ctx: AccountsContext,
  tx: Tx,
  user: { id: string; org_id: string; email: string },
) {
  const now = ctx.clock.now()
  const code = newNumericCode(6)
  await tx
    .deleteFrom('one_time_tokens')
    .where('user_id', '=', user.id)
    .where('purpose', '=', 'verify_email')
    .execute()
  await tx
    .insertInto('one_time_tokens')
    .values({
      id: newId('evt', now),
      org_id: user.org_id,
      user_id: user.id,
      purpose: 'verify_email',
      token_hash: sha256Hex(`${user.id}:${code}`),
      email: user.email,
      created_at: now,
      expires_at: now + VERIFY_CODE_TTL,
      used_at: null,
    })
    .execute()
  await queueSystemMail(tx, now, {
    org_id: user.org_id,
    kind: 'verify_email',
    to: user.email,
    subject: `Your ${ctx.settings.hostname} verification code: ${code}`,
    text: `Your verification code is ${code}.\nIt expires in 30 minutes. If you did not sign up, ignore this message.\n`,
  })
}

/** Creates the first organisation and its owner. `setupToken` is required over HTTP; the CLI (machine access) passes null. */
export async function completeSetup(
  ctx: AccountsContext,
  setup: SetupService,
  setupToken: string | null,
  input: { org_name: string; email: string; password: string; name?: string },
  meta: ClientMeta,
): Promise<SignedIn> {
  if (!(await setup.needsSetup()))
    throw new ServiceError('conflict', 'SETUP_DONE', 'Setup is already done; sign in instead.')
  if (setupToken !== null && !(await setup.verifyToken(setupToken)))
    throw new ServiceError(
      'forbidden',
      'INVALID_SETUP_TOKEN',
      'The setup token is wrong; use the one printed at the latest start.',
    )
  const email = checkEmail(input.email)
  checkPassword(ctx, input.password, email)
  const password_hash = await ctx.hasher.hash(input.password)
  const now = ctx.clock.now()
  const created = await ctx.store.db
    .transaction()
    .execute(async (tx) => {
      // The unique key makes a second, concurrent setup fail instead of creating another owner.
      await tx
        .insertInto('server_meta')
        .values({ key: 'setup_done', value: String(now), updated_at: now })
        .execute()
      const r = await createOrgWithOwner(tx, now, {
        org_name: input.org_name,
        email,
        password_hash,
        name: input.name ?? '',
        verified: true,
      })
      await tx
        .insertInto('server_meta')
        .values({ key: OPERATOR_KEY, value: r.org.id, updated_at: now })
        .execute()
      await writeEvent(tx, now, {
        org_id: r.org.id,
        type: 'setup.completed',
        actor: r.user.id,
        ip: meta.ip,
        subject_id: r.org.id,
      })
      return r
    })
    .catch((err) => {
      if (String((err as Error).message).match(/unique|duplicate/i))
        throw new ServiceError('conflict', 'SETUP_DONE', 'Setup is already done; sign in instead.')
      throw err
    })
  await setup.consumeToken()
  return signedIn(ctx, created.user, { id: created.org.id, name: created.org.name }, meta)
}

export async function signup(
  ctx: AccountsContext,
  input: { email: string; password: string; name?: string; org_name?: string },
  meta: ClientMeta,
): Promise<SignedIn> {
  if (ctx.settings.signup !== 'open')
    throw new ServiceError(
      'forbidden',
      'SIGNUP_CLOSED',
      ctx.settings.signup === 'invite'
        ? 'Sign-up is by invitation only; ask an administrator to invite you.'
        : 'Sign-up is closed on this server.',
    )
  const email = checkEmail(input.email)
  checkPassword(ctx, input.password, email)
  const password_hash = await ctx.hasher.hash(input.password)
  const now = ctx.clock.now()
  const created = await ctx.store.db.transaction().execute(async (tx) => {
    if (await emailTaken(tx, email))
      throw new ServiceError(
        'conflict',
        'EMAIL_TAKEN',
        'An account with this email exists; sign in or reset the password.',
      )
    const r = await createOrgWithOwner(tx, now, {
      org_name: input.org_name?.trim() || email.split('@')[1] || email,
      email,
      password_hash,
      name: input.name ?? '',
      verified: false,
    })
    await sendVerificationCode(ctx, tx, r.user)
    await writeEvent(tx, now, {
      org_id: r.org.id,
      type: 'auth.signed_up',
      actor: r.user.id,
      ip: meta.ip,
      subject_id: r.user.id,
    })
    return r
  })
  return signedIn(ctx, created.user, { id: created.org.id, name: created.org.name }, meta)
}

export async function login(
  ctx: AccountsContext,
  input: { email: string; password: string; totp_code?: string; recovery_code?: string },
  meta: ClientMeta,
  sleep: (ms: number) => Promise<void>,
): Promise<SignedIn> {
  const email = canonicalEmail(input.email)
  const keys = { account: email, ip: meta.ip }
  const state = await ctx.throttle.check(keys)
  if (state.locked)
    throw new ServiceError(
      'rate_limited',
      'LOGIN_LOCKED',
      `Too many failed log-ins; try again in ${state.retryAfterS} seconds.`,
      {
        retryAfter: state.retryAfterS,
      },
    )
  if (state.delayMs > 0) await sleep(state.delayMs)
  const user = await ctx.store.db
    .selectFrom('users as u')
    .innerJoin('orgs as o', 'o.id', 'u.org_id')
    .selectAll('u')
    .select(['o.name as org_name', 'o.deleted_at as org_deleted_at'])
    .where('u.email', '=', email)
    .executeTakeFirst()
  const ok = user?.password_hash
    ? await ctx.hasher.verify(user.password_hash, input.password)
    : await ctx.hasher.verifyNothing(input.password)
  const now = ctx.clock.now()
  const fail = async (code: string, message: string, reason: string) => {
    const after = await ctx.throttle.recordFailure(keys)
    await writeEvent(ctx.store.db, now, {
      org_id: user?.org_id ?? null,
      type: 'auth.login_failed',
      actor: user?.id ?? null,
      ip: meta.ip,
      subject_id: user?.id ?? null,
      payload: { reason },
    })
    if (after.locked)
      throw new ServiceError(
        'rate_limited',
        'LOGIN_LOCKED',
        `Too many failed log-ins; try again in ${after.retryAfterS} seconds.`,
        { retryAfter: after.retryAfterS },
      )
    return new ServiceError('unauthenticated', code, message)
  }
  if (!user || !ok)
    throw await fail(
      'INVALID_CREDENTIALS',
      'The email or password is wrong.',
      user ? 'password' : 'unknown_email',
    )
  if (user.disabled || user.org_deleted_at !== null) {
    await writeEvent(ctx.store.db, now, {
      org_id: user.org_id,
      type: 'auth.login_failed',
      actor: user.id,
      ip: meta.ip,
      subject_id: user.id,
      payload: { reason: 'disabled' },
    })
    throw new ServiceError(
      'forbidden',
      'ACCOUNT_DISABLED',
      'This account is disabled; ask an administrator of your organisation.',
    )
  }
  if (user.totp_enabled_at !== null) {
    if (!input.totp_code && !input.recovery_code)
      throw new ServiceError(
        'unauthenticated',
        'TOTP_REQUIRED',
        'This account has two-factor login; send totp_code (or a recovery_code) with the password.',
      )
    const passed = await useSecondFactor(ctx, user, {
      totp_code: input.totp_code,
      recovery_code: input.recovery_code,
    })
    if (!passed) throw await fail('INVALID_TOTP', 'The two-factor code is wrong or was already used.', 'totp')
  }
  await ctx.throttle.recordSuccess(keys)
  await ctx.store.db.updateTable('users').set({ last_login_at: now }).where('id', '=', user.id).execute()
  await writeEvent(ctx.store.db, now, {
    org_id: user.org_id,
    type: 'auth.login_succeeded',
    actor: user.id,
    ip: meta.ip,
    subject_id: user.id,
  })
  return signedIn(ctx, { ...user, last_login_at: now }, { id: user.org_id, name: user.org_name }, meta)
}

export async function verifyEmail(
  ctx: AccountsContext,
  input: { email: string; code: string },
): Promise<UserView> {
  const email = canonicalEmail(input.email)
  const now = ctx.clock.now()
  const wrong = () =>
    new ServiceError('invalid', 'INVALID_CODE', 'The code is wrong or expired; request a new one.', {
      details: [{ field: 'code', message: 'is wrong or expired' }],
    })
  const user = await ctx.store.db
    .selectFrom('users')
    .selectAll()
    .where('email', '=', email)
    .executeTakeFirst()
  if (!user) throw wrong()
  if (user.email_verified_at !== null) return userView(user)
  const token = await ctx.store.db
    .selectFrom('one_time_tokens')
    .selectAll()
    .where('user_id', '=', user.id)
    .where('purpose', '=', 'verify_email')
    .where('used_at', 'is', null)
    .executeTakeFirst()
  if (!token || token.expires_at <= now || token.attempts >= VERIFY_MAX_ATTEMPTS) throw wrong()
  await ctx.store.db
    .updateTable('one_time_tokens')
    .set({ attempts: sql`attempts + 1` })
    .where('id', '=', token.id)
    .execute()
  if (!/^\d{6}$/.test(input.code.trim()) || sha256Hex(`${user.id}:${input.code.trim()}`) !== token.token_hash)
    throw wrong()
  await ctx.store.db.transaction().execute(async (tx) => {
    await tx.updateTable('one_time_tokens').set({ used_at: now }).where('id', '=', token.id).execute()
    await tx
      .updateTable('users')
      .set({ email_verified_at: now, updated_at: now })
      .where('id', '=', user.id)
      .execute()
  })
  return userView({ ...user, email_verified_at: now })
}

/** Re-sends the verification code to the signed-in user. */
export async function resendVerification(ctx: AccountsContext, userId: string): Promise<void> {
  const user = await ctx.store.db
    .selectFrom('users')
    .select(['id', 'org_id', 'email', 'email_verified_at'])
    .where('id', '=', userId)
    .executeTakeFirstOrThrow()
  if (user.email_verified_at !== null)
    throw new ServiceError('conflict', 'ALREADY_VERIFIED', 'This email address is already verified.')
  await ctx.store.db.transaction().execute((tx) => sendVerificationCode(ctx, tx, user))
}

/** Always succeeds; mails a reset link only when the account exists and is active. */
export async function forgotPassword(
  ctx: AccountsContext,
  emailInput: string,
  meta: ClientMeta,
): Promise<void> {
  const email = canonicalEmail(emailInput)
  const user = await ctx.store.db
    .selectFrom('users')
    .select(['id', 'org_id', 'email', 'disabled'])
    .where('email', '=', email)
    .executeTakeFirst()
  if (!user || user.disabled) return
  const now = ctx.clock.now()
  const token = newSecret('pst_reset', 24)
  await ctx.store.db.transaction().execute(async (tx) => {
    await tx
      .deleteFrom('one_time_tokens')
      .where('user_id', '=', user.id)
      .where('purpose', '=', 'reset_password')
      .where('used_at', 'is', null)
      .execute()
    await tx
      .insertInto('one_time_tokens')
      .values({
        id: newId('evt', now),
        org_id: user.org_id,
        user_id: user.id,
        purpose: 'reset_password',
        token_hash: sha256Hex(token),
        email,
        created_at: now,
        expires_at: now + RESET_TTL,
        used_at: null,
      })
      .execute()
    await queueSystemMail(tx, now, {
      org_id: user.org_id,
      kind: 'reset_password',
      to: email,
      subject: `Reset your ${ctx.settings.hostname} password`,
      text: `Someone (hopefully you) asked to reset your password.\n\nOpen ${ctx.settings.publicUrl()}/reset-password?token=${token}\nor send this token to POST /v1/auth/reset-password: ${token}\n\nIt works once, within an hour. If it was not you, ignore this message.\n`,
    })
    await writeEvent(tx, now, {
      org_id: user.org_id,
      type: 'auth.password_reset_requested',
      actor: null,
      ip: meta.ip,
      subject_id: user.id,
    })
  })
}

/** Uses a one-time token of `purpose`, or throws. Returns the token row. */
async function useToken(ctx: AccountsContext, tx: Tx, token: string, purpose: 'reset_password' | 'invite') {
  const now = ctx.clock.now()
  const row = await tx
    .selectFrom('one_time_tokens')
    .selectAll()
    .where('token_hash', '=', sha256Hex(token))
    .where('purpose', '=', purpose)
    .executeTakeFirst()
  if (!row || row.used_at !== null || row.expires_at <= now || !row.user_id)
    throw new ServiceError(
      'invalid',
      'INVALID_TOKEN',
      'The link or token is invalid, used or expired; request a new one.',
      {
        details: [{ field: 'token', message: 'is invalid, used or expired' }],
      },
    )
  const r = await tx
    .updateTable('one_time_tokens')
    .set({ used_at: now })
    .where('id', '=', row.id)
    .where('used_at', 'is', null)
    .executeTakeFirst()
  if (Number(r.numUpdatedRows) !== 1)
    throw new ServiceError('invalid', 'INVALID_TOKEN', 'The token was already used.')
  return row as typeof row & { user_id: string }
}

/** The address a reset or invitation token was issued to (for the password rule), if any. */
function tokenEmail(ctx: AccountsContext, token: string) {
  return ctx.store.db
    .selectFrom('one_time_tokens')
    .select('email')
    .where('token_hash', '=', sha256Hex(token))
    .executeTakeFirst()
}

export async function resetPassword(
  ctx: AccountsContext,
  input: { token: string; password: string },
  meta: ClientMeta,
): Promise<void> {
  const probe = await tokenEmail(ctx, input.token)
  checkPassword(ctx, input.password, probe?.email)
  const hash = await ctx.hasher.hash(input.password)
  const now = ctx.clock.now()
  await ctx.store.db.transaction().execute(async (tx) => {
    const row = await useToken(ctx, tx, input.token, 'reset_password')
    // Receiving the mail proves the address, too.
    await tx
      .updateTable('users')
      .set({
        password_hash: hash,
        email_verified_at: sql`coalesce(email_verified_at, ${now})`,
        updated_at: now,
      })
      .where('id', '=', row.user_id)
      .execute()
    await tx
      .updateTable('sessions')
      .set({ revoked_at: now })
      .where('user_id', '=', row.user_id)
      .where('revoked_at', 'is', null)
      .execute()
    await writeEvent(tx, now, {
      org_id: row.org_id,
      type: 'auth.password_reset',
      actor: row.user_id,
      ip: meta.ip,
      subject_id: row.user_id,
    })
  })
  await ctx.throttle.recordSuccess({ account: probe?.email ?? null })
}

export async function claimInvite(
  ctx: AccountsContext,
  input: { token: string; password: string; name?: string },
  meta: ClientMeta,
): Promise<SignedIn> {
  const probe = await tokenEmail(ctx, input.token)
  checkPassword(ctx, input.password, probe?.email)
  const hash = await ctx.hasher.hash(input.password)
  const now = ctx.clock.now()
  const user = await ctx.store.db.transaction().execute(async (tx) => {
    const row = await useToken(ctx, tx, input.token, 'invite')
    const patch: Record<string, unknown> = { password_hash: hash, email_verified_at: now, updated_at: now }
    if (input.name !== undefined) patch.name = input.name
    await tx
      .updateTable('users')
      .set(patch)
      .where('id', '=', row.user_id)
      .where('password_hash', 'is', null)
      .execute()
    await writeEvent(tx, now, {
      org_id: row.org_id,
      type: 'user.invite_claimed',
      actor: row.user_id,
      ip: meta.ip,
      subject_id: row.user_id,
    })
    return tx
      .selectFrom('users as u')
      .innerJoin('orgs as o', 'o.id', 'u.org_id')
      .selectAll('u')
      .select(['o.name as org_name', 'o.deleted_at as org_deleted_at'])
      .where('u.id', '=', row.user_id)
      .executeTakeFirstOrThrow()
  })
  if (user.disabled || user.org_deleted_at !== null)
    throw new ServiceError('forbidden', 'ACCOUNT_DISABLED', 'This account is disabled.')
  return signedIn(ctx, user, { id: user.org_id, name: user.org_name }, meta)
}

/** Creates an invited user (no password yet) and mails the claim token. */
export async function createInvite(
  ctx: AccountsContext,
  tx: Tx,
  input: {
    org_id: string
    email: string
    role: 'owner' | 'admin' | 'member'
    name: string
    invited_by: string
  },
): Promise<{ user: UserView; token: string }> {
  const now = ctx.clock.now()
  const email = checkEmail(input.email)
  if (await emailTaken(tx, email))
    throw new ServiceError('conflict', 'EMAIL_TAKEN', 'A user with this email exists.')
  const user = newUserRow(now, {
    org_id: input.org_id,
    email,
    name: input.name,
    password_hash: null,
    role: input.role,
    verified: false,
  })
  await tx.insertInto('users').values(user).execute()
  const token = newSecret('pst_invite', 24)
  await tx
    .insertInto('one_time_tokens')
    .values({
      id: newId('evt', now),
      org_id: input.org_id,
      user_id: user.id,
      purpose: 'invite',
      token_hash: sha256Hex(token),
      email,
      created_at: now,
      expires_at: now + INVITE_TTL,
      used_at: null,
    })
    .execute()
  await queueSystemMail(tx, now, {
    org_id: input.org_id,
    kind: 'invite',
    to: email,
    subject: `You are invited to ${ctx.settings.hostname}`,
    text: `You have been invited to an organisation on ${ctx.settings.hostname}.\n\nOpen ${ctx.settings.publicUrl()}/claim?token=${token}\nor send this token to POST /v1/auth/claim with your new password: ${token}\n\nThe invitation expires in 7 days.\n`,
  })
  return { user: userView(user), token }
}
