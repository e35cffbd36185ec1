// Starts `postern serve` as its own process for a benchmark (so client and server each get a
// core), on loopback with a random port over a temp data folder, and reads its peak RSS.

import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface BenchServer {
  url: string
  pid: number
  /** Peak resident set size of the server process so far (VmHWM), in MiB. */
  peakRssMiB(): number
  rssMiB(): number
  stop(): Promise<void>
}

export async function startBenchServer(env: Record<string, string> = {}): Promise<BenchServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'postern-bench-'))
  const bin = new URL('../../bin/postern.mjs', import.meta.url).pathname
  const child = spawn(process.execPath, [bin, 'serve', '--http-port', '0'], {
    env: {
      ...process.env,
      POSTERN_DATA_DIR: dataDir,
      POSTERN_LOG_LEVEL: 'warn',
      POSTERN_SMTP_HOST: '127.0.0.1',
      POSTERN_IMAP_HOST: '127.0.0.1',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'pipe'],
  })
  let err = ''
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr.on('data', (d) => {
      err += d
      const m = err.match(/http +http:\/\/127\.0\.0\.1:(\d+)/)
      if (m) resolve(Number(m[1]))
    })
    child.on('exit', (code) => reject(new Error(`server exited (${code}): ${err}`)))
  })
  const status = (field: string) => {
    const m = readFileSync(`/proc/${child.pid}/status`, 'utf8').match(new RegExp(`${field}:\\s+(\\d+) kB`))
    return Math.round((Number(m?.[1] ?? 0) / 1024) * 10) / 10
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid as number,
    peakRssMiB: () => status('VmHWM'),
    rssMiB: () => status('VmRSS'),
    async stop() {
      const exited = new Promise((r) => child.on('exit', r))
      child.kill('SIGTERM')
      await exited
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
