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
import type { HealthService, ListenerInfo } from '../services/health/health.ts'
import type { SetupService } from '../services/setup/setup-token.ts'

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>

export interface AppDeps {
  config: Config
  log: Logger
  version: string
  health: HealthService
  setup: SetupService
  /** Listeners as bound (for GET /v1/config). */
  listeners: () => ListenerInfo[]
  /** Extra route plugins (tests add slow or failing routes through this). */
  plugins?: FastifyPluginAsync[]
}

export type RoutePlugin = (app: App, deps: AppDeps) => Promise<void>
