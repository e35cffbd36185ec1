// `npm run bench -- <name> [options]`: runs one benchmark from bench/ and prints its figures.
// Each benchmark is bench/<name>.ts exporting run(args). Benchmarks stay on loopback.
// `<name> --help` prints the benchmark's header comment, which is where each one documents
// what it measures and its options (one place: the file it describes).

import { readdirSync, readFileSync } from 'node:fs'

const names = readdirSync(new URL('.', import.meta.url))
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3))
const [name, ...args] = process.argv.slice(2)
if (!name || name === '--help' || !names.includes(name)) {
  console.log(`Usage: npm run bench -- <name> [options]\n\nBenchmarks: ${names.join(', ')}`)
  process.exit(name && name !== '--help' ? 2 : 0)
}
if (args.includes('--help') || args.includes('-h')) {
  const text = readFileSync(new URL(`./${name}.ts`, import.meta.url), 'utf8')
  const header = text.split('\n').filter((_, i, all) => all.slice(0, i + 1).every((l) => l.startsWith('//')))
  console.log(`Usage: npm run bench -- ${name} [options]\n`)
  console.log(header.map((l) => l.replace(/^\/\/ ?/, '')).join('\n'))
  process.exit(0)
}
const mod = (await import(`./${name}.ts`)) as { run(args: string[]): Promise<void> }
await mod.run(args)
