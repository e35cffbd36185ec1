// Parent side of outbound-load-child.ts: starts the client process (which starts smtp-sink, or
// the push-back sink, on a free loopback port) and runs send jobs in it. run() resolves with the child's report; the
// callback given to it hears the moment the last 202 arrived, so the caller can split its own
// figures into the accept phase and the drain phase.

import { type ChildProcess, fork } from 'node:child_process'
import type { RunJob, RunReport, SinkCounts } from './outbound-load-child.ts'

export type { RunJob, RunReport, SinkCounts } from './outbound-load-child.ts'

export interface OutboundLoad {
  /** smtp-sink's port on 127.0.0.1. */
  port: number
  sinkPid: number
  pid: number
  /** The sink's counters now (messages and sessions since it started). */
  count(): Promise<SinkCounts>
  run(job: RunJob, onAccepted?: (at: number) => void): Promise<RunReport>
  close(): Promise<void>
}

/** pushBack: the receiving MX is pushback-sink.ts (defers 5%, rejects 2%) instead of smtp-sink. */
export async function startOutboundLoad(o: { pushBack?: boolean } = {}): Promise<OutboundLoad> {
  const argv = o.pushBack ? ['push-back'] : []
  const child: ChildProcess = fork(new URL('./outbound-load-child.ts', import.meta.url), argv, {
    execArgv: [], // not the parent's --cpu-prof and the like
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const ready = await new Promise<{ port: number; sinkPid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('load process did not start in 15 s')), 15_000)
    child.once('message', (m: { ready?: boolean; port: number; sinkPid: number; error?: string }) => {
      clearTimeout(timer)
      if (m.ready) resolve(m)
      else reject(new Error(`load process: ${m.error}`))
    })
    child.once('exit', (code) => reject(new Error(`load process exited (${code})`)))
  })
  let nextId = 1
  const handlers = new Map<number, (m: Record<string, unknown>) => void>()
  child.on('message', (m: { id?: number }) => {
    if (m.id !== undefined) handlers.get(m.id)?.(m as Record<string, unknown>)
  })
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  let dead: Error | null = null
  void exited.then(() => {
    dead = new Error('load process exited')
  })
  const ask = <T>(
    msg: Record<string, unknown>,
    done: (m: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<T> => {
    const id = nextId++
    return new Promise<T>((resolve, reject) => {
      if (dead) return reject(dead)
      const timer = setTimeout(() => {
        handlers.delete(id)
        reject(new Error(`load process: no answer in ${timeoutMs} ms`))
      }, timeoutMs)
      const onExit = () => reject(new Error('load process exited'))
      child.once('exit', onExit)
      handlers.set(id, (m) => {
        if (!done(m)) return
        clearTimeout(timer)
        child.off('exit', onExit)
        handlers.delete(id)
        if (typeof m.error === 'string') reject(new Error(`load process: ${m.error}`))
        else resolve(m as T)
      })
      child.send({ ...msg, id })
    })
  }
  return {
    port: ready.port,
    sinkPid: ready.sinkPid,
    pid: child.pid as number,
    count: () => ask<SinkCounts>({ op: 'count' }, () => true, 10_000),
    async run(job, onAccepted) {
      const r = await ask<{ report: RunReport }>(
        { op: 'run', ...job },
        (m) => {
          if (typeof m.accepted === 'number') {
            onAccepted?.(m.accepted)
            return false
          }
          return 'report' in m || 'error' in m
        },
        job.timeoutMs + 60_000,
      )
      return r.report
    },
    async close() {
      if (child.exitCode === null && child.connected) child.send({ op: 'close' })
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}
