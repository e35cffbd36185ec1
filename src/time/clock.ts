// The clock every time-dependent module receives, so tests can move time instead of waiting.
// Times are epoch milliseconds everywhere inside Postern; ISO 8601 appears only at the edges.

export interface Clock {
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

/** A clock that only moves when told to (tests). */
export function manualClock(
  start = Date.UTC(2026, 0, 1),
): Clock & { advance(ms: number): void; set(ms: number): void } {
  let t = start
  return {
    now: () => t,
    advance: (ms) => {
      t += ms
    },
    set: (ms) => {
      t = ms
    },
  }
}

export const toIso = (ms: number): string => new Date(ms).toISOString()
export const toIsoOrNull = (ms: number | null | undefined): string | null => (ms == null ? null : toIso(ms))
