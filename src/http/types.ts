// The typed Fastify instance every route plugin receives, and the dependencies of buildApp.

import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyPluginAsync,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify'
import type { Config } from '../config/schema.ts'
import type { Logger } from '../log/logger.ts'
import type { AccountsContext } from '../services/accounts/context.ts'
import type { HealthService, ListenerInfo } from '../services/health/health.ts'
import type { JobRunner } from '../services/jobs/runner.ts'
import type { MailboxesContext } from '../services/mailboxes/mailboxes.ts'
import type { BlobStore } from '../services/messages/context.ts'
import type { OutboundContext } from '../services/outbound/context.ts'
import type { RateLimiter } from '../services/ratelimit/limiter.ts'
import type { RateLimitRule, RateLimitRuleName } from '../services/ratelimit/rules.ts'
import type { SetupService } from '../services/setup/setup-token.ts'
import type { WebhooksContext } from '../services/webhooks/context.ts'

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>

/** The services routes call; built once in main.ts. */
export interface AppServices {
  health: HealthService
  setup: SetupService
  accounts: AccountsContext
  /** Domains, mailboxes and aliases. */
  domains: MailboxesContext
  limiter: RateLimiter
  rules: Record<RateLimitRuleName, RateLimitRule>
  jobs: JobRunner
  /** Raw messages and attachments (mail reading). */
  blobs: BlobStore
  /** Sending, the queue and suppressions. */
  outbound: OutboundContext
  /** Events API and webhooks. */
  webhooks: WebhooksContext
}

export interface AppDeps {
  config: Config
  log: Logger
  version: string
  services: AppServices
  /** Listeners as bound (for GET /v1/config). */
  listeners: () => ListenerInfo[]
  /** Extra route plugins (tests add slow or failing routes through this). */
  plugins?: FastifyPluginAsync[]
}

export type RoutePlugin = (app: App, deps: AppDeps) => Promise<void>
