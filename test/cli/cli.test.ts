// The `postern` command line as a user runs it: help on every verb, version, config printing
// with secrets redacted, config errors, init and migrate, the key-encryption-key check, and
// the Node version check of the launcher.

import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { migrations } from '../../src/store/migrations/index.ts'
import { DIALECTS, testDatabase } from '../helpers/dialects.ts'

const BIN = new URL('../../bin/postern.mjs', import.meta.url).pathname
const VERSION = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version
const cwd = mkdtempSync(join(tmpdir(), 'postern-cli-'))
after(() => rmSync(cwd, { recursive: true, force: true }))

function postern(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', POSTERN_LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

describe('postern command line', () => {
  it('prints the version', () => {
    assert.deepEqual(postern(['--version']), { code: 0, out: `${VERSION}\n`, err: '' })
  })

  it('gives help for the program and for every verb', () => {
    const top = postern(['--help'])
    assert.equal(top.code, 0)
    for (const verb of ['serve', 'init', 'migrate', 'config']) {
      assert.match(top.out, new RegExp(`\\n  ${verb} `))
      const help = postern([verb, '--help'])
      assert.equal(help.code, 0, verb)
      assert.match(help.out, new RegExp(`^Usage: postern ${verb}`), verb)
      assert.match(help.out, /--config <file>/)
    }
  })

  it('refuses an unknown command and unknown options with usage', () => {
    const r = postern(['frobnicate'])
    assert.equal(r.code, 2)
    assert.match(r.err, /unknown command 'frobnicate'/)
    const o = postern(['config', '--colour'])
    assert.equal(o.code, 1)
    assert.match(o.err, /Unknown option '--colour'[\s\S]*--help/)
  })

  it('prints the effective config with secrets redacted and sources on request', () => {
    const env = {
      POSTERN_DATABASE_URL: 'postgres://postern:s3cret-pw@127.0.0.1:5432/mail',
      POSTERN_HTTP_PORT: '9999',
    }
    const r = postern(['config', '--log-level', 'debug'], env)
    assert.equal(r.code, 0, r.err)
    assert.ok(!r.out.includes('s3cret-pw'))
    const c = JSON.parse(r.out)
    assert.equal(c.http.port, 9999)
    assert.equal(c.log.level, 'debug')
    assert.match(c.database.url, /REDACTED/)
    const s = postern(['config', '--sources'], env)
    assert.match(s.out, /^http\.port = 9999 {2}\[env\]$/m)
    assert.match(s.out, /^http\.host = "127\.0\.0\.1" {2}\[default\]$/m)
    assert.equal(postern(['config', '--get', 'http.port'], env).out, '9999\n')
    assert.match(postern(['config', '--keys']).out, /POSTERN_HTTP_PORT, --http-port/)
  })

  it('fails a bad config with the key, the source and the problem', () => {
    const r = postern(['config'], { POSTERN_HTTP_PORT: 'eighty' })
    assert.equal(r.code, 1)
    assert.match(r.err, /http\.port \(POSTERN_HTTP_PORT\): must be an integer \(got "eighty"\)/)
    assert.match(r.err, /docs\/config\.md/)
  })

  for (const dialect of DIALECTS) {
    it(`init prepares an installation and is safe to run again (${dialect})`, async () => {
      const tdb = testDatabase(dialect)
      try {
        const first = postern(['init', '--json'], tdb.env)
        assert.equal(first.code, 0, first.err)
        const a = JSON.parse(first.out)
        assert.equal(a.secrets_created, true)
        assert.deepEqual(a.migrations_applied, Object.keys(migrations))
        assert.match(a.setup_token, /^pst_setup_/)
        assert.equal(statSync(a.secrets_file).mode & 0o777, 0o600)
        const secrets = readFileSync(a.secrets_file, 'utf8')
        const second = JSON.parse(postern(['init', '--json'], tdb.env).out)
        assert.equal(second.secrets_created, false)
        assert.deepEqual(second.migrations_applied, [])
        assert.notEqual(second.setup_token, a.setup_token, 'a fresh setup token each time')
        assert.equal(readFileSync(a.secrets_file, 'utf8'), secrets, 'secrets are never rewritten')
        const m = postern(['migrate'], tdb.env)
        assert.equal(m.code, 0, m.err)
        assert.match(m.out, new RegExp(`database is up to date .* at ${Object.keys(migrations).at(-1)}`))
        // Another secrets file cannot open this database's sealed keys: refuse, and say why.
        const other = join(tdb.dataDir, 'other-secrets.json')
        const r = postern(['init'], { ...tdb.env, POSTERN_SECRETS_FILE: other })
        assert.equal(r.code, 1)
        assert.match(
          r.err,
          /sealed with another key-encryption key .* point secrets_file at the secrets file this database was created with/,
        )
      } finally {
        await tdb.drop()
      }
    })
  }

  it('refuses a secrets file other users can read', () => {
    const dataDir = join(cwd, 'loose')
    const r1 = postern(['init'], { POSTERN_DATA_DIR: dataDir })
    assert.equal(r1.code, 0, r1.err)
    const file = join(dataDir, 'secrets.json')
    execFileSync('chmod', ['644', file])
    const r = postern(['init'], { POSTERN_DATA_DIR: dataDir })
    assert.equal(r.code, 1)
    assert.match(r.err, /readable by other users .* chmod 600/)
  })

  it('explains how to run it when the Node.js is older than 24', () => {
    const old = spawnSync('/usr/bin/node', ['--version'], { encoding: 'utf8' })
    const major = Number(/^v(\d+)/.exec(old.stdout ?? '')?.[1] ?? 0)
    if (old.status !== 0 || major >= 24) return // no older Node on this machine to try
    const r = spawnSync('/usr/bin/node', [BIN, '--version'], { encoding: 'utf8' })
    assert.equal(r.status, 1)
    assert.match(r.stderr, /needs Node\.js 24 or newer[\s\S]*npx postern/)
  })

  it('writes nothing when the config file is broken', () => {
    const file = join(cwd, 'broken.json')
    writeFileSync(file, '{')
    const r = postern(['init', '--config', file], { POSTERN_DATA_DIR: join(cwd, 'never') })
    assert.equal(r.code, 1)
    assert.throws(() => statSync(join(cwd, 'never')))
  })
})
