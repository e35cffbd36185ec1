// Debian's Postfix as a real receiving MX for end-to-end tests: a private instance (its own
// config, queue, data and mail directories in a temp folder, nothing under /etc/postfix or
// /var/spool/postfix) whose smtpd listens on 127.0.0.1 at the given port and delivers the
// listed addresses into Maildirs with virtual(8). DNS is off (smtp_dns_support_level =
// disabled): mail Postfix sends back (its DSNs) goes only where `transports` says, so nothing
// leaves loopback. Started with `postfix -c DIR start` as root and stopped with `postfix -c
// DIR stop` (then `abort`, then the master's PID), never by name.

import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { requireTool, TOOLS } from './tools.ts'

export interface PostfixMx {
  port: number
  dir: string
  /** The files delivered to `address` so far (Maildir new/), oldest first. */
  delivered(address: string): Buffer[]
  /** Postfix's own log (maillog_file). */
  log(): string
  stop(): Promise<void>
}

export interface PostfixOptions {
  /** smtpd port on 127.0.0.1 (freePort() picks one). */
  port: number
  hostname: string
  /** Domains whose mail is delivered here, and the addresses that exist. */
  domains: string[]
  mailboxes: string[]
  /** Where mail to other domains goes: domain -> `[127.0.0.1]:port` (Postfix's own DSNs). */
  transports?: Record<string, string>
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

function run(args: string[]): { ok: boolean; out: string } {
  // Postfix writes its errors to stderr only on a terminal; `script` gives it one.
  const r = spawnSync('script', ['-qec', ['/usr/sbin/postfix', ...args].join(' '), '/dev/null'], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` }
}

const id = (flag: '-u' | '-g', name: string) =>
  Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim())

const SERVICES = [
  'cleanup unix n - n - 0 cleanup',
  'qmgr unix n - n 300 1 qmgr',
  'rewrite unix - - n - - trivial-rewrite',
  'bounce unix - - n - 0 bounce',
  'defer unix - - n - 0 bounce',
  'trace unix - - n - 0 bounce',
  'verify unix - - n - 1 verify',
  'flush unix n - n 1000? 0 flush',
  'proxymap unix - - n - - proxymap',
  'smtp unix - - n - - smtp',
  'relay unix - - n - - smtp',
  'showq unix n - n - - showq',
  'error unix - - n - - error',
  'retry unix - - n - - error',
  'discard unix - - n - - discard',
  'virtual unix - n n - - virtual',
  'anvil unix - - n - 1 anvil',
  'scache unix - - n - 1 scache',
  'postlog unix-dgram n - n - 1 postlogd',
]

export async function startPostfix(o: PostfixOptions): Promise<PostfixMx> {
  requireTool(TOOLS.postfix)
  const dir = mkdtempSync(join(tmpdir(), 'postern-postfix-'))
  chmodSync(dir, 0o755) // the postfix user's daemons must reach the queue and mail folders
  const uid = id('-u', 'postfix')
  const gid = id('-g', 'postfix')
  for (const d of ['queue', 'data', 'mail']) mkdirSync(join(dir, d), { mode: 0o755 })
  chownSync(join(dir, 'data'), uid, gid)
  chownSync(join(dir, 'mail'), uid, gid)
  const inline = (pairs: [string, string][]) =>
    pairs.length ? `inline:{ ${pairs.map(([k, v]) => `${k}=${v}`).join(', ')} }` : ''
  const maildir = (a: string) => {
    const [local, domain] = a.split('@') as [string, string]
    return `${domain}/${local}/`
  }
  const main = [
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    `myhostname = ${o.hostname}`,
    'mydestination =',
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    'smtp_dns_support_level = disabled',
    'smtputf8_enable = yes',
    `maillog_file_prefixes = ${dir}`,
    `maillog_file = ${dir}/maillog`,
    'alias_maps =',
    'alias_database =',
    `virtual_mailbox_domains = ${o.domains.join(', ')}`,
    `virtual_mailbox_base = ${dir}/mail`,
    `virtual_mailbox_maps = ${inline(o.mailboxes.map((a) => [a, maildir(a)]))}`,
    `virtual_uid_maps = static:${uid}`,
    `virtual_gid_maps = static:${gid}`,
    'virtual_minimum_uid = 1',
    `transport_maps = ${inline(Object.entries(o.transports ?? {}).map(([d, t]) => [d, `smtp:${t}`]))}`,
    'default_transport = error',
    'relay_transport = error',
    'queue_run_delay = 1s',
    'minimal_backoff_time = 1s',
    'maximal_backoff_time = 2s',
    '',
  ].join('\n')
  writeFileSync(join(dir, 'main.cf'), main)
  writeFileSync(
    join(dir, 'master.cf'),
    [`127.0.0.1:${o.port} inet n - n - - smtpd`, ...SERVICES, ''].join('\n'),
  )
  const pidFile = join(dir, 'queue', 'pid', 'master.pid')
  const stop = async () => {
    if (!run(['-c', dir, 'stop']).ok) run(['-c', dir, 'abort'])
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').trim())
      try {
        if (pid > 1) process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const started = run(['-c', dir, 'start'])
  if (!started.ok) {
    const out = started.out
    await stop()
    throw new Error(`postfix did not start: ${out}`)
  }
  // Ready when smtpd answers on the port.
  const until = Date.now() + 20_000
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const c = connect(o.port, '127.0.0.1')
      c.once('data', (d) => {
        c.destroy()
        resolve(d.toString('latin1').startsWith('220'))
      })
      c.once('error', () => resolve(false))
    })
    if (up) break
    if (Date.now() > until) {
      await stop()
      throw new Error(`postfix is not listening on 127.0.0.1:${o.port}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    port: o.port,
    dir,
    delivered(address) {
      const d = join(dir, 'mail', maildir(address), 'new')
      if (!existsSync(d)) return []
      return readdirSync(d)
        .sort()
        .map((f) => readFileSync(join(d, f)))
    },
    log: () => (existsSync(join(dir, 'maillog')) ? readFileSync(join(dir, 'maillog'), 'utf8') : ''),
    stop,
  }
}
