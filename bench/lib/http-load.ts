// A small closed-loop HTTP load generator: C concurrent keep-alive clients each send the next
// request when the previous answered, for a fixed time. Records every latency, so the
// percentiles are exact. Bounded in time and count; talks to loopback only.

import { Agent, request } from 'node:http'

export interface LoadResult {
  requests: number
  errors: number
  seconds: number
  rps: number
  p50_ms: number
  p90_ms: number
  p99_ms: number
  max_ms: number
}

export async function runLoad(opts: {
  url: string
  concurrency: number
  seconds: number
  maxRequests?: number
}): Promise<LoadResult> {
  const u = new URL(opts.url)
  if (u.hostname !== '127.0.0.1') throw new Error('benchmarks talk to 127.0.0.1 only')
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency })
  const latencies: number[] = []
  let errors = 0
  const maxRequests = opts.maxRequests ?? 5_000_000
  const start = performance.now()
  const until = start + opts.seconds * 1000
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now()
      const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, agent }, (res) => {
        res.resume()
        res.on('end', () => {
          if (res.statusCode === 200) latencies.push(performance.now() - t0)
          else errors++
          resolve()
        })
      })
      req.on('error', () => {
        errors++
        resolve()
      })
      req.end()
    })
  const worker = async () => {
    while (performance.now() < until && latencies.length + errors < maxRequests) await one()
  }
  await Promise.all(Array.from({ length: opts.concurrency }, worker))
  const seconds = (performance.now() - start) / 1000
  agent.destroy()
  latencies.sort((a, b) => a - b)
  const pct = (p: number) =>
    round(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0)
  return {
    requests: latencies.length,
    errors,
    seconds: round(seconds),
    rps: Math.round(latencies.length / seconds),
    p50_ms: pct(50),
    p90_ms: pct(90),
    p99_ms: pct(99),
    max_ms: round(latencies.at(-1) ?? 0),
  }
}

const round = (n: number) => Math.round(n * 100) / 100
