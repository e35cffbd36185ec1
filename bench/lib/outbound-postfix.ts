// The Postfix peer of the outbound benchmark: /work/shared/bench-peers/bench-postfix-relay.sh
// run once (BENCH_RUNS=1) with the same message count. It configures Postfix as a relay on
// 127.0.0.1:2525, starts smtp-sink -c on 127.0.0.1:2526, injects N messages of about 5 KB for
// user1@remote.test with smtp-source over 20 sessions (a new connection per message), and times
// the accept (smtp-source done) and the end to end (the sink counted N); then stops Postfix.
// Needs root (it edits Postfix's config). Its key=value output is parsed.

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PEERS_DIR } from './peers.ts'

export interface PostfixRelayRun {
  accepted_per_s: number
  delivered_per_s: number
  /** Every key=value the script printed (last one wins): accept_secs, relay_secs, postfix_cpu_s, loaded_rss_kb... */
  fields: Record<string, string>
  output: string
  rc: number | null
}

export async function runPostfixRelay(o: {
  messages: number
  sessions: number
  timeoutMs: number
}): Promise<PostfixRelayRun> {
  const script = join(PEERS_DIR, 'bench-postfix-relay.sh')
  if (!existsSync(script)) throw new Error(`${script} is missing`)
  const results = mkdtempSync(join(tmpdir(), 'postern-bench-postfix-relay-'))
  const child = spawn('bash', [script], {
    env: {
      ...process.env,
      BENCH_RUNS: '1',
      BENCH_N: String(o.messages),
      BENCH_CONC: String(o.sessions),
      QUIET_MAX: '60',
      RESULTS_DIR: results,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so a timeout can stop all of it
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
  return {
    accepted_per_s: Number(fields.median_accept_msgs_per_sec ?? Number.NaN),
    delivered_per_s: Number(fields.median_relayed_msgs_per_sec ?? Number.NaN),
    fields,
    output: output.trim(),
    rc,
  }
}
