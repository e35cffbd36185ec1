// Every benchmark answers --help with its own documentation (its header comment, printed by
// bench/run.ts) and exits 0 without running anything; an unknown name exits 2 with the list.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)
const benchDir = new URL('../../bench/', import.meta.url)
const runner = new URL('run.ts', benchDir).pathname
const names = readdirSync(benchDir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3))

describe('bench --help', () => {
  it('finds the benchmarks', () =>
    assert.ok(names.includes('smtp-inbound') && names.length > 5, names.join()))

  for (const name of names)
    it(`documents ${name}`, async () => {
      const { stdout } = await run(process.execPath, [runner, name, '--help'], { timeout: 30_000 })
      assert.match(stdout, new RegExp(`^Usage: npm run bench -- ${name} \\[options\\]`))
      const body = stdout.split('\n').slice(2).join('\n')
      assert.ok(body.split('\n').length >= 3, `bench/${name}.ts has no header comment to print:\n${stdout}`)
      assert.match(body, /--\w/, `bench/${name}.ts documents no option`)
    })

  it('refuses an unknown benchmark with the list', async () => {
    await assert.rejects(
      run(process.execPath, [runner, 'no-such-bench']),
      (e: { code: number; stdout: string }) => {
        assert.equal(e.code, 2)
        assert.match(e.stdout, /Benchmarks: .*smtp-inbound/)
        return true
      },
    )
  })
})
