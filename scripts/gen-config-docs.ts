// Writes docs/config.md from src/config/schema.ts (`npm run docs:config`). A test fails when
// the committed file differs from what this renders, so the reference never goes stale.

import { writeFileSync } from 'node:fs'
import { flatKeys, type KeyDef } from '../src/config/schema.ts'

function shownDefault(def: KeyDef<unknown>): string {
  if (def.derived) return def.derived
  if (def.default === null) return 'unset'
  if (Array.isArray(def.default)) return def.default.length ? def.default.join(',') : '(empty)'
  return String(def.default)
}

export function renderConfigDocs(): string {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run docs:config`; do not edit by hand. -->',
    '',
    'Postern reads its configuration once at start, in this order, each source overriding the one before:',
    'built-in defaults, the JSON config file (`postern.config.json` in the working folder, or the path given',
    'with `--config` or `POSTERN_CONFIG`), `POSTERN_*` environment variables, then command-line flags.',
    'Nested keys are objects in the file (`{"http": {"port": 8080}}`). Lists are comma-separated in the',
    'environment and in flags. `npx postern config` prints the effective configuration with secrets',
    'redacted; `npx postern config --sources` shows where each value came from.',
    '',
    '| key | type | default | environment | flag | description |',
    '|---|---|---|---|---|---|',
  ]
  for (const k of flatKeys()) {
    const type =
      k.def.kind === 'enum' ? k.def.values?.join(' \\| ') : k.def.kind === 'list' ? 'list' : k.def.kind
    const secret = k.def.secret ? ' Secret: redacted in output.' : ''
    lines.push(
      `| \`${k.path}\` | ${type}${k.def.nullable ? ' or unset' : ''} | \`${shownDefault(k.def)}\` | \`${k.env}\` | \`${k.flag}\` | ${k.def.doc}${secret} |`,
    )
  }
  lines.push('')
  lines.push('Mail listener ports left unset use the standard port when the process may bind it (root,')
  lines.push(
    'CAP_NET_BIND_SERVICE, or a lowered `net.ipv4.ip_unprivileged_port_start`) and otherwise the fallback:',
  )
  lines.push(
    '25 -> 2025, 587 -> 2587, 465 -> 2465, 143 -> 2143, 993 -> 2993. Any port set to 0 is chosen by the system.',
  )
  lines.push('')
  return lines.join('\n')
}

if (import.meta.main) {
  writeFileSync(new URL('../docs/config.md', import.meta.url), renderConfigDocs())
  process.stdout.write('wrote docs/config.md\n')
}
