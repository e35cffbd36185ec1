// What the outbound services need, built once by main.ts: the store and blobs, the clock, the
// change bus, the group committer (one fsync for sends that arrive together), the keys
// (DKIM private keys are sealed under the KEK; return paths are signed with their own key),
// rate limiting, the resolver, the transport (SMTP client), the MTA-STS policy cache and the
// settings from config.

import type { Config } from '../../config/schema.ts'
import type { Resolver } from '../../dns/resolver.ts'
import type { Logger } from '../../log/logger.ts'
import type { BlobStore } from '../../store/blobs/blob-store.ts'
import type { ChangeBus } from '../../store/change-bus.ts'
import type { Store } from '../../store/db.ts'
import type { Clock } from '../../time/clock.ts'
import type { GroupCommitter } from '../delivery/group-commit.ts'
import type { DeliveryContext } from '../delivery/inbound.ts'
import type { RateLimiter } from '../ratelimit/limiter.ts'
import type { RateLimitRule, RateLimitRuleName } from '../ratelimit/rules.ts'
import type { TrackingSettings } from '../tracking/context.ts'
import type { MtaSts } from './mta-sts.ts'
import type { Transport } from './transport.ts'

export interface OutboundSettings {
  hostname: string
  helo: string
  /** Names that are this server (an MX pointing at one of them is a loop). */
  localHosts: string[]
  mxPort: number
  concurrency: number
  perDestination: number
  recipientsPerTransaction: number
  /** Waits after each temporary failure, in ms; the last repeats. */
  retryMs: number[]
  lifetimeMs: number
  delayNoticeMs: number
  /** A failure notice returns the whole message only up to this size (else its header section). */
  dsnReturnMaxBytes: number
  pollMs: number
  leaseMs: number
  smartHost: { host: string; port: number } | null
  smartHostTls: 'starttls' | 'require' | 'implicit' | 'none'
  smartHostAuth: { user: string; pass: string } | null
  orgHourlyCap: number
  orgDailyCap: number
  maxBatch: number
  /** Recipients in one message (smtp.max_recipients). */
  maxRecipients: number
  maxMessageBytes: number
  /** Sender address of system mail (codes, resets, invitations). */
  systemFrom: string
  /** How old an SRS address may be when a bounce arrives at it (forwarding.srs_max_age_days). */
  srsMaxAgeDays: number
}

export interface OutboundContext {
  store: Store
  clock: Clock
  blobs: BlobStore
  bus: ChangeBus
  log: Logger
  committer: GroupCommitter
  keyEncryptionKey: Buffer
  returnPathKey: Buffer
  /** Signs the SRS addresses of forwarded mail (derived from the secrets file, like returnPathKey). */
  srsKey: Buffer
  limiter: RateLimiter
  rules: Record<RateLimitRuleName, RateLimitRule>
  resolver: Resolver
  transport: Transport
  /** MTA-STS policies of destination domains; absent when outbound.mta_sts is off. */
  mtaSts?: MtaSts | null
  /** Whether the connect guard lets outbound connections reach this address. */
  allows: (ip: string) => boolean
  /** Local delivery (recipients hosted here), without authentication checks. */
  local: DeliveryContext
  settings: OutboundSettings
  /** Tells this process's queue worker that new work is due (set by main.ts). */
  wake?: () => void
  /** Open and click tracking and one-click unsubscribe links (set by main.ts). */
  tracking?: TrackingSettings
}

const UNIT: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `250ms`, `30s`, `5m`, `2h`, `1d` into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim())
  if (!m) throw new Error(`invalid duration '${text}': write a number and a unit (ms, s, m, h, d), e.g. 5m`)
  return Number(m[1]) * (UNIT[m[2] as string] as number)
}

export function outboundSettings(config: Config, hostname: string): OutboundSettings {
  const o = config.outbound
  const retryMs = o.retry_intervals.map((t, i) => {
    try {
      return parseDuration(t)
    } catch (err) {
      throw new Error(`outbound.retry_intervals[${i}]: ${(err as Error).message}`, { cause: err })
    }
  })
  if (retryMs.length === 0) throw new Error('outbound.retry_intervals: give at least one wait, e.g. 5m')
  let smartHost: OutboundSettings['smartHost'] = null
  if (o.smart_host) {
    const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(o.smart_host)
    if (!m) throw new Error(`outbound.smart_host: write host:port or ip:port, e.g. relay.example.net:587`)
    smartHost = { host: m[1] as string, port: Number(m[2]) }
  }
  return {
    hostname,
    helo: o.helo ?? hostname,
    localHosts: [hostname],
    mxPort: o.mx_port,
    concurrency: o.concurrency,
    perDestination: o.per_destination,
    recipientsPerTransaction: o.recipients_per_transaction,
    retryMs,
    lifetimeMs: o.lifetime_seconds * 1000,
    delayNoticeMs: o.delay_notice_seconds * 1000,
    dsnReturnMaxBytes: o.dsn_return_max_bytes,
    pollMs: o.poll_ms,
    leaseMs: o.lease_seconds * 1000,
    smartHost,
    smartHostTls: o.smart_host_tls,
    smartHostAuth:
      o.smart_host_user && o.smart_host_password
        ? { user: o.smart_host_user, pass: o.smart_host_password }
        : null,
    orgHourlyCap: o.org_hourly_cap,
    orgDailyCap: o.org_daily_cap,
    maxBatch: o.max_batch,
    maxRecipients: config.smtp.max_recipients,
    maxMessageBytes: config.smtp.max_message_bytes,
    systemFrom: `postern@${hostname}`,
    srsMaxAgeDays: config.forwarding.srs_max_age_days,
  }
}
