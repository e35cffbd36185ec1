// Per-host certificates from tls.sni_dir, picked by the name a client sends in SNI.
// File naming: `<host>.crt` with `<host>.key` (e.g. `mail.example.com.crt`). A wildcard
// certificate for `*.example.com` is stored as `_wildcard.example.com.crt` / `.key` (mkcert's
// convention, since `*` is awkward in file names). Host names are matched case-insensitively
// and without a trailing dot; a wildcard stands for exactly one leftmost label.
// Invariant: the map holds only pairs that passed loadKeyPair; other files in the folder are ignored.

import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../log/logger.ts'
import { type KeyPair, loadKeyPair } from './pem.ts'

const WILDCARD_PREFIX = '_wildcard.'

/** Host name a certificate file stands for: `_wildcard.example.com.crt` -> `*.example.com`. */
export function hostFromFileName(base: string): string {
  const host = base.toLowerCase()
  return host.startsWith(WILDCARD_PREFIX) ? `*.${host.slice(WILDCARD_PREFIX.length)}` : host
}

/** Names to try for a requested server name, most specific first: exact, then `*.parent`. */
export function sniCandidates(servername: string): string[] {
  const name = servername.toLowerCase().replace(/\.$/, '')
  if (!name) return []
  const dot = name.indexOf('.')
  return dot > 0 && name.indexOf('.', dot + 1) > 0 ? [name, `*${name.slice(dot)}`] : [name]
}

/** The `.crt` and `.key` files in the folder, for watching; empty when it cannot be read. */
export async function sniFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir))
      .filter((f) => f.endsWith('.crt') || f.endsWith('.key'))
      .map((f) => join(dir, f))
  } catch {
    return []
  }
}

/** Loads every pair in the folder; problems (unreadable folder, missing partner, bad pair) are appended. */
export async function loadSniDir(
  dir: string,
  log: Logger,
  problems: string[],
): Promise<Map<string, KeyPair>> {
  const out = new Map<string, KeyPair>()
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    problems.push(`tls.sni_dir ${dir}: cannot read folder (${e.code ?? e.message})`)
    return out
  }
  const certs = new Set(names.filter((n) => n.endsWith('.crt')).map((n) => n.slice(0, -4)))
  const keys = new Set(names.filter((n) => n.endsWith('.key')).map((n) => n.slice(0, -4)))
  for (const base of keys)
    if (!certs.has(base)) problems.push(`tls.sni_dir ${join(dir, `${base}.key`)}: no ${base}.crt next to it`)
  for (const base of [...certs].sort()) {
    const certFile = join(dir, `${base}.crt`)
    if (!keys.has(base)) {
      problems.push(`tls.sni_dir ${certFile}: no ${base}.key next to it`)
      continue
    }
    const host = hostFromFileName(base)
    if (out.has(host)) {
      problems.push(`tls.sni_dir ${certFile}: a second certificate for ${host} (names differ only in case)`)
      continue
    }
    const label = 'SNI certificate'
    const pair = await loadKeyPair(
      { certFile, keyFile: join(dir, `${base}.key`), certLabel: label, keyLabel: 'SNI key' },
      problems,
    )
    if (!pair) continue
    const probe = host.startsWith('*.') ? `sni-probe${host.slice(1)}` : host
    if (pair.x509.checkHost(probe) === undefined)
      log.warn(
        { cert_file: certFile, host },
        'SNI certificate does not cover the host name its file is named after',
      )
    out.set(host, pair)
  }
  return out
}
