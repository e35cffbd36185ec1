// Command-line options of the benchmarks: one parser for integer flags, so every benchmark
// refuses a bad value with the same message.

/** `v` as an integer >= `min`, or `def` when absent; throws naming `--<name>` otherwise. */
export function intOption(v: string | undefined, def: number, name: string, min = 0): number {
  const n = v === undefined ? def : Number(v)
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer >= ${min}, got ${v}`)
  return n
}
