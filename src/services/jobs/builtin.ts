// The jobs the foundation runs in every installation. Later capabilities add their own
// (DNS re-checks, purges, scheduled sends, key retirement) by registering JobDefs.

import type { Config } from '../../config/schema.ts'
import type { BlobStore } from '../../store/blobs/blob-store.ts'
import { pruneChanges } from '../../store/change-bus.ts'
import type { Store } from '../../store/db.ts'
import { pruneEvents } from '../events/list.ts'
import { pruneDeliveries } from '../webhooks/outbox.ts'
import type { JobDef } from './runner.ts'

const MINUTE = 60_000

export function builtinJobs(deps: {
  store: Store
  blobs: BlobStore
  config: Config
  now: () => number
}): JobDef[] {
  return [
    {
      name: 'blob-collect',
      description:
        'Deletes blobs no message, draft or attachment has referenced for blobs.collect_grace_seconds.',
      intervalMs: 15 * MINUTE,
      firstRunDelayMs: MINUTE,
      run: async () => ({
        deleted: await deps.blobs.collect(deps.config.blobs.collect_grace_seconds * 1000),
      }),
    },
    {
      name: 'changes-prune',
      description: 'Trims the SQLite change log read by other processes (rows older than ten minutes).',
      intervalMs: 5 * MINUTE,
      firstRunDelayMs: MINUTE,
      run: async () => ({ deleted: await pruneChanges(deps.store, deps.now() - 10 * MINUTE) }),
    },
    {
      name: 'events-prune',
      description:
        'Deletes events, and finished webhook deliveries with their log, older than events.retention_days.',
      intervalMs: 60 * MINUTE,
      firstRunDelayMs: 5 * MINUTE,
      run: async () => {
        const before = deps.now() - deps.config.events.retention_days * 86_400_000
        return {
          deleted: await pruneEvents(deps.store, before),
          deliveries: await pruneDeliveries(deps.store.db, before),
        }
      },
    },
  ]
}
