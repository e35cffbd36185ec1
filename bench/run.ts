// `npm run bench -- <name> [options]`: runs one benchmark from bench/ and prints its figures.
// Each benchmark is bench/<name>.ts exporting run(args). Benchmarks stay on loopback.

import { readdirSync } from 'node:fs'

const names = readdirSync(new URL('.', import.meta.url))
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3))
const [name, ...args] = process.argv.slice(2)
if (!name || name === '--help' || !names.includes(name)) {
  console.log(`Usage: npm run bench -- <name> [options]\n\nBenchmarks: ${names.join(', ')}`)
  process.exit(name && name !== '--help' ? 2 : 0)
}
const mod = (await import(`./${name}.ts`)) as { run(args: string[]): Promise<void> }
await mod.run(args)
