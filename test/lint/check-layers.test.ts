// Tests for scripts/check-layers.ts: each layer rule on a temp fixture tree, the import forms it must
// see (and the comment it must not), the command line's exit code, and the real src/ tree.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { checkLayers, findImports, type Violation } from '../../scripts/check-layers.ts'

const projectRoot = fileURLToPath(new URL('../../', import.meta.url))
const script = join(projectRoot, 'scripts', 'check-layers.ts')

const roots: string[] = []
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true })
})

/** Writes a fixture project (paths relative to its root) and returns the root. */
function fixture(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'postern-layers-'))
  roots.push(root)
  mkdirSync(join(root, 'src'))
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  return root
}

const brief = (vs: Violation[]) => vs.map((v) => `${v.file}:${v.line} ${v.target}`)

describe('checkLayers on fixtures', () => {
  test('a protocol importing the store fails the lint', () => {
    const root = fixture({
      'src/store/db.ts': 'export const db = 1\n',
      'src/smtp/x.ts': "// session\n\nimport { db } from '../store/db.ts'\nexport const y = db\n",
    })
    const vs = checkLayers(root)
    assert.deepEqual(vs, [
      {
        file: 'src/smtp/x.ts',
        line: 3,
        target: 'src/store/db.ts',
        rule: 'protocols (smtp) never import the store; go through a service',
      },
    ])
  })

  test('a protocol importing another protocol is caught', () => {
    const root = fixture({ 'src/imap/x.ts': "import { y } from '../smtp/y.ts'\nexport { y }\n" })
    const vs = checkLayers(root)
    assert.deepEqual(brief(vs), ['src/imap/x.ts:1 src/smtp/y.ts'])
    assert.match(vs[0]!.rule, /protocols \(imap\) never import another protocol \(smtp\)/)
  })

  test('a service importing a protocol is caught, from a nested folder', () => {
    const root = fixture({ 'src/services/a/b.ts': "import { buildApp } from '../../http/app.ts'\n" })
    const vs = checkLayers(root)
    assert.deepEqual(brief(vs), ['src/services/a/b.ts:1 src/http/app.ts'])
    assert.match(vs[0]!.rule, /services never import a protocol \(http\)/)
  })

  test('the store importing a service is caught', () => {
    const root = fixture({ 'src/store/x.ts': "export * from '../services/y.ts'\n" })
    const vs = checkLayers(root)
    assert.deepEqual(brief(vs), ['src/store/x.ts:1 src/services/y.ts'])
    assert.match(vs[0]!.rule, /the store imports only config, log and time/)
  })

  test('type-only imports count', () => {
    const root = fixture({
      'src/http/routes/a.ts': "import type { Database } from '../../store/schema.ts'\n",
      'src/http/routes/b.ts': "import { type Store } from '../../store/db.ts'\n",
      'src/http/routes/c.ts': "export type { Store } from '../../store/db.ts'\n",
      'src/http/routes/d.ts': "export type S = typeof import('../../store/db.ts')\n",
    })
    assert.deepEqual(brief(checkLayers(root)), [
      'src/http/routes/a.ts:1 src/store/schema.ts',
      'src/http/routes/b.ts:1 src/store/db.ts',
      'src/http/routes/c.ts:1 src/store/db.ts',
      'src/http/routes/d.ts:1 src/store/db.ts',
    ])
  })

  test('dynamic and side-effect imports are caught', () => {
    const root = fixture({
      'src/smtp/x.ts': [
        'export async function load() {',
        "  const m = await import('../store/db.ts')",
        '  return m',
        '}',
        "import '../imap/register.ts'",
        '',
      ].join('\n'),
    })
    assert.deepEqual(brief(checkLayers(root)), [
      'src/smtp/x.ts:2 src/store/db.ts',
      'src/smtp/x.ts:5 src/imap/register.ts',
    ])
  })

  test('multi-line import clauses report the line of the keyword', () => {
    const root = fixture({
      'src/log/x.ts':
        "const a = 1\nexport {\n  a,\n}\nimport {\n  b,\n  from,\n} from '../config/y.ts'\nimport {\n  c,\n} from '../store/z.ts'\n",
    })
    assert.deepEqual(brief(checkLayers(root)), ['src/log/x.ts:9 src/store/z.ts'])
  })

  test('imports in comments and strings are ignored', () => {
    const root = fixture({
      'src/smtp/x.ts': [
        "// import { db } from '../store/db.ts'",
        "/* import '../store/db.ts'",
        "   export * from '../store/db.ts' */",
        'const s = "import { db } from \'../store/db.ts\'"',
        "const t = `import('../store/db.ts')`",
        "const r = /import '..\\/store\\/db.ts'/",
        'export const q = s + t + String(r) // /* not a comment start',
        "import { ok } from '../services/ok.ts'",
        'export { ok }',
        '',
      ].join('\n'),
    })
    assert.deepEqual(checkLayers(root), [])
  })

  test('allowed directions pass', () => {
    const root = fixture({
      'src/main.ts': "import '../src/store/db.ts'\nimport '../src/http/app.ts'\nimport './smtp/server.ts'\n",
      'src/cli/serve.ts':
        "import { start } from '../main.ts'\nimport fs from 'node:fs'\nimport Fastify from 'fastify'\n",
      'src/http/routes/domains.ts':
        "import { domains } from '../../services/domains/index.ts'\nimport type { Config } from '../../config/schema.ts'\nimport { x } from '../plugins/auth.ts'\n",
      'src/smtp/session.ts':
        "import { verify } from '../mail/auth.ts'\nimport { connect } from '../net/connect.ts'\n",
      'src/services/domains/index.ts':
        "import type { Store } from '../../store/db.ts'\nimport { q } from '../queue/add.ts'\nimport { r } from '../../dns/resolver.ts'\n",
      'src/mail/x.ts':
        "import { r } from '../dns/resolver.ts'\nimport { t } from '../tls/ctx.ts'\nimport { c } from '../time/clock.ts'\n",
      'src/store/db.ts':
        "import type { Config } from '../config/schema.ts'\nimport { log } from '../log/logger.ts'\n",
      'src/config/load.ts': "import { log } from '../log/logger.ts'\nimport { c } from '../time/clock.ts'\n",
    })
    assert.deepEqual(checkLayers(root), [])
  })

  test('only cli may import main.ts, and nothing below services may import upward', () => {
    const root = fixture({
      'src/http/x.ts': "import '../main.ts'\n",
      'src/services/x.ts': "import '../main.ts'\n",
      'src/mail/x.ts': "import '../services/y.ts'\nimport '../store/db.ts'\n",
      'src/config/x.ts': "import '../dns/resolver.ts'\n",
    })
    assert.deepEqual(brief(checkLayers(root)), [
      'src/config/x.ts:1 src/dns/resolver.ts',
      'src/http/x.ts:1 src/main.ts',
      'src/mail/x.ts:1 src/services/y.ts',
      'src/mail/x.ts:2 src/store/db.ts',
      'src/services/x.ts:1 src/main.ts',
    ])
  })

  test('an unknown top-level folder is reported, as is an import into it', () => {
    const root = fixture({
      'src/utils/x.ts': "import '../store/db.ts'\n",
      'src/http/y.ts': "import '../utils/x.ts'\n",
      'src/stray.ts': 'export {}\n',
    })
    const vs = checkLayers(root)
    assert.deepEqual(brief(vs), [
      'src/http/y.ts:1 src/utils/x.ts',
      'src/stray.ts:0 src/stray.ts',
      'src/utils/:0 src/utils/',
    ])
    assert.match(vs[2]!.rule, /src\/utils is not in the layer table; add it to LAYERS/)
  })

  test('src/ never imports from test/, bench/ or scripts/', () => {
    const root = fixture({
      'src/main.ts': "import '../test/helpers/x.ts'\n",
      'src/services/x.ts':
        "import '../../bench/y.ts'\nimport '../../scripts/z.ts'\nimport '../../package.json'\n",
    })
    assert.deepEqual(brief(checkLayers(root)), [
      'src/main.ts:1 test/helpers/x.ts',
      'src/services/x.ts:1 bench/y.ts',
      'src/services/x.ts:2 scripts/z.ts',
    ])
  })
})

describe('findImports', () => {
  test('ignores import.meta, member names and non-literal dynamic imports', () => {
    const text = [
      'const u = import.meta.url',
      'obj.import("./a.ts")',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: this is source text for the tokenizer
      'await import(`./${name}.ts`)',
      "await import('./b.ts', { with: { type: 'json' } })",
      "export const from = 'x'",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: this is source text for the tokenizer
      'const tpl = `a ${`nested ${1}`} b`',
      "import c from './c.ts'",
    ].join('\n')
    assert.deepEqual(findImports(text), [
      { specifier: './b.ts', line: 4 },
      { specifier: './c.ts', line: 7 },
    ])
  })
})

describe('command line', () => {
  test('exits 1 and prints one line per violation', () => {
    const root = fixture({ 'src/smtp/session.ts': "\nimport { db } from '../store/db.ts'\n" })
    const run = spawnSync(process.execPath, [script, root], { encoding: 'utf8' })
    assert.equal(run.status, 1, run.stderr)
    assert.equal(
      run.stderr,
      'src/smtp/session.ts:2 imports src/store/db.ts: protocols (smtp) never import the store; go through a service\n',
    )
  })

  test('exits 0 with a one-line summary on a clean tree', () => {
    const root = fixture({ 'src/http/app.ts': "import '../services/x.ts'\n" })
    const run = spawnSync(process.execPath, [script, root], { encoding: 'utf8' })
    assert.equal(run.status, 0, run.stderr)
    assert.match(run.stdout, /^check-layers: 1 files under src\/, 1 relative imports, no layer violations\n$/)
  })
})

describe('the real tree', () => {
  test('src/ has no layer violations', () => {
    const vs = checkLayers(projectRoot)
    assert.deepEqual(
      vs.map((v) => `${v.file}:${v.line} imports ${v.target}: ${v.rule}`),
      [],
    )
  })
})
