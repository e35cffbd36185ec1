// Health: what an operator or a load balancer needs to know at a glance. Checks the database
// (a query), the blob store (its backend's own check) and reports every listener with its
// bound port, every component's state (a failed one degrades the report) and the TLS
// certificate in use. Never throws: a failed check is reported as such.

import type { BlobStore } from '../../store/blobs/blob-store.ts'
import { pingStore, type Store } from '../../store/db.ts'
import type { TlsInfo } from '../../tls/certificates.ts'

export interface ListenerInfo {
  name: string
  host: string
  port: number
  tls: 'none' | 'implicit' | 'starttls'
}

/** One listener or worker of this process (roles/component.ts runs them). */
export interface ComponentHealth {
  name: string
  /** The role (`--roles`) that runs it: http, smtp, imap or workers. */
  role: string
  status: 'starting' | 'running' | 'stopping' | 'stopped' | 'failed'
  /** What an operator should know: the error that stopped it, connections open, ... */
  detail?: string
}

export interface HealthReport {
  status: 'ok' | 'degraded'
  version: string
  uptime_s: number
  database: { status: 'ok' | 'error'; dialect: string; latency_ms: number; error?: string }
  blobs: { status: 'ok' | 'error'; backend: string; error?: string }
  listeners: ListenerInfo[]
  components: ComponentHealth[]
  tls: TlsInfo | null
  notes: string[]
}

export interface HealthDeps {
  store: Store
  blobs: BlobStore
  version: string
  startedAt: number
  now: () => number
  listeners: () => ListenerInfo[]
  components: () => ComponentHealth[]
  tls: () => TlsInfo | null
  notes: () => string[]
}

export interface HealthService {
  check(): Promise<HealthReport>
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err))

export function createHealthService(deps: HealthDeps): HealthService {
  return {
    async check() {
      const t0 = performance.now()
      let database: HealthReport['database']
      try {
        await pingStore(deps.store)
        database = { status: 'ok', dialect: deps.store.dialect, latency_ms: round(performance.now() - t0) }
      } catch (err) {
        database = {
          status: 'error',
          dialect: deps.store.dialect,
          latency_ms: round(performance.now() - t0),
          error: message(err),
        }
      }
      let blobs: HealthReport['blobs']
      try {
        await deps.blobs.check()
        blobs = { status: 'ok', backend: deps.blobs.backend }
      } catch (err) {
        blobs = { status: 'error', backend: deps.blobs.backend, error: message(err) }
      }
      const components = deps.components()
      const healthy =
        database.status === 'ok' && blobs.status === 'ok' && !components.some((c) => c.status === 'failed')
      return {
        status: healthy ? 'ok' : 'degraded',
        version: deps.version,
        uptime_s: Math.round((deps.now() - deps.startedAt) / 1000),
        database,
        blobs,
        listeners: deps.listeners(),
        components,
        tls: deps.tls(),
        notes: deps.notes(),
      }
    },
  }
}

const round = (n: number) => Math.round(n * 100) / 100
