// The one shape every listener and background worker has, and the runner that starts and stops
// them. A role (`--roles`: http, smtp, imap, workers) is a list of components (roles/index.ts);
// main.ts builds the services, asks each role of this process for its components and hands them
// to startComponents. Adding a listener or a worker is one more entry in that list.
// Invariants:
// - Components start in list order and stop in reverse order; a failed start stops the ones
//   already started before the error is rethrown, so nothing is left listening.
// - stop(deadlineMs) resolves within about deadlineMs: in-flight work may finish until then,
//   after which the component cuts what is left (connections, leases go back to the queue).
// - health() never throws and is cheap: it reports what the component knows, no I/O.

import type { Role } from '../config/schema.ts'
import type { Logger } from '../log/logger.ts'
import type { ComponentHealth, ListenerInfo } from '../services/health/health.ts'

export type { ComponentHealth }

type ComponentStatus = ComponentHealth['status']

export interface Component {
  /** Unique within a process: the listener or worker name used in logs and health. */
  readonly name: string
  /** Binds or begins; returns the listeners it opened (none for a worker). */
  start(): Promise<ListenerInfo[]>
  stop(deadlineMs: number): Promise<void>
  /** Optional detail for the health entry (the runner tracks the status itself). */
  detail?(): string | undefined
}

export interface RunningComponents {
  listeners: ListenerInfo[]
  health(): ComponentHealth[]
  /** Stops every started component in reverse order, each within deadlineMs. */
  stop(deadlineMs: number): Promise<void>
}

interface Entry {
  role: Role
  component: Component
  status: ComponentStatus
  error?: string
}

/** Starts the components of each role, in order; on a failed start stops what already runs. */
export async function startComponents(
  byRole: readonly { role: Role; components: readonly Component[] }[],
  log: Logger,
  deadlineMs: number,
): Promise<RunningComponents> {
  const entries: Entry[] = byRole.flatMap(({ role, components }) =>
    components.map((component) => ({ role, component, status: 'stopped' as ComponentStatus })),
  )
  const names = new Set<string>()
  for (const e of entries) {
    if (names.has(e.component.name)) throw new Error(`two components are named ${e.component.name}`)
    names.add(e.component.name)
  }
  const listeners: ListenerInfo[] = []
  const started: Entry[] = []
  const stop = async (ms: number) => {
    for (const e of started.splice(0).reverse()) {
      e.status = 'stopping'
      try {
        await e.component.stop(ms)
        e.status = 'stopped'
      } catch (err) {
        e.status = 'failed'
        e.error = err instanceof Error ? err.message : String(err)
        log.error({ err, component: e.component.name }, 'component did not stop cleanly')
      }
    }
  }
  for (const e of entries) {
    e.status = 'starting'
    try {
      listeners.push(...(await e.component.start()))
      e.status = 'running'
      started.push(e)
    } catch (err) {
      e.status = 'failed'
      e.error = err instanceof Error ? err.message : String(err)
      await stop(deadlineMs)
      throw err
    }
  }
  return {
    listeners,
    stop,
    health: () =>
      entries.map((e) => {
        const detail = e.error ?? safeDetail(e.component)
        return {
          name: e.component.name,
          role: e.role,
          status: e.status,
          ...(detail ? { detail } : {}),
        }
      }),
  }
}

function safeDetail(c: Component): string | undefined {
  try {
    return c.detail?.()
  } catch {
    return undefined
  }
}
