// Process and machine figures for benchmarks, read from /proc (Linux): resident memory of a
// process (current and peak, with a reset of the peak between runs), whole-machine CPU use,
// a wait for the machine to be quiet before a timed run, and exact percentiles.

import { readFileSync, writeFileSync } from 'node:fs'

const round1 = (n: number) => Math.round(n * 10) / 10
export const round2 = (n: number) => Math.round(n * 100) / 100

/** A /proc/<pid>/status field given in kB (VmRSS, VmHWM...), in MiB. */
export function statusMiB(field: string, pid: number | 'self' = 'self'): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`${field}:\\s+(\\d+) kB`))
  return round1(Number(m?.[1] ?? 0) / 1024)
}

/** Resets the peak RSS (VmHWM) of this process to its current RSS; false when not allowed. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5')
    return true
  } catch {
    return false
  }
}

/** Samples VmRSS every `ms` and keeps the maximum (a cross-check of VmHWM). */
export function rssSampler(ms = 100): { max(): number; stop(): number } {
  let max = statusMiB('VmRSS')
  const timer = setInterval(() => {
    max = Math.max(max, statusMiB('VmRSS'))
  }, ms)
  timer.unref()
  return {
    max: () => max,
    stop() {
      clearInterval(timer)
      return max
    },
  }
}

export interface CpuSnapshot {
  busy: number
  total: number
}

export function cpuSnapshot(): CpuSnapshot {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] as string
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  const total = f.reduce((s, x) => s + x, 0)
  const idle = (f[3] ?? 0) + (f[4] ?? 0)
  return { busy: total - idle, total }
}

/** Whole-machine busy share between two snapshots, in % of all cores. */
export const cpuBusyPct = (a: CpuSnapshot, b: CpuSnapshot) =>
  b.total > a.total ? round1((100 * (b.busy - a.busy)) / (b.total - a.total)) : 0

/**
 * Waits (at most maxSeconds, or BENCH_QUIET_MAX seconds when set, as bench-peers' QUIET_MAX)
 * until the machine's CPU stays below `pct` % for 3 one-second samples in a row, like
 * bench-peers' wait_quiet. Returns the last sample and the wait.
 */
export async function waitQuiet(pct = 15, maxS = 30): Promise<{ busyPct: number; waitedS: number }> {
  const env = Number(process.env.BENCH_QUIET_MAX)
  const maxSeconds = process.env.BENCH_QUIET_MAX && Number.isFinite(env) && env >= 0 ? env : maxS
  let ok = 0
  let last = 0
  let waited = 0
  while (waited < maxSeconds && ok < 3) {
    const a = cpuSnapshot()
    await new Promise((r) => setTimeout(r, 1000))
    last = cpuBusyPct(a, cpuSnapshot())
    waited++
    ok = last < pct ? ok + 1 : 0
  }
  return { busyPct: last, waitedS: waited }
}

/** The p-th percentile of an ascending list (nearest rank), rounded to 0.01. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return round2(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0)
}

export function summarize(values: readonly number[]) {
  const s = [...values].sort((a, b) => a - b)
  const mean = s.length ? s.reduce((x, y) => x + y, 0) / s.length : 0
  return {
    n: s.length,
    mean: round2(mean),
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: round2(s.at(-1) ?? 0),
  }
}
