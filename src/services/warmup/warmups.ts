// Warm-up ramps of sender addresses (Bavimail's alias warm-up): create, list, read, change,
// delete, and the alias route that issues a ramp's token. A ramp caps how many recipients mail
// from one address reaches per day while a new address builds its reputation; the queue
// enforces it (reserve.ts), holding what is over today's cap until the next day.
// Invariants:
// - One ramp per address in an org, on a domain of that org; every query is scoped by org.
// - The token is the ramp's public handle, accepted wherever its id is; it grants nothing (an
//   identifier, not a credential), so it is stored as is. Rotating it retires the old one.
// - Every change writes its event (warmup.*) in the transaction that makes it.

import { randomBytes } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import { parseAddress } from '../../mail/address.ts'
import type { ChangeBus } from '../../store/change-bus.ts'
import type { Store } from '../../store/db.ts'
import { newId } from '../../store/ids.ts'
import type { AliasWarmup, Database } from '../../store/schema.ts'
import type { Clock } from '../../time/clock.ts'
import type { Principal } from '../accounts/principal.ts'
import { findDomain } from '../domains/domains.ts'
import { ServiceError } from '../errors.ts'
import { notifyChange } from '../events/changes.ts'
import { writeEvent } from '../events/write.ts'
import { findAlias } from '../mailboxes/aliases.ts'
import { decodeCursor, olderThan, pageOf, pageSize } from '../messages/cursor.ts'
import { WARMUP_HOLD_PREFIX } from './reserve.ts'
import {
  type CurveInput,
  customSchedule,
  defaultCurve,
  parseSchedule,
  rampPosition,
  ScheduleError,
} from './schedule.ts'

type Tx = Kysely<Database> | Transaction<Database>

export interface WarmupContext {
  store: Store
  clock: Clock
  bus: ChangeBus
  /** Wakes this process's queue worker (held mail may go now). */
  wake?: () => void
}

/**
 * A ramp changed or went away: mail it held is tried again now (what still does not fit is held
 * again), instead of waiting for the day to end.
 */
async function releaseHeld(ctx: WarmupContext, tx: Tx, orgId: string, now: number): Promise<void> {
  const released = await tx
    .updateTable('outbound_messages')
    .set({ next_attempt_at: now, updated_at: now })
    .where('org_id', '=', orgId)
    .where('status', '=', 'held')
    .where('held_reason', 'like', `${WARMUP_HOLD_PREFIX}%`)
    .executeTakeFirst()
  if (Number(released.numUpdatedRows) > 0)
    await notifyChange(ctx.bus, tx, 'queue.changed', orgId, { what: 'warmup_changed' })
}

export interface WarmupView {
  id: string
  object: 'alias_warmup'
  token: string
  address: string
  alias_id: string | null
  curve: 'default' | 'custom'
  schedule: number[]
  days: number
  /** 1-based day of the ramp; null once complete. */
  day: number | null
  status: 'warming' | 'completed'
  today_cap: number | null
  used_today: number
  remaining_today: number | null
  resets_at: string | null
  started_at: string
  ends_at: string
  created_at: string
  updated_at: string
}

export interface WarmupCreateInput extends CurveInput {
  address?: string
  alias_id?: string
  schedule?: number[]
}

export interface WarmupUpdateInput extends CurveInput {
  schedule?: number[]
  /** Start again at day 1 now (today's count starts from 0). */
  restart?: boolean
}

const iso = (ms: number) => new Date(ms).toISOString()
const actorOf = (p: Principal) => p.user_id ?? p.key_id
const newToken = () => `wmt_${randomBytes(18).toString('base64url')}`

export function warmupView(r: AliasWarmup, now: number): WarmupView {
  const schedule = parseSchedule(r.schedule)
  const pos = rampPosition(
    { schedule, started_at: Number(r.started_at), used: Number(r.used), used_day: Number(r.used_day) },
    now,
  )
  return {
    id: r.id,
    object: 'alias_warmup',
    token: r.token,
    address: r.address,
    alias_id: r.alias_id,
    curve: r.curve,
    schedule,
    days: pos.days,
    day: pos.day,
    status: pos.status,
    today_cap: pos.cap,
    used_today: pos.used,
    remaining_today: pos.remaining,
    resets_at: pos.resetsAt === null ? null : iso(pos.resetsAt),
    started_at: iso(Number(r.started_at)),
    ends_at: iso(pos.endsAt),
    created_at: iso(Number(r.created_at)),
    updated_at: iso(Number(r.updated_at)),
  }
}

const invalid = (field: string, message: string, code = 'INVALID_WARMUP') =>
  new ServiceError('invalid', code, `${field}: ${message}`, { details: [{ field, message }] })

/** The schedule a request asks for: a custom list, or the default curve with its parameters. */
function scheduleOf(input: CurveInput & { schedule?: number[] }): {
  curve: 'default' | 'custom'
  list: number[]
} {
  const curveGiven =
    input.days !== undefined || input.start_cap !== undefined || input.target_cap !== undefined
  try {
    if (input.schedule !== undefined) {
      if (curveGiven)
        throw new ScheduleError('schedule', 'give either schedule or days/start_cap/target_cap, not both')
      return { curve: 'custom', list: customSchedule(input.schedule) }
    }
    return { curve: 'default', list: defaultCurve(input) }
  } catch (err) {
    if (err instanceof ScheduleError) throw invalid(err.field, err.message)
    throw err
  }
}

/** A ramp of the caller's org by id or token. */
export async function findWarmup(db: Tx, orgId: string, idOrToken: string): Promise<AliasWarmup> {
  const row = await db
    .selectFrom('alias_warmups')
    .selectAll()
    .where('org_id', '=', orgId)
    .where(idOrToken.startsWith('wmt_') ? 'token' : 'id', '=', idOrToken)
    .executeTakeFirst()
  if (!row)
    throw new ServiceError(
      'not_found',
      'WARMUP_NOT_FOUND',
      `No warm-up ramp ${idOrToken} in this organisation.`,
    )
  return row
}

async function insertRamp(
  tx: Tx,
  p: Principal,
  now: number,
  ramp: { address: string; alias_id: string | null; curve: 'default' | 'custom'; list: number[] },
  ip: string | null,
): Promise<AliasWarmup> {
  const taken = await tx
    .selectFrom('alias_warmups')
    .select('id')
    .where('org_id', '=', p.org_id)
    .where('address', '=', ramp.address)
    .executeTakeFirst()
  if (taken)
    throw new ServiceError(
      'conflict',
      'WARMUP_EXISTS',
      `${ramp.address} already has a warm-up ramp (${taken.id}); change or delete that one.`,
    )
  const row: AliasWarmup = {
    id: newId('wup', now),
    org_id: p.org_id,
    address: ramp.address,
    alias_id: ramp.alias_id,
    token: newToken(),
    curve: ramp.curve,
    schedule: JSON.stringify(ramp.list),
    started_at: now,
    used_day: -1,
    used: 0,
    created_at: now,
    updated_at: now,
  }
  await tx.insertInto('alias_warmups').values(row).execute()
  await writeEvent(tx, now, {
    org_id: p.org_id,
    type: 'warmup.created',
    actor: actorOf(p),
    ip,
    subject_id: row.id,
    payload: {
      address: row.address,
      alias_id: row.alias_id,
      curve: row.curve,
      days: ramp.list.length,
      first_day_cap: ramp.list[0],
    },
  })
  return row
}

/** The canonical sender address of a request (an address on a domain of the org, or an alias). */
async function senderOf(
  tx: Tx,
  p: Principal,
  input: WarmupCreateInput,
): Promise<{ address: string; alias_id: string | null }> {
  if ((input.address === undefined) === (input.alias_id === undefined))
    throw invalid('address', 'give exactly one of address and alias_id')
  if (input.alias_id !== undefined) {
    const alias = await findAlias(tx, p.org_id, input.alias_id)
    if (alias.address.startsWith('@'))
      throw invalid('alias_id', 'a catch-all alias sends as no one address; warm up an address instead')
    return { address: alias.address.toLowerCase(), alias_id: alias.id }
  }
  let parsed: ReturnType<typeof parseAddress>
  try {
    parsed = parseAddress(input.address as string)
  } catch (err) {
    throw invalid('address', `is not a valid address: ${(err as Error).message}`, 'INVALID_ADDRESS')
  }
  await findDomain(tx, p.org_id, parsed.domain)
  const address = parsed.canonical.toLowerCase()
  const alias = await tx
    .selectFrom('aliases')
    .select('id')
    .where('org_id', '=', p.org_id)
    .where('address', '=', address)
    .executeTakeFirst()
  return { address, alias_id: alias?.id ?? null }
}

export async function createWarmup(
  ctx: WarmupContext,
  p: Principal,
  input: WarmupCreateInput,
  ip: string | null,
): Promise<WarmupView> {
  const { curve, list } = scheduleOf(input)
  const now = ctx.clock.now()
  const row = await ctx.store.db.transaction().execute(async (tx) => {
    const sender = await senderOf(tx, p, input)
    return insertRamp(tx, p, now, { ...sender, curve, list }, ip)
  })
  return warmupView(row, now)
}

export async function listWarmups(
  ctx: WarmupContext,
  p: Principal,
  f: { address?: string; limit?: number; cursor?: string },
): Promise<{ data: WarmupView[]; next_cursor: string | null }> {
  const limit = pageSize(f.limit)
  let q = ctx.store.db.selectFrom('alias_warmups').selectAll().where('org_id', '=', p.org_id)
  if (f.address) q = q.where('address', '=', f.address.trim().toLowerCase())
  const c = decodeCursor(f.cursor)
  if (c) q = q.where(olderThan(c, 'created_at', 'id'))
  const rows = await q
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute()
  const { page, next_cursor } = pageOf(rows, limit)
  const now = ctx.clock.now()
  return { data: page.map((r) => warmupView(r, now)), next_cursor }
}

export async function getWarmup(ctx: WarmupContext, p: Principal, idOrToken: string): Promise<WarmupView> {
  return warmupView(await findWarmup(ctx.store.db, p.org_id, idOrToken), ctx.clock.now())
}

export async function updateWarmup(
  ctx: WarmupContext,
  p: Principal,
  idOrToken: string,
  input: WarmupUpdateInput,
  ip: string | null,
): Promise<WarmupView> {
  const curveGiven =
    input.schedule !== undefined ||
    input.days !== undefined ||
    input.start_cap !== undefined ||
    input.target_cap !== undefined
  if (!curveGiven && input.restart === undefined)
    throw invalid('body', 'give a schedule, curve parameters (days, start_cap, target_cap) or restart')
  const next = curveGiven ? scheduleOf(input) : null
  const now = ctx.clock.now()
  const row = await ctx.store.db.transaction().execute(async (tx) => {
    const r = await findWarmup(tx, p.org_id, idOrToken)
    const set: Partial<AliasWarmup> = { updated_at: now }
    if (next) {
      set.curve = next.curve
      set.schedule = JSON.stringify(next.list)
    }
    if (input.restart === true) {
      set.started_at = now
      set.used_day = -1
      set.used = 0
    }
    await tx
      .updateTable('alias_warmups')
      .set(set)
      .where('id', '=', r.id)
      .where('org_id', '=', p.org_id)
      .execute()
    const updated = { ...r, ...set }
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'warmup.updated',
      actor: actorOf(p),
      ip,
      subject_id: r.id,
      payload: {
        address: r.address,
        curve: updated.curve,
        days: parseSchedule(updated.schedule).length,
        restarted: input.restart === true,
      },
    })
    await releaseHeld(ctx, tx, p.org_id, now)
    return updated
  })
  ctx.wake?.()
  return warmupView(row, now)
}

export async function deleteWarmup(
  ctx: WarmupContext,
  p: Principal,
  idOrToken: string,
  ip: string | null,
): Promise<void> {
  const now = ctx.clock.now()
  await ctx.store.db.transaction().execute(async (tx) => {
    const r = await findWarmup(tx, p.org_id, idOrToken)
    await tx.deleteFrom('alias_warmups').where('id', '=', r.id).where('org_id', '=', p.org_id).execute()
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'warmup.deleted',
      actor: actorOf(p),
      ip,
      subject_id: r.id,
      payload: { address: r.address },
    })
    await releaseHeld(ctx, tx, p.org_id, now)
  })
  ctx.wake?.()
}

/**
 * POST /v1/aliases/{id}/warmup-token: the alias's ramp with a new token. An alias without a
 * ramp gets one on the default curve (created: true); one with a ramp keeps its schedule and
 * progress, and its old token stops naming it.
 */
export async function issueAliasWarmupToken(
  ctx: WarmupContext,
  p: Principal,
  aliasId: string,
  ip: string | null,
): Promise<{ created: boolean; view: WarmupView }> {
  const now = ctx.clock.now()
  const out = await ctx.store.db.transaction().execute(async (tx) => {
    const alias = await findAlias(tx, p.org_id, aliasId)
    if (alias.address.startsWith('@'))
      throw invalid('id', 'a catch-all alias sends as no one address; it cannot be warmed up')
    const address = alias.address.toLowerCase()
    const existing = await tx
      .selectFrom('alias_warmups')
      .selectAll()
      .where('org_id', '=', p.org_id)
      .where('address', '=', address)
      .executeTakeFirst()
    if (!existing) {
      const { curve, list } = scheduleOf({})
      return {
        created: true,
        row: await insertRamp(tx, p, now, { address, alias_id: alias.id, curve, list }, ip),
      }
    }
    const token = newToken()
    await tx
      .updateTable('alias_warmups')
      .set({ token, alias_id: alias.id, updated_at: now })
      .where('id', '=', existing.id)
      .where('org_id', '=', p.org_id)
      .execute()
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'warmup.token_rotated',
      actor: actorOf(p),
      ip,
      subject_id: existing.id,
      payload: { address, alias_id: alias.id },
    })
    return { created: false, row: { ...existing, token, alias_id: alias.id, updated_at: now } }
  })
  return { created: out.created, view: warmupView(out.row, now) }
}
