// Parent side of smtp-load-child.ts: runs the latency probe alongside smtp-source, and the
// size-mix load generator, each in a child process of its own.

import { type ChildProcess, fork } from 'node:child_process'
import type { ChildJob, LoadReport } from './smtp-load-child.ts'

export type { LoadReport } from './smtp-load-child.ts'

interface Child {
  proc: ChildProcess
  next<T>(pick: (m: Record<string, unknown>) => boolean, timeoutMs: number): Promise<T>
}

async function startChild(): Promise<Child> {
  const proc = fork(new URL('./smtp-load-child.ts', import.meta.url), [], {
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const inbox: Record<string, unknown>[] = []
  const waiters: { pick: (m: Record<string, unknown>) => boolean; resolve: (m: unknown) => void }[] = []
  proc.on('message', (m: Record<string, unknown>) => {
    const i = waiters.findIndex((w) => w.pick(m))
    if (i >= 0) waiters.splice(i, 1)[0]?.resolve(m)
    else inbox.push(m)
  })
  let exited = false
  proc.once('exit', () => {
    exited = true
  })
  const child: Child = {
    proc,
    next<T>(pick: (m: Record<string, unknown>) => boolean, timeoutMs: number) {
      const i = inbox.findIndex(pick)
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0] as T)
      return new Promise<T>((resolve, reject) => {
        if (exited) return reject(new Error('load child exited'))
        const onExit = () => reject(new Error('load child exited'))
        const timer = setTimeout(
          () => reject(new Error(`load child: no answer in ${timeoutMs} ms`)),
          timeoutMs,
        )
        proc.once('exit', onExit)
        waiters.push({
          pick,
          resolve: (m) => {
            clearTimeout(timer)
            proc.off('exit', onExit)
            resolve(m as T)
          },
        })
      })
    },
  }
  await child.next((m) => m.started === true, 15_000)
  return child
}

const stopChild = (c: Child) => {
  if (c.proc.exitCode === null) c.proc.kill()
}

export interface Probe {
  /** Stops after the message in flight and returns what it measured. */
  stop(): Promise<LoadReport>
}

export async function startProbe(job: Omit<Extract<ChildJob, { mode: 'probe' }>, 'mode'>): Promise<Probe> {
  const c = await startChild()
  c.proc.send({ mode: 'probe', ...job })
  return {
    async stop() {
      c.proc.send({ op: 'stop' })
      try {
        return (await c.next<{ report: LoadReport }>((m) => 'report' in m, 120_000)).report
      } finally {
        stopChild(c)
      }
    },
  }
}

export interface MixRun {
  meanBytes: number
  /** Starts sending and resolves when every message was answered. */
  go(timeoutMs: number): Promise<LoadReport>
  abort(): void
}

/** Prepares the size-mix load (builds and signs the pool) without sending yet. */
export async function prepareMix(job: Omit<Extract<ChildJob, { mode: 'load' }>, 'mode'>): Promise<MixRun> {
  const c = await startChild()
  c.proc.send({ mode: 'load', ...job })
  const ready = await c.next<{ meanBytes: number }>((m) => m.ready === true, 300_000)
  return {
    meanBytes: ready.meanBytes,
    async go(timeoutMs) {
      c.proc.send({ op: 'go' })
      try {
        return (await c.next<{ report: LoadReport }>((m) => 'report' in m, timeoutMs)).report
      } finally {
        stopChild(c)
      }
    },
    abort: () => stopChild(c),
  }
}
