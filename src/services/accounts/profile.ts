// The signed-in person's own account: profile, password change (which ends their other
// sessions), preferences as a JSON merge patch (RFC 7396), and their sessions.

import { ServiceError } from '../errors.ts'
import { writeEvent } from '../events/write.ts'
import { type AccountsContext, type UserView, userView } from './context.ts'
import type { Principal } from './principal.ts'

export async function getMe(ctx: AccountsContext, p: Principal): Promise<UserView & { org_name: string }> {
  const u = await ctx.store.db
    .selectFrom('users as u')
    .innerJoin('orgs as o', 'o.id', 'u.org_id')
    .selectAll('u')
    .select('o.name as org_name')
    .where('u.id', '=', p.user_id as string)
    .where('u.org_id', '=', p.org_id)
    .executeTakeFirstOrThrow()
  return { ...userView(u), org_name: u.org_name }
}

export async function updateMe(
  ctx: AccountsContext,
  p: Principal,
  patch: { name?: string },
): Promise<UserView & { org_name: string }> {
  if (patch.name !== undefined)
    await ctx.store.db
      .updateTable('users')
      .set({ name: patch.name, updated_at: ctx.clock.now() })
      .where('id', '=', p.user_id as string)
      .execute()
  return getMe(ctx, p)
}

export async function changePassword(
  ctx: AccountsContext,
  p: Principal,
  input: { current_password: string; new_password: string },
  ip: string | null,
): Promise<{ sessions_ended: number }> {
  const userId = p.user_id as string
  const u = await ctx.store.db
    .selectFrom('users')
    .select(['email', 'password_hash'])
    .where('id', '=', userId)
    .executeTakeFirstOrThrow()
  if (!u.password_hash || !(await ctx.hasher.verify(u.password_hash, input.current_password)))
    throw new ServiceError('forbidden', 'WRONG_PASSWORD', 'The current password is wrong.', {
      details: [{ field: 'current_password', message: 'is wrong' }],
    })
  const problems = ctx.hasher.weaknesses(input.new_password, { email: u.email })
  if (problems.length)
    throw new ServiceError('invalid', 'WEAK_PASSWORD', `The password ${problems.join('; ')}.`, {
      details: problems.map((message) => ({ field: 'new_password', message })),
    })
  const hash = await ctx.hasher.hash(input.new_password)
  const now = ctx.clock.now()
  await ctx.store.db
    .updateTable('users')
    .set({ password_hash: hash, updated_at: now })
    .where('id', '=', userId)
    .execute()
  const ended = await ctx.sessions.revokeAll(userId, p.session_id)
  await writeEvent(ctx.store.db, now, {
    org_id: p.org_id,
    type: 'user.password_changed',
    actor: userId,
    ip,
    subject_id: userId,
    payload: { sessions_ended: ended },
  })
  return { sessions_ended: ended }
}

export async function getPreferences(ctx: AccountsContext, p: Principal): Promise<Record<string, unknown>> {
  const u = await ctx.store.db
    .selectFrom('users')
    .select('preferences')
    .where('id', '=', p.user_id as string)
    .executeTakeFirstOrThrow()
  return JSON.parse(u.preferences) as Record<string, unknown>
}

/** RFC 7396: objects merge recursively, null removes a member, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k], v)
  }
  return out
}

const MAX_PREFERENCES_BYTES = 16_384

export async function patchPreferences(
  ctx: AccountsContext,
  p: Principal,
  patch: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const next = mergePatch(await getPreferences(ctx, p), patch) as Record<string, unknown>
  const text = JSON.stringify(next)
  if (text.length > MAX_PREFERENCES_BYTES)
    throw new ServiceError(
      'invalid',
      'PREFERENCES_TOO_LARGE',
      `Preferences are limited to ${MAX_PREFERENCES_BYTES} bytes of JSON.`,
    )
  await ctx.store.db
    .updateTable('users')
    .set({ preferences: text, updated_at: ctx.clock.now() })
    .where('id', '=', p.user_id as string)
    .execute()
  return next
}
