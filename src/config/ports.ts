// Resolves the mail listener ports. A port left unset (null) means "the standard port when this
// process may bind it, otherwise the documented unprivileged fallback"; an explicit port, 0
// included, is used as given. The decision is made once at start and reported by the caller.

import { readFileSync } from 'node:fs'
import type { Config } from './schema.ts'

export interface MailPort {
  /** Listener name used in logs and health: smtp-mx, smtp-submission, ... */
  name: 'smtp-mx' | 'smtp-submission' | 'smtp-submissions' | 'imap' | 'imaps'
  host: string
  port: number
  standard: number
  /** True when the standard port was wanted but could not be bound by this process. */
  fellBack: boolean
}

const TABLE = [
  {
    name: 'smtp-mx',
    get: (c: Config) => c.smtp.mx_port,
    host: (c: Config) => c.smtp.host,
    standard: 25,
    fallback: 2025,
  },
  {
    name: 'smtp-submission',
    get: (c: Config) => c.smtp.submission_port,
    host: (c: Config) => c.smtp.host,
    standard: 587,
    fallback: 2587,
  },
  {
    name: 'smtp-submissions',
    get: (c: Config) => c.smtp.submissions_port,
    host: (c: Config) => c.smtp.host,
    standard: 465,
    fallback: 2465,
  },
  {
    name: 'imap',
    get: (c: Config) => c.imap.port,
    host: (c: Config) => c.imap.host,
    standard: 143,
    fallback: 2143,
  },
  {
    name: 'imaps',
    get: (c: Config) => c.imap.tls_port,
    host: (c: Config) => c.imap.host,
    standard: 993,
    fallback: 2993,
  },
] as const

/**
 * Whether this process may bind ports below 1024: root, CAP_NET_BIND_SERVICE, or a lowered
 * net.ipv4.ip_unprivileged_port_start. `read` is injected so tests can play each case.
 */
export function mayBindPrivileged(
  port: number,
  read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): boolean {
  if (process.getuid?.() === 0) return true
  try {
    const start = Number(read('/proc/sys/net/ipv4/ip_unprivileged_port_start').trim())
    if (Number.isInteger(start) && port >= start) return true
  } catch {}
  try {
    const capEff = /CapEff:\s*([0-9a-f]+)/i.exec(read('/proc/self/status'))?.[1]
    if (capEff && (BigInt(`0x${capEff}`) & (1n << 10n)) !== 0n) return true // CAP_NET_BIND_SERVICE = 10
  } catch {}
  return false
}

export function resolveMailPorts(
  config: Config,
  mayBind: (port: number) => boolean = mayBindPrivileged,
): MailPort[] {
  return TABLE.map((row) => {
    const explicit = row.get(config)
    if (explicit !== null)
      return {
        name: row.name,
        host: row.host(config),
        port: explicit,
        standard: row.standard,
        fellBack: false,
      }
    const ok = mayBind(row.standard)
    return {
      name: row.name,
      host: row.host(config),
      port: ok ? row.standard : row.fallback,
      standard: row.standard,
      fellBack: !ok,
    }
  })
}
