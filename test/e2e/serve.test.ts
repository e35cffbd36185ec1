// `postern serve` as a real process: first start on embedded defaults, and graceful shutdown
// on SIGTERM with a request in flight (it finishes) or past the deadline (it is cut).

import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { type Child, runChild } from '../helpers/child.ts'
import { DIALECTS, testDatabase } from '../helpers/dialects.ts'

const BIN = new URL('../../bin/postern.mjs', import.meta.url)
const FIXTURE = new URL('../fixtures/serve-with-test-routes.ts', import.meta.url)
const QUIET = { POSTERN_LOG_LEVEL: 'warn', POSTERN_SMTP_HOST: '127.0.0.1', POSTERN_IMAP_HOST: '127.0.0.1' }

async function httpPort(child: Child): Promise<number> {
  const m = await child.waitFor(/http +http:\/\/127\.0\.0\.1:(\d+)/)
  return Number(m[1])
}

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.on('connect', () => {
      s.destroy()
      resolve(false)
    })
    s.on('error', () => resolve(true))
  })

describe('first start on embedded defaults', () => {
  it('creates ./data, prints every listener and a setup link, and answers health', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'postern-first-'))
    const child = runChild(BIN, ['serve', '--http-port', '0'], QUIET, cwd)
    try {
      const port = await httpPort(child)
      const banner = (await child.waitFor(/setup token: (pst_setup_\S+)/))[0]
      assert.ok(banner)
      assert.match(child.stderr(), /setup link: +http:\/\/127\.0\.0\.1:\d+\/setup\?token=pst_setup_/)
      assert.match(child.stderr(), /self-signed certificate/)
      assert.match(child.stderr(), /smtp-mx/)
      for (const f of ['data/postern.db', 'data/blobs', 'data/secrets.json', 'data/tls/self-signed.crt'])
        assert.ok(existsSync(join(cwd, f)), `${f} exists`)
      assert.equal(statSync(join(cwd, 'data/secrets.json')).mode & 0o777, 0o600)
      const res = await fetch(`http://127.0.0.1:${port}/v1/health`)
      assert.equal(((await res.json()) as { status: string }).status, 'ok')
      child.proc.kill('SIGTERM')
      assert.equal(await child.exited, 0, child.stderr())
    } finally {
      child.proc.kill('SIGKILL')
      rmSync(cwd, { recursive: true, force: true })
    }
  })
})

for (const dialect of DIALECTS) {
  describe(`graceful shutdown (${dialect})`, () => {
    it('lets a request in flight finish after SIGTERM, then stops accepting and exits 0', async () => {
      const tdb = testDatabase(dialect)
      const child = runChild(FIXTURE, ['serve', '--http-port', '0'], { ...QUIET, ...tdb.env })
      try {
        const port = await httpPort(child)
        const inflight = fetch(`http://127.0.0.1:${port}/v1/test/slow?ms=1200`)
        await new Promise((r) => setTimeout(r, 300))
        child.proc.kill('SIGTERM')
        const res = await inflight
        assert.equal(res.status, 200)
        assert.deepEqual(await res.json(), { done: true, waited_ms: 1200 })
        assert.equal(await child.exited, 0, child.stderr())
        assert.equal(await refused(port), true, 'no longer accepting')
      } finally {
        child.proc.kill('SIGKILL')
        await tdb.drop()
      }
    })

    it('cuts requests still running at the shutdown deadline', async () => {
      const tdb = testDatabase(dialect)
      const child = runChild(FIXTURE, ['serve', '--http-port', '0', '--shutdown-grace-ms', '300'], {
        ...QUIET,
        ...tdb.env,
      })
      try {
        const port = await httpPort(child)
        const inflight = fetch(`http://127.0.0.1:${port}/v1/test/slow?ms=20000`).then(
          () => 'answered',
          () => 'cut',
        )
        await new Promise((r) => setTimeout(r, 200))
        const t0 = Date.now()
        child.proc.kill('SIGTERM')
        assert.equal(await inflight, 'cut')
        assert.equal(await child.exited, 0, child.stderr())
        assert.ok(Date.now() - t0 < 15_000)
      } finally {
        child.proc.kill('SIGKILL')
        await tdb.drop()
      }
    })
  })
}
