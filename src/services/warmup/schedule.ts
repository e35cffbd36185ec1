// The arithmetic of warm-up ramps, without I/O: the default curve, checking a custom list, and
// where a ramp stands at a given time (day n of N, today's cap, what is left, when the day ends).
// Invariants:
// - A schedule is 1 to MAX_DAYS positive whole numbers; day n's cap is schedule[n-1].
// - Days are 24-hour windows from the ramp's start (not calendar days), so a ramp started at
//   15:00 gets its next day's cap at 15:00; after the last day the ramp is complete and caps
//   nothing.
// - The default curve grows geometrically from start_cap to target_cap, never shrinks, and
//   ends exactly at target_cap.

export const DAY_MS = 86_400_000
export const MAX_DAYS = 365
export const MAX_CAP = 10_000_000

/** The curve used when a ramp is made without a list. */
export const DEFAULT_CURVE = { days: 30, start_cap: 20, target_cap: 1000 } as const

export interface CurveInput {
  days?: number
  start_cap?: number
  target_cap?: number
}

export class ScheduleError extends Error {
  override name = 'ScheduleError'
  readonly field: string
  constructor(field: string, message: string) {
    super(message)
    this.field = field
  }
}

const whole = (field: string, v: number, min: number, max: number): number => {
  if (!Number.isSafeInteger(v) || v < min || v > max)
    throw new ScheduleError(field, `must be a whole number from ${min} to ${max}`)
  return v
}

/** Daily caps from start_cap to target_cap over `days` days (geometric, rounded, non-decreasing). */
export function defaultCurve(input: CurveInput = {}): number[] {
  const days = whole('days', input.days ?? DEFAULT_CURVE.days, 1, MAX_DAYS)
  const start = whole('start_cap', input.start_cap ?? DEFAULT_CURVE.start_cap, 1, MAX_CAP)
  const target = whole('target_cap', input.target_cap ?? DEFAULT_CURVE.target_cap, 1, MAX_CAP)
  if (target < start) throw new ScheduleError('target_cap', 'must be at least start_cap')
  if (days === 1) return [target]
  const out: number[] = []
  for (let d = 0; d < days; d++) {
    const v = d === days - 1 ? target : Math.round(start * (target / start) ** (d / (days - 1)))
    out.push(Math.max(v, out[out.length - 1] ?? 1))
  }
  return out
}

/** A caller's own list of daily caps, checked. */
export function customSchedule(list: readonly number[]): number[] {
  if (list.length < 1 || list.length > MAX_DAYS)
    throw new ScheduleError('schedule', `must list 1 to ${MAX_DAYS} daily caps`)
  return list.map((v, i) => whole(`schedule[${i}]`, v, 1, MAX_CAP))
}

export interface RampPosition {
  /** 1-based day of the ramp; null once complete. */
  day: number | null
  days: number
  status: 'warming' | 'completed'
  /** Today's cap; null once complete. */
  cap: number | null
  used: number
  remaining: number | null
  /** Epoch ms when today's window ends (the next cap starts); null once complete. */
  resetsAt: number | null
  /** Epoch ms when the ramp completes (the end of its last day). */
  endsAt: number
  /** The 0-based day index the counter belongs to. */
  dayIndex: number
}

/** Where a ramp stands at `now`. `used`/`usedDay` are the stored counter and its day. */
export function rampPosition(
  r: { schedule: readonly number[]; started_at: number; used: number; used_day: number },
  now: number,
): RampPosition {
  const days = r.schedule.length
  const dayIndex = Math.max(0, Math.floor((now - r.started_at) / DAY_MS))
  const endsAt = r.started_at + days * DAY_MS
  const used = r.used_day === dayIndex ? r.used : 0
  if (dayIndex >= days)
    return {
      day: null,
      days,
      status: 'completed',
      cap: null,
      used,
      remaining: null,
      resetsAt: null,
      endsAt,
      dayIndex,
    }
  const cap = r.schedule[dayIndex] as number
  return {
    day: dayIndex + 1,
    days,
    status: 'warming',
    cap,
    used,
    remaining: Math.max(0, cap - used),
    resetsAt: r.started_at + (dayIndex + 1) * DAY_MS,
    endsAt,
    dayIndex,
  }
}

export const parseSchedule = (text: string): number[] => {
  try {
    const v = JSON.parse(text) as unknown
    return Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : []
  } catch {
    return []
  }
}
