// Debian tools that some tests need (an independent DKIM verifier, isync's mbsync, Postfix as
// a receiving MX; Chromium tomorrow), and the one rule for when one is missing: outside CI the
// test is skipped with one line naming the package to install (the runner counts it as
// skipped, not passed); under CI=true it runs and fails at once, saying what to install (.ci/run installs them).
// A new tool is one entry in TOOLS.

import { spawnSync } from 'node:child_process'

export interface DebianTool {
  /** What the skip line calls it. */
  name: string
  /** The Debian package(s) that provide it. */
  packages: string
  /** True when the tool works on this machine (run once, then cached). */
  present: () => boolean
}

const runs = (cmd: string, args: string[]) => () => {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 })
  return r.status === 0
}

export const TOOLS = {
  python3Dkim: {
    name: 'python3-dkim',
    packages: 'python3-dkim python3-dnspython',
    present: runs('/usr/bin/python3', ['-c', 'import dkim, dns.resolver']),
  },
  python3: { name: 'python3', packages: 'python3', present: runs('/usr/bin/python3', ['--version']) },
  mbsync: { name: 'mbsync (isync)', packages: 'isync', present: runs('mbsync', ['--version']) },
  // Postfix as a receiving MX (test/helpers/postfix.ts); its master must start as root.
  postfix: {
    name: 'postfix (run as root)',
    packages: 'postfix',
    present: () => process.getuid?.() === 0 && runs('/usr/sbin/postconf', ['-h', 'mail_version'])(),
  },
} satisfies Record<string, DebianTool>

const cache = new Map<DebianTool, boolean>()
const isPresent = (t: DebianTool) => {
  let v = cache.get(t)
  if (v === undefined) {
    v = t.present()
    cache.set(t, v)
  }
  return v
}

const hint = (t: DebianTool) => `apt-get install ${t.packages}`
const inCi = () => process.env.CI === 'true'

/**
 * Test options for a test that needs these tools: `it('...', needs(TOOLS.mbsync), fn)`.
 * Outside CI a missing tool skips the test with the install hint; under CI the test runs and
 * should call requireTool first so it fails with the same hint.
 */
export function needs(...tools: DebianTool[]): { skip?: string } {
  const missing = tools.filter((t) => !isPresent(t))
  if (missing.length === 0 || inCi()) return {}
  return { skip: `${missing.map((t) => t.name).join(', ')} missing: ${missing.map(hint).join('; ')}` }
}

/** Throws with the install hint when the tool is missing (the CI=true failure). */
export function requireTool(t: DebianTool): void {
  if (!isPresent(t))
    throw new Error(
      `${t.name} is needed by this test and is missing${inCi() ? ' (CI=true)' : ''}: ${hint(t)}`,
    )
}
