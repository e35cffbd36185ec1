// The queue's side of warm-up ramps: before recipients of a message are handed to delivery,
// they are counted against the ramp of the message's sender address (its From), the way the
// org caps count them (services/outbound/limits.ts). What does not fit today waits: the worker
// holds the message until the day window resets, never drops it.
// Invariants:
// - The counter moves by compare-and-set on (used_day, used), so processes sharing one
//   database never hand out more than a day's cap between them, on either dialect.
// - A grant may be partial (some of a message's recipients fit today); what was granted and not
//   used (another cap refused) is given back with releaseWarmup.
// - Only the tenant's own mail counts: the worker skips system mail, forwards and test mail.

import addressparser from 'nodemailer/lib/addressparser'
import type { Store } from '../../store/db.ts'
import type { Clock } from '../../time/clock.ts'
import type { GroupCommitter } from '../delivery/group-commit.ts'
import { parseSchedule, rampPosition } from './schedule.ts'

/** How held_reason starts when a ramp holds a message (warmups.ts releases those on a change). */
export const WARMUP_HOLD_PREFIX = 'over the warm-up cap'

export interface WarmupGrant {
  /** Recipients that may go now (all of them when the sender has no ramp or it is complete). */
  granted: number
  /** Set when a ramp applies. */
  ramp: { id: string; day: number; days: number; cap: number; dayIndex: number; resetsAt: number } | null
  /** When the rest may be tried (the end of the ramp's day), if not everything was granted. */
  until: number | null
}

/** The bare, lower-case address of a From header (`Name <a@b>` or `a@b`), or null. */
export function fromAddress(fromHeader: string): string | null {
  const parsed = addressparser(fromHeader, { flatten: true }) as { address?: string }[]
  const a = parsed[0]?.address
  return a ? a.toLowerCase() : null
}

const CAS_TRIES = 8

/** Counts up to `n` recipients of a message from `fromHeader` against the sender's ramp today. */
export async function reserveWarmup(
  ctx: { store: Store; clock: Clock; committer: GroupCommitter },
  orgId: string,
  fromHeader: string,
  n: number,
): Promise<WarmupGrant> {
  const address = fromAddress(fromHeader)
  if (!address || n <= 0) return { granted: n, ramp: null, until: null }
  const db = ctx.store.db
  for (let i = 0; i < CAS_TRIES; i++) {
    const row = await db
      .selectFrom('alias_warmups')
      .select(['id', 'schedule', 'started_at', 'used', 'used_day'])
      .where('org_id', '=', orgId)
      .where('address', '=', address)
      .executeTakeFirst()
    if (!row) return { granted: n, ramp: null, until: null }
    const pos = rampPosition(
      {
        schedule: parseSchedule(row.schedule),
        started_at: Number(row.started_at),
        used: Number(row.used),
        used_day: Number(row.used_day),
      },
      ctx.clock.now(),
    )
    if (pos.status === 'completed' || pos.cap === null || pos.remaining === null || pos.resetsAt === null)
      return { granted: n, ramp: null, until: null }
    const ramp = {
      id: row.id,
      day: pos.day as number,
      days: pos.days,
      cap: pos.cap,
      dayIndex: pos.dayIndex,
      resetsAt: pos.resetsAt,
    }
    const granted = Math.min(n, pos.remaining)
    if (granted === 0) return { granted: 0, ramp, until: ramp.resetsAt }
    const moved = await ctx.committer.run((tx) =>
      tx
        .updateTable('alias_warmups')
        .set({ used_day: pos.dayIndex, used: pos.used + granted })
        .where('id', '=', row.id)
        .where('used_day', '=', Number(row.used_day))
        .where('used', '=', Number(row.used))
        .executeTakeFirst(),
    )
    if (Number(moved.numUpdatedRows) === 1)
      return { granted, ramp, until: granted < n ? ramp.resetsAt : null }
    // Another worker counted in between: read again.
  }
  // Contention this high is not expected; trying again in a moment is the safe answer.
  return { granted: 0, ramp: null, until: ctx.clock.now() + 1000 }
}

/** Gives back recipients granted on `dayIndex` that were not sent after all. */
export async function releaseWarmup(
  ctx: { committer: GroupCommitter },
  rampId: string,
  dayIndex: number,
  n: number,
): Promise<void> {
  if (n <= 0) return
  await ctx.committer.run((tx) =>
    tx
      .updateTable('alias_warmups')
      .set((eb) => ({ used: eb('used', '-', n) }))
      .where('id', '=', rampId)
      .where('used_day', '=', dayIndex)
      .where('used', '>=', n)
      .execute(),
  )
}
