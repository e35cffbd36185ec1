// The Postfix peer of the outbound benchmark's push-back mode (bench/outbound.ts --push-back
// --with-postfix): the bench Postfix configured as the relay recipe does
// (/work/shared/bench-peers/postfix-config.sh relay, smtpd on 127.0.0.1:2525), then pointed at
// pushback-sink.ts on a free loopback port, with its retry timers made as short as Postern's in
// the same run (queue_run_delay, minimal_backoff_time and maximal_backoff_time set to the first
// of outbound.retry_intervals, at least 1 s: Postfix's own defaults of 300 s to 4000 s would
// leave the deferred 5% outside any short run). N messages of about 5 KB are injected over 20
// sessions, a new connection per message (as smtp-source does, which cannot vary recipients),
// message i to u<i>@remote.test. The run ends when the sink counted every deliverable message
// and Postfix's queue is empty (the refused 2% bounced; their bounce messages to the sender go
// through the same sink and are counted apart). Afterwards Postfix is stopped, its queue
// emptied, and the retry settings removed and relayhost put back to the recipe's
// [127.0.0.1]:2526, so the other recipes find the instance as they expect. Needs root.

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { sourceLike } from './mail-gen.ts'
import { PEERS_DIR } from './peers.ts'
import { cpuBusyPct, cpuSnapshot, round2 } from './proc-stats.ts'
import { countAmong, REJECT } from './pushback-rule.ts'
import { sendMessage, toDataBody } from './smtp-client.ts'

const run = promisify(execFile)
const SPOOL = '/var/spool/postfix'
const QUEUES = ['maildrop', 'incoming', 'active', 'deferred', 'hold']
const PUSHBACK_SINK = new URL('./pushback-sink.ts', import.meta.url).pathname

export interface PostfixPushBackRun {
  messages: number
  accepted: number
  accept_s: number
  /** Seconds until the sink counted every deliverable message and the queue was empty. */
  deliver_s: number | null
  accepted_per_s: number
  /** Deliverable recipients / deliver_s. */
  delivered_per_s: number | null
  sink_deferred: number
  sink_rejected: number
  sink_dsn: number
  sink_messages: number
  backoff: string
  postfix_cpu_s: number | null
  sink_cpu_s: number | null
  machine_cpu_pct: number
  idle_rss_mib: number | null
  loaded_rss_mib: number | null
  problems: string[]
}

const sh = async (cmd: string, args: string[]) => (await run(cmd, args, { timeout: 120_000 })).stdout

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/** Files in Postfix's queue directories (hashed subfolders too): 0 means the queue is empty. */
function queued(): number {
  let n = 0
  const walk = (dir: string) => {
    let entries: import('node:fs').Dirent[]
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(dir, e.name))
      else n++
    }
  }
  for (const q of QUEUES) walk(join(SPOOL, q))
  return n
}

/** PIDs of a process and its descendants. */
function tree(root: number): number[] {
  const parent = new Map<number, number>()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
      parent.set(Number(d), Number(f[1]))
    } catch {}
  }
  return [...parent.keys()].filter((p) => {
    for (let q: number | undefined = p; q && q > 1; q = parent.get(q)) if (q === root) return true
    return false
  })
}

/** CPU seconds of a process tree, with the children it already reaped (as common.sh counts). */
function treeCpuS(root: number): number | null {
  let s = 0
  for (const p of tree(root)) {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
      s += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])
    } catch {}
  }
  return s / 100
}

function treeRssMiB(root: number): number | null {
  let kb = 0
  for (const p of tree(root)) {
    try {
      const m = readFileSync(`/proc/${p}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)
      kb += Number(m?.[1] ?? 0)
    } catch {}
  }
  return round2(kb / 1024)
}

/** Postfix time values from the first retry interval (1s, 500ms -> 1s, 2m -> 2m). */
export function postfixBackoff(retryIntervals: string): string {
  const first = (retryIntervals.split(',')[0] ?? '1s').trim()
  const m = /^(\d+)\s*(ms|s|m|h|d)$/.exec(first)
  if (!m) return '1s'
  const n = Number(m[1])
  if (m[2] === 'ms') return `${Math.max(1, Math.ceil(n / 1000))}s`
  return `${Math.max(1, n)}${m[2]}`
}

export async function runPostfixPushBack(o: {
  messages: number
  sessions: number
  retryIntervals: string
  timeoutMs: number
}): Promise<PostfixPushBackRun> {
  if (process.getuid?.() !== 0)
    throw new Error('the Postfix push-back run needs root (it edits Postfix config)')
  const backoff = postfixBackoff(o.retryIntervals)
  const port = await freePort()
  const problems: string[] = []
  let sink: ChildProcess | null = null
  const counts = { mesg: 0, defer: 0, reject: 0, dsn: 0 }
  try {
    await sh('postfix', ['stop']).catch(() => '')
    await sh('bash', [join(PEERS_DIR, 'postfix-config.sh'), 'relay'])
    await sh('postconf', [
      '-e',
      `relayhost = [127.0.0.1]:${port}`,
      `queue_run_delay = ${backoff}`,
      `minimal_backoff_time = ${backoff}`,
      `maximal_backoff_time = ${backoff}`,
    ])
    await sh('postsuper', ['-d', 'ALL']).catch(() => '')
    sink = spawn(process.execPath, [PUSHBACK_SINK, `127.0.0.1:${port}`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let tail = ''
    sink.stdout?.setEncoding('latin1')
    sink.stdout?.on('data', (chunk: string) => {
      tail += chunk
      const end = tail.lastIndexOf('\r')
      if (end < 0) return
      const m = /mesg=(\d+) rcpt=\d+ defer=(\d+) reject=(\d+) dsn=(\d+)/.exec(
        tail.slice(0, end).split('\r').at(-1) ?? '',
      )
      tail = tail.slice(end + 1)
      if (!m) return
      counts.mesg = Number(m[1])
      counts.defer = Number(m[2])
      counts.reject = Number(m[3])
      counts.dsn = Number(m[4])
    })
    await sh('postfix', ['start'])
    await new Promise((r) => setTimeout(r, 2000))
    const master = Number(readFileSync(join(SPOOL, 'pid/master.pid'), 'utf8').trim())
    const idleRss = treeRssMiB(master)
    const sinkPid = sink.pid as number
    const body = (i: number) =>
      toDataBody(
        sourceLike({
          from: 'bench@bench-sender.test',
          to: `u${i}@remote.test`,
          length: 5120,
          id: `pb${i}.${port}`,
        }),
      )
    const rejected = countAmong(o.messages, REJECT)
    const deliverable = o.messages - rejected
    const cpu0 = cpuSnapshot()
    const pf0 = treeCpuS(master)
    const sk0 = treeCpuS(sinkPid)
    const t0 = performance.now()
    let loadedRss: number | null = null
    const rssTimer = setTimeout(() => {
      loadedRss = treeRssMiB(master)
    }, 3000)
    let next = 0
    let accepted = 0
    let firstError: string | null = null
    await Promise.all(
      Array.from({ length: o.sessions }, async () => {
        for (let i = next++; i < o.messages; i = next++) {
          const r = await sendMessage(
            2525,
            { helo: 'client.test', from: 'bench@bench-sender.test', to: `u${i}@remote.test` },
            body(i),
          )
          if (r.code === 250) accepted++
          else firstError ??= `${r.code} ${r.error ?? ''}`
        }
      }),
    )
    const acceptS = (performance.now() - t0) / 1000
    if (accepted !== o.messages)
      problems.push(`Postfix accepted ${accepted} of ${o.messages} (${firstError})`)
    const until = performance.now() + o.timeoutMs
    let done: number | null = null
    while (performance.now() < until) {
      if (counts.mesg >= deliverable && queued() === 0) {
        done = performance.now()
        break
      }
      await new Promise((r) => setTimeout(r, counts.mesg >= deliverable ? 20 : 50))
    }
    clearTimeout(rssTimer)
    const cpu1 = cpuSnapshot()
    const pf1 = treeCpuS(master)
    const sk1 = treeCpuS(sinkPid)
    const deliverS = done === null ? null : (done - t0) / 1000
    if (done === null)
      problems.push(`the sink counted ${counts.mesg} of ${deliverable}; ${queued()} files queued`)
    return {
      messages: o.messages,
      accepted,
      accept_s: round2(acceptS),
      deliver_s: deliverS === null ? null : round2(deliverS),
      accepted_per_s: Math.round(accepted / acceptS),
      delivered_per_s: deliverS === null ? null : Math.round(deliverable / deliverS),
      sink_deferred: counts.defer,
      sink_rejected: counts.reject,
      sink_dsn: counts.dsn,
      sink_messages: counts.mesg,
      backoff,
      postfix_cpu_s: pf0 === null || pf1 === null ? null : round2(pf1 - pf0),
      sink_cpu_s: sk0 === null || sk1 === null ? null : round2(sk1 - sk0),
      machine_cpu_pct: cpuBusyPct(cpu0, cpu1),
      idle_rss_mib: idleRss,
      loaded_rss_mib: loadedRss,
      problems,
    }
  } finally {
    await sh('postfix', ['stop']).catch(() => '')
    await sh('postsuper', ['-d', 'ALL']).catch(() => '')
    await sh('postconf', ['-X', 'queue_run_delay', 'minimal_backoff_time', 'maximal_backoff_time']).catch(
      () => '',
    )
    await sh('postconf', ['-e', 'relayhost = [127.0.0.1]:2526']).catch(() => '')
    sink?.kill()
  }
}
