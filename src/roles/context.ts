// What a role's components are built from: the services main.ts wired for this process. One
// bag, passed whole, so a new component takes what it needs without main.ts growing a parameter.

import type { FastifyPluginAsync } from 'fastify'
import type { MailPort } from '../config/ports.ts'
import type { Config } from '../config/schema.ts'
import type { ServerSecrets } from '../config/secrets.ts'
import type { Resolver } from '../dns/resolver.ts'
import type { AppServices } from '../http/types.ts'
import type { Logger } from '../log/logger.ts'
import type { ConnectGuard } from '../net/connect-guard.ts'
import type { AccountsContext } from '../services/accounts/context.ts'
import type { DeliveryContext } from '../services/delivery/inbound.ts'
import type { ListenerInfo } from '../services/health/health.ts'
import type { JobRunner } from '../services/jobs/runner.ts'
import type { MailboxesContext } from '../services/mailboxes/mailboxes.ts'
import type { OutboundContext } from '../services/outbound/context.ts'
import type { SetupService } from '../services/setup/setup-token.ts'
import type { BlobStore } from '../store/blobs/blob-store.ts'
import type { ChangeBus } from '../store/change-bus.ts'
import type { Store } from '../store/db.ts'
import type { Clock } from '../time/clock.ts'
import type { CertificateService } from '../tls/certificates.ts'

export interface RoleContext {
  config: Config
  log: Logger
  clock: Clock
  version: string
  store: Store
  blobs: BlobStore
  bus: ChangeBus
  tls: CertificateService
  secrets: ServerSecrets
  resolver: Resolver
  connectGuard: ConnectGuard
  jobs: JobRunner
  setup: SetupService
  accounts: AccountsContext
  domains: MailboxesContext
  delivery: DeliveryContext
  outbound: OutboundContext
  /** The services the HTTP API routes call. */
  http: AppServices
  /** The mail ports as resolved at start (standard or fallback). */
  mailPorts: MailPort[]
  /** Every listener bound so far in this process (for GET /v1/config and the banner). */
  listeners: () => ListenerInfo[]
  /** Start-up notes shown in the banner and in health (port fallbacks, missing features). */
  notes: string[]
  /** Called by the HTTP component with its bound URL when public_url is not configured. */
  setPublicUrl(url: string): void
  /** Extra HTTP route plugins (tests). */
  httpPlugins: FastifyPluginAsync[]
}
