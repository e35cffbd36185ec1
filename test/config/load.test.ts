import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { renderConfigDocs } from '../../scripts/gen-config-docs.ts'
import { ConfigError, loadConfig, redactConfig } from '../../src/config/load.ts'
import { mayBindPrivileged, resolveMailPorts } from '../../src/config/ports.ts'
import { flatKeys } from '../../src/config/schema.ts'

const dir = mkdtempSync(join(tmpdir(), 'postern-config-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const load = (env: Record<string, string> = {}, args: string[] = [], cwd = dir) =>
  loadConfig({ env, args, cwd })

function problemsOf(fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`)
    return err.problems
  }
  assert.fail('expected a ConfigError')
}

describe('config loading', () => {
  it('uses defaults, derives paths and freezes the result', () => {
    const { config, sources } = load()
    assert.equal(config.http.host, '127.0.0.1')
    assert.equal(config.http.port, 8787)
    assert.equal(config.data_dir, join(dir, 'data'))
    assert.equal(config.secrets_file, join(dir, 'data', 'secrets.json'))
    assert.equal(config.blobs.dir, join(dir, 'data', 'blobs'))
    assert.equal(config.smtp.mx_port, null)
    assert.equal(sources.get('http.port'), 'default')
    assert.equal(sources.get('secrets_file'), 'derived')
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.http))
    assert.throws(() => {
      ;(config.http as { port: number }).port = 1
    })
  })

  it('layers defaults <- file <- environment <- flags', () => {
    const file = join(dir, 'layers.json')
    writeFileSync(
      file,
      JSON.stringify({ http: { port: 1000, host: '127.0.0.2' }, log: { level: 'debug' }, roles: ['http'] }),
    )
    const { config, sources } = load({ POSTERN_HTTP_PORT: '2000', POSTERN_LOG_LEVEL: 'warn' }, [
      '--config',
      file,
      '--http-port=3000',
    ])
    assert.equal(config.http.port, 3000)
    assert.equal(sources.get('http.port'), 'flag')
    assert.equal(config.log.level, 'warn')
    assert.equal(sources.get('log.level'), 'env')
    assert.equal(config.http.host, '127.0.0.2')
    assert.equal(sources.get('http.host'), 'file')
    assert.deepEqual(config.roles, ['http'])
  })

  it('reads postern.config.json from the working folder when present', () => {
    const cwd = mkdtempSync(join(dir, 'cwd-'))
    writeFileSync(join(cwd, 'postern.config.json'), JSON.stringify({ http: { port: 4321 } }))
    assert.equal(load({}, [], cwd).config.http.port, 4321)
  })

  it('parses lists, booleans and null from text sources', () => {
    const { config } = load(
      { POSTERN_DNS_SERVERS: '127.0.0.1:53, 127.0.0.2', POSTERN_HTTP_TRUST_PROXY: 'yes' },
      ['--https-enabled', '--database-url', 'null'],
    )
    assert.deepEqual(config.dns.servers, ['127.0.0.1:53', '127.0.0.2'])
    assert.equal(config.http.trust_proxy, true)
    assert.equal(config.https.enabled, true)
    assert.equal(config.database.url, null)
  })

  it('names the key, the source and the problem, all at once', () => {
    const problems = problemsOf(() =>
      load({ POSTERN_HTTP_PORT: 'eighty', POSTERN_LOG_LEVEL: 'loud' }, [
        '--jobs-tick-ms',
        '-5',
        '--roles',
        'http,pop3',
      ]),
    )
    assert.equal(problems.length, 4, problems.join('\n'))
    assert.match(problems.join('\n'), /http\.port \(POSTERN_HTTP_PORT\): must be an integer \(got "eighty"\)/)
    assert.match(problems.join('\n'), /log\.level \(POSTERN_LOG_LEVEL\): must be one of fatal, error/)
    assert.match(problems.join('\n'), /jobs\.tick_ms \(--jobs-tick-ms\): must be between 10 and/)
    assert.match(problems.join('\n'), /roles \(--roles\): unknown value pop3/)
  })

  it('refuses out-of-range ports and wrong types in the file', () => {
    const file = join(dir, 'bad.json')
    writeFileSync(file, JSON.stringify({ http: { port: 70000, trust_proxy: 'sometimes' } }))
    const problems = problemsOf(() => load({}, ['--config', file]))
    assert.match(problems.join('\n'), /http\.port \(.*bad\.json\): must be between 0 and 65535 \(got 70000\)/)
    assert.match(problems.join('\n'), /http\.trust_proxy .*must be true or false/)
  })

  it('reports unknown keys in the file with a suggestion', () => {
    const file = join(dir, 'typo.json')
    writeFileSync(file, JSON.stringify({ http: { prot: 1 } }))
    assert.match(
      problemsOf(() => load({}, ['--config', file]))[0] as string,
      /http\.prot .*unknown key; did you mean http\.port\?/,
    )
  })

  it('refuses a file that is not JSON, and a missing explicit file', () => {
    const file = join(dir, 'broken.json')
    writeFileSync(file, '{ "http": ')
    assert.match(problemsOf(() => load({}, ['--config', file]))[0] as string, /not valid JSON/)
    assert.match(
      problemsOf(() => load({}, ['--config', join(dir, 'nope.json')]))[0] as string,
      /does not exist/,
    )
    assert.match(problemsOf(() => load({}, ['--http-port']))[0] as string, /--http-port: needs a value/)
  })

  it('needs both TLS files or neither', () => {
    assert.match(
      problemsOf(() => load({ POSTERN_TLS_CERT_FILE: 'a.crt' }))[0] as string,
      /set both or neither/,
    )
  })

  it('redacts secrets but keeps the shape of a database URL', () => {
    const { config } = load({ POSTERN_DATABASE_URL: 'postgres://postern:hunter2@db.internal:5432/mail' })
    const shown = JSON.stringify(redactConfig(config))
    assert.ok(!shown.includes('hunter2'))
    assert.match(shown, /postgres:\/\/postern:REDACTED@db\.internal:5432\/mail/)
  })

  it('gives every key a distinct environment variable and flag, and a doc', () => {
    const keys = flatKeys()
    assert.equal(new Set(keys.map((k) => k.env)).size, keys.length)
    assert.equal(new Set(keys.map((k) => k.flag)).size, keys.length)
    for (const k of keys) assert.ok(k.def.doc.length > 10, `${k.path} needs a doc`)
  })

  it('docs/config.md is generated from the schema (run npm run docs:config when this fails)', () => {
    const committed = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8')
    assert.equal(committed, renderConfigDocs())
  })
})

describe('mail ports', () => {
  const { config } = load()
  it('uses the standard ports when they may be bound', () => {
    const ports = resolveMailPorts(config, () => true)
    assert.deepEqual(
      ports.map((p) => [p.name, p.port, p.fellBack]),
      [
        ['smtp-mx', 25, false],
        ['smtp-submission', 587, false],
        ['smtp-submissions', 465, false],
        ['imap', 143, false],
        ['imaps', 993, false],
      ],
    )
  })
  it('falls back to the documented unprivileged ports and says so', () => {
    const ports = resolveMailPorts(config, () => false)
    assert.deepEqual(
      ports.map((p) => p.port),
      [2025, 2587, 2465, 2143, 2993],
    )
    assert.ok(ports.every((p) => p.fellBack))
  })
  it('keeps an explicit port, 0 included', () => {
    const { config: c } = load({ POSTERN_SMTP_MX_PORT: '0', POSTERN_IMAP_PORT: '1143' })
    const ports = resolveMailPorts(c, () => false)
    assert.equal(ports[0]?.port, 0)
    assert.equal(ports[0]?.fellBack, false)
    assert.equal(ports[3]?.port, 1143)
  })
  it('reads the unprivileged port start and capabilities', () => {
    const files: Record<string, string> = {
      '/proc/sys/net/ipv4/ip_unprivileged_port_start': '0\n',
      '/proc/self/status': 'CapEff:\t0000000000000000\n',
    }
    const read = (p: string) => files[p] as string
    const asRoot = process.getuid?.() === 0
    assert.equal(mayBindPrivileged(25, read), true)
    files['/proc/sys/net/ipv4/ip_unprivileged_port_start'] = '1024\n'
    assert.equal(mayBindPrivileged(25, read), asRoot) // root may always bind
    files['/proc/self/status'] = 'CapEff:\t0000000000000400\n'
    assert.equal(mayBindPrivileged(25, read), true)
  })
})
