// The organisation and its people: org settings, soft and hard deletion, the user list,
// invitations, role changes and disabling. Invariants: every query is scoped by the caller's
// org; an org always keeps at least one active owner; only an owner grants or removes the
// owner role; disabling a user ends their sessions and revokes the keys they created.

import { ServiceError } from '../errors.ts'
import { writeEvent } from '../events/write.ts'
import { type AccountsContext, type UserView, userView } from './context.ts'
import { createInvite } from './identity.ts'
import type { Principal, Role } from './principal.ts'

export interface OrgView {
  id: string
  name: string
  settings: Record<string, unknown>
  created_at: number
  deleted_at: number | null
}

const actorOf = (p: Principal) => p.user_id ?? p.key_id

export async function getOrg(ctx: AccountsContext, p: Principal): Promise<OrgView> {
  const o = await ctx.store.db
    .selectFrom('orgs')
    .selectAll()
    .where('id', '=', p.org_id)
    .executeTakeFirstOrThrow()
  return {
    id: o.id,
    name: o.name,
    settings: JSON.parse(o.settings),
    created_at: o.created_at,
    deleted_at: o.deleted_at,
  }
}

/**
 * Org settings Postern itself reads, with their shape. Caps are counts (0 = none of the org's
 * own); the operator's config stays a ceiling whatever they say (outbound/limits.ts).
 */
const COUNT_SETTINGS = ['send_hourly_cap', 'send_daily_cap'] as const

function checkSettings(patch: Record<string, unknown>): void {
  for (const k of COUNT_SETTINGS) {
    const v = patch[k]
    if (v === undefined || v === null) continue
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw new ServiceError(
        'invalid',
        'INVALID_SETTING',
        `${k} must be a whole number of recipients, 0 or more`,
        {
          details: [{ field: `settings.${k}`, message: 'a whole number, 0 or more' }],
        },
      )
  }
}

export async function updateOrg(
  ctx: AccountsContext,
  p: Principal,
  patch: { name?: string; settings?: Record<string, unknown> },
  ip: string | null,
): Promise<OrgView> {
  const now = ctx.clock.now()
  const current = await getOrg(ctx, p)
  if (patch.settings) checkSettings(patch.settings)
  const settings = patch.settings ? { ...current.settings, ...patch.settings } : current.settings
  for (const [k, v] of Object.entries(settings)) if (v === null) delete settings[k]
  await ctx.store.db
    .updateTable('orgs')
    .set({
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      settings: JSON.stringify(settings),
      updated_at: now,
    })
    .where('id', '=', p.org_id)
    .execute()
  await writeEvent(ctx.store.db, now, {
    org_id: p.org_id,
    type: 'org.updated',
    actor: actorOf(p),
    ip,
    subject_id: p.org_id,
    payload: { fields: Object.keys(patch) },
  })
  return getOrg(ctx, p)
}

/** Soft delete: the org stops authenticating (sessions and keys) but its data stays for recovery. */
export async function softDeleteOrg(ctx: AccountsContext, p: Principal, ip: string | null): Promise<void> {
  const now = ctx.clock.now()
  await ctx.store.db.transaction().execute(async (tx) => {
    await tx
      .updateTable('orgs')
      .set({ deleted_at: now, updated_at: now })
      .where('id', '=', p.org_id)
      .where('deleted_at', 'is', null)
      .execute()
    await tx
      .updateTable('sessions')
      .set({ revoked_at: now })
      .where('org_id', '=', p.org_id)
      .where('revoked_at', 'is', null)
      .execute()
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'org.deleted',
      actor: actorOf(p),
      ip,
      subject_id: p.org_id,
      payload: { hard: false },
    })
  })
}

/** Hard delete: every row of the org goes (foreign keys cascade); its blobs become collectable. */
export async function hardDeleteOrg(ctx: AccountsContext, p: Principal, ip: string | null): Promise<void> {
  const now = ctx.clock.now()
  await ctx.store.db.transaction().execute(async (tx) => {
    await tx.deleteFrom('app_passwords').where('org_id', '=', p.org_id).execute()
    await tx.deleteFrom('recovery_codes').where('org_id', '=', p.org_id).execute()
    await tx.deleteFrom('orgs').where('id', '=', p.org_id).execute()
    await tx
      .updateTable('blobs')
      .set({ refcount: 0, updated_at: now })
      .where('namespace', '=', p.org_id)
      .execute()
    await writeEvent(tx, now, {
      org_id: null,
      type: 'org.deleted',
      actor: actorOf(p),
      ip,
      subject_id: p.org_id,
      payload: { hard: true },
    })
  })
}

export async function listUsers(ctx: AccountsContext, p: Principal): Promise<UserView[]> {
  const rows = await ctx.store.db
    .selectFrom('users')
    .selectAll()
    .where('org_id', '=', p.org_id)
    .orderBy('created_at')
    .execute()
  return rows.map(userView)
}

export async function inviteUser(
  ctx: AccountsContext,
  p: Principal,
  input: { email: string; role: Role; name?: string },
  ip: string | null,
): Promise<UserView> {
  if (input.role === 'owner' && !(p.kind === 'session' && p.role === 'owner'))
    throw new ServiceError('forbidden', 'OWNER_REQUIRED', 'Only an owner can invite another owner.')
  const now = ctx.clock.now()
  return ctx.store.db.transaction().execute(async (tx) => {
    const { user } = await createInvite(ctx, tx, {
      org_id: p.org_id,
      email: input.email,
      role: input.role,
      name: input.name ?? '',
      invited_by: actorOf(p) as string,
    })
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'user.invited',
      actor: actorOf(p),
      ip,
      subject_id: user.id,
      payload: { role: input.role },
    })
    return user
  })
}

export async function updateUser(
  ctx: AccountsContext,
  p: Principal,
  id: string,
  patch: { role?: Role; disabled?: boolean },
  ip: string | null,
): Promise<UserView> {
  const now = ctx.clock.now()
  const isOwner = p.kind === 'session' ? p.role === 'owner' : false
  return ctx.store.db.transaction().execute(async (tx) => {
    const target = await tx
      .selectFrom('users')
      .selectAll()
      .where('id', '=', id)
      .where('org_id', '=', p.org_id)
      .executeTakeFirst()
    if (!target) throw new ServiceError('not_found', 'USER_NOT_FOUND', `No user ${id} in this organisation.`)
    const touchesOwner = target.role === 'owner' || patch.role === 'owner'
    if (touchesOwner && patch.role !== undefined && patch.role !== target.role && !isOwner)
      throw new ServiceError(
        'forbidden',
        'OWNER_REQUIRED',
        'Only an owner can grant or remove the owner role.',
      )
    if (target.role === 'owner' && patch.disabled === true && !isOwner)
      throw new ServiceError('forbidden', 'OWNER_REQUIRED', 'Only an owner can disable an owner.')
    const losesOwner =
      target.role === 'owner' &&
      ((patch.role !== undefined && patch.role !== 'owner') || patch.disabled === true)
    if (losesOwner) {
      const owners = await tx
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('org_id', '=', p.org_id)
        .where('role', '=', 'owner')
        .where('disabled', '=', 0)
        .executeTakeFirstOrThrow()
      if (Number(owners.n) <= 1)
        throw new ServiceError(
          'conflict',
          'LAST_OWNER',
          'This is the last owner of the organisation; make someone else owner first.',
        )
    }
    const set: Record<string, unknown> = { updated_at: now }
    if (patch.role !== undefined) set.role = patch.role
    if (patch.disabled !== undefined) set.disabled = patch.disabled ? 1 : 0
    await tx.updateTable('users').set(set).where('id', '=', id).where('org_id', '=', p.org_id).execute()
    if (patch.role === 'member' && target.role !== 'member')
      await tx
        .updateTable('api_keys')
        .set({ revoked_at: now })
        .where('created_by', '=', id)
        .where('org_id', '=', p.org_id)
        .where('scope', '=', 'admin')
        .where('revoked_at', 'is', null)
        .execute()
    if (patch.role !== undefined && patch.role !== target.role)
      await writeEvent(tx, now, {
        org_id: p.org_id,
        type: 'user.role_changed',
        actor: actorOf(p),
        ip,
        subject_id: id,
        payload: { from: target.role, to: patch.role },
      })
    if (patch.disabled === true && !target.disabled) {
      await tx
        .updateTable('sessions')
        .set({ revoked_at: now })
        .where('user_id', '=', id)
        .where('revoked_at', 'is', null)
        .execute()
      await tx
        .updateTable('api_keys')
        .set({ revoked_at: now })
        .where('created_by', '=', id)
        .where('org_id', '=', p.org_id)
        .where('revoked_at', 'is', null)
        .execute()
      await tx
        .updateTable('app_passwords')
        .set({ revoked_at: now })
        .where('user_id', '=', id)
        .where('revoked_at', 'is', null)
        .execute()
      await writeEvent(tx, now, {
        org_id: p.org_id,
        type: 'user.disabled',
        actor: actorOf(p),
        ip,
        subject_id: id,
      })
    }
    if (patch.disabled === false && target.disabled)
      await writeEvent(tx, now, {
        org_id: p.org_id,
        type: 'user.enabled',
        actor: actorOf(p),
        ip,
        subject_id: id,
      })
    const row = await tx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
    return userView(row)
  })
}
