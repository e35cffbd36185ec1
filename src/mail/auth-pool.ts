// Off the event loop: SPF, DKIM, DMARC and ARC checks of received mail (verifyMessage) run in
// a worker thread, so the body hashing, header parsing and signature checks of mailauth use
// the second core while the main thread serves SMTP, IMAP and HTTP.
// Invariants:
// - The thread does no network I/O of its own: every DNS question it has is asked back over
//   its port and answered by the main thread's Resolver (the one tests and deployments pin),
//   DnsErrors crossing back with their code, name and type intact.
// - Same answers as verifyMessage inline: the thread calls verifyMessage itself, with a
//   Resolver that forwards to ours.
// - Started on the first message and stopped after idleMs without work, so a server that is
//   not receiving mail holds no second V8 isolate (nor mailauth) in memory.
// - A thread that dies (or cannot start) fails none of its jobs: each is checked again inline.
import { Worker } from 'node:worker_threads'
import { DnsError, type Resolver } from '../dns/resolver.ts'
import type { Logger } from '../log/logger.ts'
import { type AuthVerdict, verifyMessage } from './auth.ts'
import type { FromThread, ResolverMethod, ToThread, VerifyOptions } from './auth-thread-protocol.ts'

export interface AuthPool {
  verify(raw: Buffer, opts: VerifyOptions & { resolver: Resolver }): Promise<AuthVerdict>
  close(): Promise<void>
  readonly stats: { started: number; inThread: number; inline: number }
}

interface Job {
  /** The thread it was given to. */
  w: Worker | null
  raw: Buffer
  opts: VerifyOptions & { resolver: Resolver }
  resolve: (v: AuthVerdict) => void
  reject: (e: unknown) => void
}

const RESOLVER_METHODS: ReadonlySet<string> = new Set<ResolverMethod>([
  'resolveMx',
  'resolveTxt',
  'resolve4',
  'resolve6',
  'resolveCname',
  'resolveSrv',
  'resolvePtr',
])

export function createAuthPool(opts: { log: Logger; idleMs?: number }): AuthPool {
  const idleMs = opts.idleMs ?? 30_000
  const stats = { started: 0, inThread: 0, inline: 0 }
  let worker: Worker | null = null
  let idleTimer: NodeJS.Timeout | null = null
  let seq = 0
  const jobs = new Map<number, Job>()

  const inline = (job: Job) => {
    stats.inline++
    verifyMessage(job.raw, job.opts).then(job.resolve, job.reject)
  }

  function stop(w: Worker) {
    if (worker === w) worker = null
    void w.terminate()
  }

  function armIdle() {
    if (idleTimer) clearTimeout(idleTimer)
    idleTimer = null
    if (jobs.size > 0 || !worker) return
    const w = worker
    idleTimer = setTimeout(() => {
      idleTimer = null
      if (jobs.size === 0) stop(w)
    }, idleMs)
    idleTimer.unref()
  }

  /** The jobs the thread `w` held, checked again inline (it died or failed to start). */
  function orphan(w: Worker, why: unknown) {
    if (worker === w) worker = null
    const held = [...jobs].filter(([, j]) => j.w === w)
    if (held.length)
      opts.log.warn({ err: why, jobs: held.length }, 'auth check thread stopped; checking inline')
    for (const [id, job] of held) {
      jobs.delete(id)
      inline(job)
    }
  }

  function answerDns(w: Worker, msg: Extract<FromThread, { kind: 'dns' }>) {
    const job = jobs.get(msg.job)
    const reply = (m: ToThread) => {
      if (worker === w) w.postMessage(m)
    }
    if (!job || !RESOLVER_METHODS.has(msg.method)) {
      reply({
        kind: 'dns',
        id: msg.id,
        error: { code: 'OTHER', hostname: msg.name, rrtype: 'A', message: 'no such job' },
      })
      return
    }
    const resolver = job.opts.resolver
    ;(resolver[msg.method] as (n: string) => Promise<unknown>)(msg.name).then(
      (value) => reply({ kind: 'dns', id: msg.id, value }),
      (err: unknown) =>
        reply({
          kind: 'dns',
          id: msg.id,
          error:
            err instanceof DnsError
              ? { code: err.code, hostname: err.hostname, rrtype: err.rrtype, message: err.message }
              : {
                  code: 'OTHER',
                  hostname: msg.name,
                  rrtype: 'A',
                  message: String((err as Error)?.message ?? err),
                },
        }),
    )
  }

  function start(): Worker {
    const w = new Worker(new URL('./auth-thread.ts', import.meta.url))
    stats.started++
    w.unref()
    w.on('message', (msg: FromThread) => {
      if (msg.kind === 'dns') return answerDns(w, msg)
      const job = jobs.get(msg.job)
      if (!job) return
      jobs.delete(msg.job)
      if (msg.kind === 'verdict') {
        stats.inThread++
        job.resolve(msg.verdict)
      } else job.reject(Object.assign(new Error(msg.message), { name: msg.name }))
      armIdle()
    })
    w.on('error', (err) => orphan(w, err))
    w.on('exit', (code) => orphan(w, new Error(`auth check thread exited with code ${code}`)))
    return w
  }

  return {
    stats,
    verify(raw, o) {
      return new Promise<AuthVerdict>((resolve, reject) => {
        const job: Job = { w: null, raw, opts: o, resolve, reject }
        if (idleTimer) clearTimeout(idleTimer)
        idleTimer = null
        try {
          worker ??= start()
        } catch (err) {
          opts.log.warn({ err }, 'auth check thread failed to start; checking inline')
          return inline(job)
        }
        const id = ++seq
        job.w = worker
        jobs.set(id, job)
        const { resolver: _, ...plain } = o
        worker.postMessage({ kind: 'verify', job: id, raw, opts: plain } satisfies ToThread)
      })
    },
    async close() {
      if (idleTimer) clearTimeout(idleTimer)
      const w = worker
      worker = null
      if (w) {
        w.removeAllListeners('exit')
        await w.terminate()
        orphan(w, new Error('closing'))
      }
    },
  }
}
