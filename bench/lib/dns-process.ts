// Parent side of dns-child.ts: starts the loopback DNS server in its own process and offers
// the part of test/helpers/dns-server.ts's DnsServer that the benchmarks use (set, servers),
// plus query counts. set() is asynchronous over IPC but ordered: call sync() (any request
// that waits for an answer) before relying on it.

import { type ChildProcess, fork } from 'node:child_process'
import type { RecordType } from '../../src/dns/resolver.ts'
import type { ZoneValue } from '../../src/dns/static-zone.ts'

export interface DnsStats {
  queries: number
  /** Questions by "TYPE name". */
  byName: Record<string, number>
}

export interface DnsProcess {
  port: number
  servers: string[]
  pid: number
  set<T extends RecordType>(name: string, type: T, records: ZoneValue<T> | undefined): void
  /** Query counts so far; also a barrier: every earlier set() has been applied. */
  stats(): Promise<DnsStats>
  close(): Promise<void>
}

export async function startDnsProcess(): Promise<DnsProcess> {
  const child: ChildProcess = fork(new URL('./dns-child.ts', import.meta.url), [], {
    execArgv: [], // not the parent's --cpu-prof and the like
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('DNS server process did not start in 10 s')), 10_000)
    child.once('message', (m: { port: number }) => {
      clearTimeout(timer)
      resolve(m.port)
    })
    child.once('exit', (code) => reject(new Error(`DNS server process exited (${code})`)))
  })
  let nextId = 1
  const waiting = new Map<number, (s: DnsStats) => void>()
  child.on('message', (m: { id?: number } & DnsStats) => {
    if (m.id !== undefined) waiting.get(m.id)?.(m)
  })
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  return {
    port,
    servers: [`127.0.0.1:${port}`],
    pid: child.pid as number,
    set(name, type, records) {
      child.send({ op: 'set', name, type, records })
    },
    stats() {
      const id = nextId++
      return new Promise<DnsStats>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('DNS server process did not answer')), 10_000)
        waiting.set(id, (s) => {
          clearTimeout(timer)
          waiting.delete(id)
          resolve(s)
        })
        child.send({ op: 'stats', id })
      })
    },
    async close() {
      if (child.exitCode === null && child.connected) child.send({ op: 'close' })
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}
