// The peer tools of /work/shared/bench-peers for the SMTP benchmarks: Postfix's smtp-source as
// the load generator (timed like common.sh's run_source), and the Postfix MX benchmark script
// run once with the same message count and sessions, its key=value output parsed.

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const SMTP_SOURCE = '/usr/sbin/smtp-source'
export const PEERS_DIR = process.env.BENCH_PEERS_DIR ?? '/work/shared/bench-peers'
const TIME = '/usr/bin/time'

export interface SourceRun {
  rc: number | null
  wallS: number
  /** smtp-source's own CPU (user, system), when /usr/bin/time is there. */
  userS: number | null
  sysS: number | null
  stderr: string
}

/**
 * Runs smtp-source: `sessions` parallel sessions, `messages` messages of `length` payload bytes,
 * a new connection per message (its default), HELO `helo`; wall time from spawn to exit.
 */
export async function smtpSource(o: {
  port: number
  messages: number
  sessions: number
  length: number
  from: string
  to: string
  helo: string
  timeoutMs: number
}): Promise<SourceRun> {
  if (!existsSync(SMTP_SOURCE))
    throw new Error(`${SMTP_SOURCE} is missing: run bash ${PEERS_DIR}/install-peers.sh (as root) first`)
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-time-'))
  const timeFile = join(dir, 'time')
  const argv = [
    ...['-s', String(o.sessions), '-l', String(o.length), '-m', String(o.messages)],
    ...['-f', o.from, '-t', o.to, '-M', o.helo, `127.0.0.1:${o.port}`],
  ]
  const withTime = existsSync(TIME)
  const [cmd, args] = withTime
    ? [TIME, ['-f', '%e %U %S', '-o', timeFile, SMTP_SOURCE, ...argv]]
    : [SMTP_SOURCE, argv]
  const t0 = performance.now()
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => {
    if (stderr.length < 4000) stderr += d
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs)
  const rc = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  const wallS = (performance.now() - t0) / 1000
  clearTimeout(timer)
  let userS: number | null = null
  let sysS: number | null = null
  if (withTime && existsSync(timeFile)) {
    const f = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)?.split(' ').map(Number) ?? []
    userS = f[1] ?? null
    sysS = f[2] ?? null
  }
  rmSync(dir, { recursive: true, force: true })
  return { rc, wallS, userS, sysS, stderr: stderr.trim() }
}

export interface PostfixRun {
  accept_msgs_per_sec: number
  delivered_msgs_per_sec: number
  /** Every key=value the script printed (last one wins). */
  fields: Record<string, string>
  output: string
  rc: number | null
}

/**
 * bench-postfix-mx.sh with BENCH_RUNS=1: configures and starts Postfix on 127.0.0.1:2525,
 * sends `messages` messages with smtp-source over `sessions` sessions, waits for Maildir
 * delivery, stops Postfix. Needs root (it edits Postfix's config).
 */
export async function runPostfixMx(o: {
  messages: number
  sessions: number
  timeoutMs: number
}): Promise<PostfixRun> {
  const r = await runPeerScript('bench-postfix-mx.sh', o)
  return {
    ...r,
    accept_msgs_per_sec: Number(r.fields.median_accept_msgs_per_sec ?? Number.NaN),
    delivered_msgs_per_sec: Number(r.fields.median_delivered_msgs_per_sec ?? Number.NaN),
  }
}

/**
 * Runs one of the peers' bench scripts once (BENCH_RUNS=1) with `messages` over `sessions`, in
 * its own process group (a timeout stops all of it), and parses the key=value pairs it prints.
 */
export async function runPeerScript(
  name: string,
  o: { messages: number; sessions: number; timeoutMs: number },
): Promise<{ fields: Record<string, string>; output: string; rc: number | null }> {
  const script = join(PEERS_DIR, name)
  if (!existsSync(script)) throw new Error(`${script} is missing`)
  const results = mkdtempSync(join(tmpdir(), 'postern-bench-peer-'))
  const child = spawn('bash', [script], {
    env: {
      ...process.env,
      BENCH_RUNS: '1',
      BENCH_N: String(o.messages),
      BENCH_CONC: String(o.sessions),
      QUIET_MAX: process.env.BENCH_QUIET_MAX ?? '60',
      RESULTS_DIR: results,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let output = ''
  child.stdout.on('data', (d) => {
    output += d
  })
  child.stderr.on('data', (d) => {
    output += d
  })
  const timer = setTimeout(() => {
    if (child.pid) process.kill(-child.pid, 'SIGKILL')
  }, o.timeoutMs)
  const rc = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  clearTimeout(timer)
  rmSync(results, { recursive: true, force: true })
  const fields: Record<string, string> = {}
  for (const m of output.matchAll(/([a-z_]+)=([^\s]+)/g)) fields[m[1] as string] = m[2] as string
  return { fields, output: output.trim(), rc }
}
