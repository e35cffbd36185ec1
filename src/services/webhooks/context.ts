// What the webhook services need, built once by main.ts: the store and blobs (email.received
// payloads are read from the stored message), the clock, the key-encryption key (secrets are
// sealed under it), the HTTP POST client that goes through the resolver and the connect guard,
// the guard's own check (URLs with an IP literal are refused at creation), the public URL
// (attachment download links) and the settings from config.

import type { Config } from '../../config/schema.ts'
import type { Logger } from '../../log/logger.ts'
import type { HttpPost } from '../../net/http-post.ts'
import type { BlobStore } from '../../store/blobs/blob-store.ts'
import type { Store } from '../../store/db.ts'
import type { Clock } from '../../time/clock.ts'

export interface WebhookSettings {
  pollMs: number
  concurrency: number
  timeoutMs: number
  leaseMs: number
  retryBaseMs: number
  retryWindowMs: number
  disableAfterMs: number
  /** 0: only the time rule disables. */
  disableAfterFailures: number
  secretGraceMs: number
  /** How long a verification challenge may be answered through the verify route. */
  challengeMs: number
}

export interface WebhooksContext {
  store: Store
  blobs: BlobStore
  clock: Clock
  log: Logger
  keyEncryptionKey: Buffer
  post: HttpPost
  /** The connect guard's verdict on an IP address. */
  allows(ip: string): boolean
  /** Base URL of the API, for links in payloads. */
  publicUrl(): string
  settings: WebhookSettings
}

export function webhookSettings(config: Config): WebhookSettings {
  const w = config.webhooks
  return {
    pollMs: w.poll_ms,
    concurrency: w.concurrency,
    timeoutMs: w.timeout_ms,
    leaseMs: w.lease_seconds * 1000,
    retryBaseMs: w.retry_base_ms,
    retryWindowMs: w.retry_hours * 3_600_000,
    disableAfterMs: w.disable_after_hours * 3_600_000,
    disableAfterFailures: w.disable_after_failures,
    secretGraceMs: w.secret_grace_hours * 3_600_000,
    challengeMs: 24 * 3_600_000,
  }
}
