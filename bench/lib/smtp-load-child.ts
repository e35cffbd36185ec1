// Child process of the SMTP benchmarks: sends mail to the MX under test from its own process
// (its own core), as smtp-source does, and reports end-of-DATA latencies. Driven over IPC by
// smtp-load.ts. Two modes:
// - probe: one session at a time, one message per connection, at most one message per
//   intervalMs, smtp-source-like messages, until told { op: 'stop' }.
// - load: `sessions` parallel sessions send `messages` messages (one per connection) drawn in
//   turn from a pool of mail-gen.ts mix messages; the pool is built (and signed) before the
//   parent says { op: 'go' }, so only sending is timed.
// Either way it answers with a LoadReport. Loopback only; bounded by count and timeouts.

import { mixPool, sourceLike } from './mail-gen.ts'
import { type Envelope, type SendResult, sendMessage, toDataBody } from './smtp-client.ts'

export type ChildJob =
  | { mode: 'probe'; port: number; env: Envelope; intervalMs: number; length: number; maxMessages: number }
  | {
      mode: 'load'
      port: number
      env: Envelope
      sessions: number
      messages: number
      pool: number
      minBytes: number
      maxBytes: number
      seed: number
      dkimKeyPem: string | null
    }

export interface LoadReport {
  sent: number
  ok: number
  failed: number
  /** Reply codes that were not 250 (0: connection or protocol failure), with counts. */
  codes: Record<string, number>
  firstError: string | null
  /** End-of-DATA latencies of the accepted messages, in ms. */
  latencies: number[]
  wallMs: number
  bytes: number
  meanBytes: number
}

const send = (m: unknown) => process.send?.(m)
let stopping = false
process.on('disconnect', () => process.exit(0))

function recorder() {
  const r: LoadReport = {
    sent: 0,
    ok: 0,
    failed: 0,
    codes: {},
    firstError: null,
    latencies: [],
    wallMs: 0,
    bytes: 0,
    meanBytes: 0,
  }
  return {
    r,
    add(res: SendResult, bytes: number) {
      r.sent++
      r.bytes += bytes
      if (res.code === 250 && res.dataMs !== null) {
        r.ok++
        r.latencies.push(Math.round(res.dataMs * 1000) / 1000)
      } else {
        r.failed++
        r.codes[res.code] = (r.codes[res.code] ?? 0) + 1
        r.firstError ??= res.error ?? `reply ${res.code}`
      }
    },
  }
}

async function probe(job: Extract<ChildJob, { mode: 'probe' }>): Promise<LoadReport> {
  const rec = recorder()
  const start = performance.now()
  for (let i = 0; !stopping && i < job.maxMessages; i++) {
    const t = performance.now()
    const body = toDataBody(
      sourceLike({ from: job.env.from, to: job.env.to, length: job.length, id: `probe.${process.pid}.${i}` }),
    )
    rec.add(await sendMessage(job.port, job.env, body), body.length)
    const wait = job.intervalMs - (performance.now() - t)
    if (wait > 0 && !stopping) await new Promise((r) => setTimeout(r, wait))
  }
  rec.r.wallMs = performance.now() - start
  return rec.r
}

async function load(job: Extract<ChildJob, { mode: 'load' }>): Promise<LoadReport> {
  const pool = (
    await mixPool({
      count: job.pool,
      minBytes: job.minBytes,
      maxBytes: job.maxBytes,
      from: job.env.from,
      to: job.env.to,
      seed: job.seed,
      dkimKeyPem: job.dkimKeyPem,
    })
  ).map(toDataBody)
  await new Promise<void>((resolve) => {
    process.on('message', (m: { op: string }) => m.op === 'go' && resolve())
    send({ ready: true, meanBytes: pool.reduce((s, b) => s + b.length, 0) / pool.length })
  })
  const rec = recorder()
  let next = 0
  const start = performance.now()
  const worker = async () => {
    for (let i = next++; i < job.messages && !stopping; i = next++) {
      const body = pool[i % pool.length] as Buffer
      rec.add(await sendMessage(job.port, job.env, body), body.length)
    }
  }
  await Promise.all(Array.from({ length: job.sessions }, worker))
  rec.r.wallMs = performance.now() - start
  return rec.r
}

process.once('message', async (job: ChildJob) => {
  process.on('message', (m: { op?: string }) => {
    if (m.op === 'stop') stopping = true
  })
  const report = job.mode === 'probe' ? await probe(job) : await load(job)
  report.meanBytes = report.sent ? report.bytes / report.sent : 0
  send({ report })
})
send({ started: true })
