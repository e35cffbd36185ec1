// The worker thread of auth-pool.ts: runs verifyMessage for each job it is sent, asking the
// main thread for every DNS answer (it has no resolver, nor network access, of its own).
import { parentPort } from 'node:worker_threads'
import type { Resolver } from '../dns/resolver.ts'
import { verifyMessage } from './auth.ts'
import { dnsErrorOf, type FromThread, type ResolverMethod, type ToThread } from './auth-thread-protocol.ts'

const port = parentPort
if (!port) throw new Error('auth-thread.ts runs as a worker thread of auth-pool.ts')

const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>()
let seq = 0
const post = (m: FromThread) => port.postMessage(m)

/** A Resolver for job `job` whose every lookup is answered by the main thread. */
function resolverFor(job: number): Resolver {
  const ask =
    (method: ResolverMethod) =>
    (name: string): Promise<never> =>
      new Promise((resolve, reject) => {
        const id = ++seq
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
        post({ kind: 'dns', id, job, method, name })
      })
  return {
    resolveMx: ask('resolveMx'),
    resolveTxt: ask('resolveTxt'),
    resolve4: ask('resolve4'),
    resolve6: ask('resolve6'),
    resolveCname: ask('resolveCname'),
    resolveSrv: ask('resolveSrv'),
    resolvePtr: ask('resolvePtr'),
  }
}

port.on('message', (msg: ToThread) => {
  if (msg.kind === 'dns') {
    const w = waiting.get(msg.id)
    if (!w) return
    waiting.delete(msg.id)
    if (msg.error) w.reject(dnsErrorOf(msg.error))
    else w.resolve(msg.value)
    return
  }
  const raw = Buffer.from(msg.raw.buffer, msg.raw.byteOffset, msg.raw.byteLength)
  verifyMessage(raw, { ...msg.opts, resolver: resolverFor(msg.job) }).then(
    (verdict) => post({ kind: 'verdict', job: msg.job, verdict }),
    (err: Error) =>
      post({
        kind: 'failed',
        job: msg.job,
        name: err?.name ?? 'Error',
        message: String(err?.message ?? err),
      }),
  )
})
