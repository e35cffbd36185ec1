// The warm-up arithmetic (services/warmup/schedule.ts), table-driven: the default curve's shape
// and limits, custom lists, and where a ramp stands at a given time (day n of N, today's cap,
// what is left, when the day ends), including the edges of each 24-hour window.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  customSchedule,
  DAY_MS,
  defaultCurve,
  rampPosition,
  ScheduleError,
} from '../../src/services/warmup/schedule.ts'

describe('warm-up schedule', () => {
  it('grows the default curve geometrically from start to target, never shrinking', () => {
    const d = defaultCurve()
    assert.equal(d.length, 30)
    assert.equal(d[0], 20)
    assert.equal(d[29], 1000)
    for (let i = 1; i < d.length; i++) assert.ok((d[i] as number) >= (d[i - 1] as number), `day ${i + 1}`)
    assert.deepEqual(defaultCurve({ days: 3, start_cap: 10, target_cap: 40 }), [10, 20, 40])
    assert.deepEqual(defaultCurve({ days: 1, start_cap: 5, target_cap: 9 }), [9])
    assert.deepEqual(defaultCurve({ days: 4, start_cap: 7, target_cap: 7 }), [7, 7, 7, 7])
    // Rounding never makes a day smaller than the one before it.
    const flat = defaultCurve({ days: 50, start_cap: 1, target_cap: 3 })
    for (let i = 1; i < flat.length; i++) assert.ok((flat[i] as number) >= (flat[i - 1] as number))
  })

  it('refuses curve parameters and lists out of range, naming the field', () => {
    const bad: [() => unknown, string][] = [
      [() => defaultCurve({ days: 0 }), 'days'],
      [() => defaultCurve({ days: 366 }), 'days'],
      [() => defaultCurve({ days: 2.5 }), 'days'],
      [() => defaultCurve({ start_cap: 0 }), 'start_cap'],
      [() => defaultCurve({ target_cap: 10_000_001 }), 'target_cap'],
      [() => defaultCurve({ start_cap: 50, target_cap: 10 }), 'target_cap'],
      [() => customSchedule([]), 'schedule'],
      [() => customSchedule(new Array(366).fill(1)), 'schedule'],
      [() => customSchedule([5, 0]), 'schedule[1]'],
      [() => customSchedule([5, Number.NaN]), 'schedule[1]'],
    ]
    for (const [f, field] of bad)
      assert.throws(f, (err: unknown) => err instanceof ScheduleError && err.field === field, field)
    assert.deepEqual(customSchedule([3, 1, 8]), [3, 1, 8], 'a custom list may go down')
  })

  it('places a ramp in its day windows', () => {
    const start = Date.UTC(2026, 5, 1, 15, 0, 0)
    const r = { schedule: [2, 4, 8], started_at: start, used: 0, used_day: -1 }
    const at = (ms: number, used = 0, usedDay = -1) => rampPosition({ ...r, used, used_day: usedDay }, ms)
    assert.deepEqual(at(start), {
      day: 1,
      days: 3,
      status: 'warming',
      cap: 2,
      used: 0,
      remaining: 2,
      resetsAt: start + DAY_MS,
      endsAt: start + 3 * DAY_MS,
      dayIndex: 0,
    })
    // The counter belongs to its day: yesterday's use is not today's.
    assert.equal(at(start + DAY_MS - 1, 2, 0).remaining, 0)
    assert.deepEqual([at(start + DAY_MS, 2, 0).day, at(start + DAY_MS, 2, 0).used], [2, 0])
    assert.equal(at(start + DAY_MS + 5, 3, 1).remaining, 1)
    assert.equal(at(start + DAY_MS + 5, 9, 1).remaining, 0, 'never below zero')
    assert.equal(at(start + 3 * DAY_MS - 1).cap, 8)
    const done = at(start + 3 * DAY_MS)
    assert.deepEqual(
      [done.status, done.day, done.cap, done.remaining, done.resetsAt],
      ['completed', null, null, null, null],
    )
    // A clock behind the start (another node's skew) counts as day 1.
    assert.equal(at(start - 1000).day, 1)
  })
})
