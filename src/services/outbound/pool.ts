// Outbound SMTP connections: a global limit, a limit per destination server (ip:port), and
// reuse of idle sessions so a stream of messages to one server does not pay a connection,
// an EHLO and a TLS handshake each. Mechanism only: which server to use is deliver.ts's call.
// Invariants:
// - At most `concurrency` sessions are in use at once, and `perDestination` per ip:port;
//   callers wait (in order) for a slot.
// - A session is reused only while `usable`, for at most MAX_USES transactions, and is closed
//   after IDLE_MS unused.
// - Trace steps of a reused session go to whoever holds it now.

import type { DeliveryTarget, SessionOptions, SmtpSession, TraceStep, Transport } from './transport.ts'

const IDLE_MS = 3000
const MAX_USES = 100

interface Slot {
  session: SmtpSession
  key: string
  uses: number
  sink: ((s: TraceStep) => void) | null
  idleTimer: NodeJS.Timeout | null
}

export interface Lease {
  session: SmtpSession
  /** True when this lease opened the connection (its connect and TLS steps were traced). */
  fresh: boolean
  /** Gives the session back; `reuse` false closes it. */
  release(reuse: boolean): void
}

class Gate {
  private used = 0
  private waiting: (() => void)[] = []
  private readonly limit: number
  constructor(limit: number) {
    this.limit = limit
  }
  async enter(): Promise<void> {
    if (this.used < this.limit) {
      this.used++
      return
    }
    await new Promise<void>((r) => this.waiting.push(r))
  }
  leave(): void {
    const next = this.waiting.shift()
    if (next) next()
    else this.used--
  }
}

export interface ConnectionPool {
  acquire(
    target: DeliveryTarget,
    opts: Omit<SessionOptions, 'onTrace'>,
    sink: (s: TraceStep) => void,
  ): Promise<Lease>
  /** Closes every idle session (shutdown). */
  close(): Promise<void>
  readonly stats: { opened: number; reused: number }
}

export function createConnectionPool(deps: {
  transport: Transport
  concurrency: number
  perDestination: number
}): ConnectionPool {
  const global = new Gate(deps.concurrency)
  const perDest = new Map<string, Gate>()
  const idle = new Map<string, Slot[]>()
  const stats = { opened: 0, reused: 0 }
  let closed = false

  const gateFor = (k: string) => {
    let g = perDest.get(k)
    if (!g) {
      g = new Gate(deps.perDestination)
      perDest.set(k, g)
    }
    return g
  }

  const takeIdle = (key: string): Slot | null => {
    const list = idle.get(key)
    while (list?.length) {
      const slot = list.pop() as Slot
      if (slot.idleTimer) clearTimeout(slot.idleTimer)
      slot.idleTimer = null
      if (slot.session.usable) return slot
      void slot.session.close()
    }
    return null
  }

  const park = (slot: Slot) => {
    if (closed || !slot.session.usable || slot.uses >= MAX_USES) {
      void slot.session.close()
      return
    }
    slot.sink = null
    const list = idle.get(slot.key) ?? []
    idle.set(slot.key, list)
    list.push(slot)
    slot.idleTimer = setTimeout(() => {
      const i = list.indexOf(slot)
      if (i >= 0) list.splice(i, 1)
      void slot.session.close()
    }, IDLE_MS)
    slot.idleTimer.unref()
  }

  return {
    stats,
    async acquire(target, opts, sink) {
      const dest = `${target.ip}:${target.port}`
      // A session opened without certificate checks is never lent to a caller that requires them.
      const key = `${dest}|${target.host}|${opts.tls}|${opts.verifyCertificate}|${opts.auth?.user ?? ''}|${opts.helo}`
      await global.enter()
      const gate = gateFor(dest)
      await gate.enter()
      const leave = () => {
        gate.leave()
        global.leave()
      }
      let slot = takeIdle(key)
      const fresh = slot === null
      if (slot) {
        stats.reused++
        slot.sink = sink
      } else {
        const holder: { slot: Slot | null } = { slot: null }
        try {
          const session = await deps.transport.open(target, {
            ...opts,
            onTrace: (s) => (holder.slot ? holder.slot.sink?.(s) : sink(s)),
          })
          slot = { session, key, uses: 0, sink, idleTimer: null }
          holder.slot = slot
          stats.opened++
        } catch (err) {
          leave()
          throw err
        }
      }
      const s = slot
      s.uses++
      let done = false
      return {
        session: s.session,
        fresh,
        release(reuse) {
          if (done) return
          done = true
          if (reuse) park(s)
          else void s.session.close()
          leave()
        },
      }
    },
    async close() {
      closed = true
      const all = [...idle.values()].flat()
      idle.clear()
      await Promise.all(
        all.map((s) => {
          if (s.idleTimer) clearTimeout(s.idleTimer)
          return s.session.close()
        }),
      )
    },
  }
}
