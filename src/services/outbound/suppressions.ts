// The org's suppression list: addresses Postern will not send to (hard bounces, complaints,
// unsubscribes, manual entries). Sending skips them with recipient state `suppressed`.
// Invariants: addresses are stored lower-case; one row per (org, address); every query is
// scoped by org.

import { sql } from 'kysely'
import { isValidAddress } from '../../mail/address.ts'
import { newId } from '../../store/ids.ts'
import type { Suppression } from '../../store/schema.ts'
import type { Principal } from '../accounts/principal.ts'
import { ServiceError } from '../errors.ts'
import type { Tx } from '../messages/context.ts'
import { decodeCursor, encodeCursor } from '../messages/cursor.ts'
import type { OutboundContext } from './context.ts'

export type SuppressionReason = Suppression['reason']

export interface SuppressionView {
  id: string
  address: string
  reason: SuppressionReason
  detail: string
  email_id: string | null
  created_at: string
}

const view = (s: Suppression): SuppressionView => ({
  id: s.id,
  address: s.address,
  reason: s.reason,
  detail: s.detail,
  email_id: s.outbound_id,
  created_at: new Date(Number(s.created_at)).toISOString(),
})

/** Adds (or keeps) a suppression; the first reason stays. Returns true when it is new. */
export async function suppress(
  tx: Tx,
  now: number,
  s: {
    org_id: string
    address: string
    reason: SuppressionReason
    detail?: string
    outbound_id?: string | null
  },
): Promise<boolean> {
  const r = await tx
    .insertInto('suppressions')
    .values({
      id: newId('sup', now),
      org_id: s.org_id,
      address: s.address.toLowerCase(),
      reason: s.reason,
      detail: (s.detail ?? '').slice(0, 500),
      outbound_id: s.outbound_id ?? null,
      created_at: now,
    })
    .onConflict((oc) => oc.columns(['org_id', 'address']).doNothing())
    .executeTakeFirst()
  return Number(r.numInsertedOrUpdatedRows ?? 0) > 0
}

/** The suppressed addresses among `addresses` (lower-cased). */
export async function suppressedAmong(
  tx: Tx,
  orgId: string,
  addresses: readonly string[],
): Promise<Set<string>> {
  if (addresses.length === 0) return new Set()
  const rows = await tx
    .selectFrom('suppressions')
    .select('address')
    .where('org_id', '=', orgId)
    .where(
      'address',
      'in',
      addresses.map((a) => a.toLowerCase()),
    )
    .execute()
  return new Set(rows.map((r) => r.address))
}

export async function listSuppressions(
  ctx: Pick<OutboundContext, 'store'>,
  p: Principal,
  q: { limit?: number; cursor?: string; address?: string; reason?: SuppressionReason },
): Promise<{ data: SuppressionView[]; next_cursor: string | null }> {
  const limit = Math.min(Math.max(q.limit ?? 50, 1), 200)
  let query = ctx.store.db.selectFrom('suppressions').selectAll().where('org_id', '=', p.org_id)
  if (q.address) query = query.where('address', '=', q.address.toLowerCase())
  if (q.reason) query = query.where('reason', '=', q.reason)
  const c = decodeCursor(q.cursor)
  if (c) query = query.where('id', '<', c.id)
  const rows = await query
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute()
  const more = rows.length > limit
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return {
    data: page.map(view),
    next_cursor: more && last ? encodeCursor({ id: last.id, t: Number(last.created_at) }) : null,
  }
}

export async function addSuppression(
  ctx: Pick<OutboundContext, 'store' | 'clock'>,
  p: Principal,
  input: { address: string; reason?: 'manual' | 'unsubscribe'; detail?: string },
): Promise<SuppressionView> {
  if (!isValidAddress(input.address))
    throw new ServiceError('invalid', 'INVALID_ADDRESS', `'${input.address}' is not a valid email address`, {
      details: [{ field: 'address', message: 'not a valid email address' }],
    })
  const now = ctx.clock.now()
  await suppress(ctx.store.db, now, {
    org_id: p.org_id,
    address: input.address,
    reason: input.reason ?? 'manual',
    detail: input.detail ?? `added by ${p.user_id ?? p.key_id ?? 'unknown'}`,
  })
  const row = await ctx.store.db
    .selectFrom('suppressions')
    .selectAll()
    .where('org_id', '=', p.org_id)
    .where('address', '=', input.address.toLowerCase())
    .executeTakeFirstOrThrow()
  return view(row)
}

/** Releases a suppression by id or address. */
export async function releaseSuppression(
  ctx: Pick<OutboundContext, 'store'>,
  p: Principal,
  idOrAddress: string,
): Promise<void> {
  const r = await ctx.store.db
    .deleteFrom('suppressions')
    .where('org_id', '=', p.org_id)
    .where((eb) =>
      eb.or([eb('id', '=', idOrAddress), eb('address', '=', sql<string>`${idOrAddress.toLowerCase()}`)]),
    )
    .executeTakeFirst()
  if (Number(r.numDeletedRows) === 0)
    throw new ServiceError(
      'not_found',
      'SUPPRESSION_NOT_FOUND',
      `no suppression '${idOrAddress}' in this organisation`,
    )
}
