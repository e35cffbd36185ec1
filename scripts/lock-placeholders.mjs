// Adds lockfile entries for optional platform packages this registry does not serve.
//
// Why: the registry reachable here holds only some platforms' binaries of packages such as
// @biomejs/biome or @node-rs/argon2 (for example linux-x64 but not darwin-arm64). `npm install`
// skips an optional dependency it cannot resolve and leaves it out of package-lock.json, and
// then `npm ci` refuses the lockfile ("Missing: ... from lock file"). An entry that names the
// package's platform (os, cpu, libc, inferred from its name) satisfies `npm ci`, which then
// skips it on every other platform without fetching it. Run after any `npm install` that
// changes dependencies: `node scripts/lock-placeholders.mjs`. Idempotent. `--check` (run by
// `npm run lint`) fails when entries are missing, so `npm ci` cannot break unnoticed.

import { readFileSync, writeFileSync } from 'node:fs'

const file = new URL('../package-lock.json', import.meta.url)
const lock = JSON.parse(readFileSync(file, 'utf8'))
const packages = lock.packages

function platformOf(name) {
  const n = name.toLowerCase()
  const os = [
    'darwin',
    'win32',
    'android',
    'freebsd',
    'openharmony',
    'aix',
    'netbsd',
    'openbsd',
    'sunos',
    'linux',
  ].find((o) => n.includes(o))
  const cpu = ['arm64', 'x64', 'ia32', 'arm', 'ppc64', 'riscv64', 's390x', 'loong64', 'mips64el'].find((c) =>
    new RegExp(`[-_]${c}([-_]|$)`).test(n),
  )
  const libc = n.includes('musl')
    ? 'musl'
    : n.includes('gnu') || (os === 'linux' && !n.includes('musl'))
      ? 'glibc'
      : null
  return { os, cpu, libc: os === 'linux' ? libc : null }
}

let added = 0
for (const [path, pkg] of Object.entries(packages)) {
  if (!pkg.optionalDependencies) continue
  const base = path === '' ? '' : `${path}/`
  for (const [dep, version] of Object.entries(pkg.optionalDependencies)) {
    if (packages[`${base}node_modules/${dep}`] || packages[`node_modules/${dep}`]) continue
    const { os, cpu, libc } = platformOf(dep)
    if (!os || !cpu) {
      console.error(`cannot infer the platform of ${dep}; add its entry by hand`)
      process.exitCode = 1
      continue
    }
    packages[`node_modules/${dep}`] = {
      version,
      ...(pkg.dev ? { dev: true } : {}),
      optional: true,
      os: [os],
      cpu: [cpu],
      ...(libc ? { libc: [libc] } : {}),
    }
    added++
  }
}
if (process.argv.includes('--check')) {
  if (added) {
    console.error(
      `package-lock.json lacks ${added} optional platform entries; run: node scripts/lock-placeholders.mjs`,
    )
    process.exit(1)
  }
  process.exit(process.exitCode ?? 0)
}
lock.packages = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
)
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`)
console.log(`lock-placeholders: added ${added} entries`)
