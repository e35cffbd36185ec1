// Health: what an operator or a load balancer needs to know at a glance. Checks the database
// (a query), the blob store (its backend's own check) and reports every listener with its
// bound port and the TLS certificate in use. Never throws: a failed check is reported as such.

import type { BlobStore } from '../../store/blobs/blob-store.ts'
import { pingStore, type Store } from '../../store/db.ts'
import type { TlsInfo } from '../../tls/certificates.ts'

export interface ListenerInfo {
  name: string
  host: string
  port: number
  tls: 'none' | 'implicit' | 'starttls'
}

export interface HealthReport {
  status: 'ok' | 'degraded'
  version: string
  uptime_s: number
  database: { status: 'ok' | 'error'; dialect: string; latency_ms: number; error?: string }
  blobs: { status: 'ok' | 'error'; backend: string; error?: string }
  listeners: ListenerInfo[]
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
      return {
        status: database.status === 'ok' && blobs.status === 'ok' ? 'ok' : 'degraded',
        version: deps.version,
        uptime_s: Math.round((deps.now() - deps.startedAt) / 1000),
        database,
        blobs,
        listeners: deps.listeners(),
        tls: deps.tls(),
        notes: deps.notes(),
      }
    },
  }
}

const round = (n: number) => Math.round(n * 100) / 100
