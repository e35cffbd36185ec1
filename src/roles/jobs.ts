// The background jobs every installation runs (the runner leases each one, so a job runs once
// across processes). Tests add their own through StartOptions.jobs.

import type { Config } from '../config/schema.ts'
import { analyticsFoldJob } from '../services/analytics/fold.ts'
import { attachmentPurgeJob } from '../services/attachments/purge.ts'
import { retireDkimKeys } from '../services/domains/dkim.ts'
import { recheckVerifiedDomains } from '../services/domains/domains.ts'
import { builtinJobs } from '../services/jobs/builtin.ts'
import type { JobRunner } from '../services/jobs/runner.ts'
import type { MailboxesContext } from '../services/mailboxes/mailboxes.ts'
import { trashPurgeJob } from '../services/messages/purge.ts'
import type { AuthThrottle } from '../services/ratelimit/auth-throttle.ts'
import type { RateLimiter } from '../services/ratelimit/limiter.ts'
import type { BlobStore } from '../store/blobs/blob-store.ts'
import type { ChangeBus } from '../store/change-bus.ts'
import type { Store } from '../store/db.ts'
import type { Clock } from '../time/clock.ts'

export interface JobDeps {
  config: Config
  store: Store
  blobs: BlobStore
  bus: ChangeBus
  clock: Clock
  domains: MailboxesContext
  limiter: RateLimiter
  throttle: AuthThrottle
}

export function registerJobs(jobs: JobRunner, d: JobDeps): void {
  const { store, clock } = d
  for (const job of builtinJobs({ store, blobs: d.blobs, config: d.config, now: () => clock.now() }))
    jobs.register(job)
  jobs.register({
    name: 'domain-dns-recheck',
    description: 'Re-checks the DNS of verified domains and records each change as an event.',
    intervalMs: d.config.domains.recheck_hours * 3_600_000,
    firstRunDelayMs: 5 * 60_000,
    run: () => recheckVerifiedDomains(d.domains),
  })
  jobs.register({
    name: 'dkim-retire',
    description: 'Retires rotated-out DKIM keys once their grace period is over.',
    intervalMs: 3_600_000,
    firstRunDelayMs: 60_000,
    run: async () => ({ retired: await retireDkimKeys(store.db, clock.now()) }),
  })
  jobs.register({
    name: 'rate-limit-prune',
    description: 'Deletes expired rate-limit windows and failed-login counters.',
    intervalMs: 10 * 60_000,
    firstRunDelayMs: 60_000,
    run: async () => ({ windows: await d.limiter.prune(), failures: await d.throttle.prune() }),
  })
  jobs.register(trashPurgeJob({ store, clock, bus: d.bus, blobs: d.blobs }))
  jobs.register(attachmentPurgeJob({ store, clock, blobs: d.blobs }))
  jobs.register(
    analyticsFoldJob({
      store,
      now: () => clock.now(),
      intervalMs: d.config.analytics.fold_interval_ms,
      settleMs: d.config.analytics.fold_settle_ms,
    }),
  )
}
