// Benchmark `http`: throughput and latency of the HTTP API under a closed loop of keep-alive
// clients: GET /v1/health (a database query plus the blob store check) and GET
// /v1/setup/status (a database-backed read), plus the server's idle and peak RSS.
// Options: --seconds N (default 5), --concurrency N (default 32). Set POSTERN_DATABASE_URL to
// measure on PostgreSQL instead of SQLite.

import { parseArgs } from 'node:util'
import { runLoad } from './lib/http-load.ts'
import { startBenchServer } from './lib/server.ts'

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { seconds: { type: 'string' }, concurrency: { type: 'string' } },
  })
  const seconds = Number(values.seconds ?? 5)
  const concurrency = Number(values.concurrency ?? 32)
  const server = await startBenchServer()
  try {
    await new Promise((r) => setTimeout(r, 500))
    const idle = server.rssMiB()
    const rows = []
    for (const path of ['/v1/health', '/v1/setup/status']) {
      await runLoad({ url: server.url + path, concurrency, seconds: 1 }) // warm-up
      const r = await runLoad({ url: server.url + path, concurrency, seconds })
      rows.push({ path, ...r })
    }
    const db = process.env.POSTERN_DATABASE_URL ? 'postgres' : 'sqlite'
    console.log(
      `http benchmark: ${db}, ${concurrency} clients, ${seconds}s per route, server pid ${server.pid}`,
    )
    console.log('route                requests   req/s   p50 ms   p90 ms   p99 ms   max ms  errors')
    for (const r of rows)
      console.log(
        `${r.path.padEnd(20)} ${String(r.requests).padStart(8)} ${String(r.rps).padStart(7)} ${String(r.p50_ms).padStart(8)} ${String(r.p90_ms).padStart(8)} ${String(r.p99_ms).padStart(8)} ${String(r.max_ms).padStart(8)} ${String(r.errors).padStart(7)}`,
      )
    console.log(`server RSS: idle ${idle} MiB, peak ${server.peakRssMiB()} MiB`)
    console.log(
      JSON.stringify({
        bench: 'http',
        db,
        concurrency,
        seconds,
        idle_rss_mib: idle,
        peak_rss_mib: server.peakRssMiB(),
        routes: rows,
      }),
    )
  } finally {
    await server.stop()
  }
}
