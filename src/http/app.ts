// buildApp(deps): the Fastify application with every plugin and route, not listening.
// main.ts (or a test) listens; app.inject works without a socket. Invariants: every error
// leaves as problem+json (problem.ts), every response carries X-Request-Id, every route has
// a schema so validation and the OpenAPI document come from one source.

import { randomBytes } from 'node:crypto'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyBaseLogger } from 'fastify'
import { lazyCompilersFactory } from './lazy-compilers.ts'
import { registerAuth } from './plugins/auth.ts'
import { registerOpenApi } from './plugins/openapi.ts'
import { notFoundProblem, sendProblem, toProblem } from './problem.ts'
import { adminJobRoutes } from './routes/admin-jobs.ts'
import { aliasRoutes } from './routes/aliases.ts'
import { analyticsRoutes } from './routes/analytics.ts'
import { apiKeyRoutes } from './routes/api-keys.ts'
import { attachmentRoutes } from './routes/attachments.ts'
import { authRoutes } from './routes/auth.ts'
import { clientSetupRoutes } from './routes/client-setup.ts'
import { configRoutes } from './routes/config.ts'
import { domainRoutes } from './routes/domains.ts'
import { draftRoutes } from './routes/drafts.ts'
import { emailRoutes } from './routes/emails.ts'
import { eventRoutes } from './routes/events.ts'
import { feedRoutes } from './routes/feed.ts'
import { folderRoutes } from './routes/folders.ts'
import { healthRoutes } from './routes/health.ts'
import { mailboxRoutes } from './routes/mailboxes.ts'
import { meRoutes } from './routes/me.ts'
import { messageRoutes } from './routes/messages.ts'
import { orgRoutes } from './routes/org.ts'
import { queueRoutes } from './routes/queue.ts'
import { searchRoutes } from './routes/search.ts'
import { setupRoutes } from './routes/setup.ts'
import { suppressionRoutes } from './routes/suppressions.ts'
import { threadRoutes } from './routes/threads.ts'
import { trackingRoutes } from './routes/tracking.ts'
import { warmupRoutes } from './routes/warmups.ts'
import { webhookRoutes } from './routes/webhooks.ts'
import type { App, AppDeps } from './types.ts'

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/

export async function buildApp(deps: AppDeps): Promise<App> {
  const app = Fastify({
    loggerInstance: deps.log.child({ mod: 'http' }) as FastifyBaseLogger,
    bodyLimit: deps.config.http.body_limit_bytes,
    trustProxy: deps.config.http.trust_proxy,
    // A client's X-Request-Id is kept when it is a plain token, so traces join up across hops.
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given)
        ? given
        : `req_${randomBytes(9).toString('base64url')}`
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: true } },
    schemaController: { compilersFactory: lazyCompilersFactory as never },
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id)
  })

  app.setErrorHandler((err, req, reply) => {
    const p = toProblem(err, req)
    if (p.status >= 500) req.log.error({ err }, 'request failed')
    else req.log.info({ code: p.code, status: p.status }, 'request refused')
    const retryAfter = (err as { retryAfter?: number }).retryAfter
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter))
    return sendProblem(reply, p)
  })
  app.setNotFoundHandler((req, reply) => sendProblem(reply, notFoundProblem(req)))

  await registerOpenApi(app, deps)
  registerAuth(app, { ...deps.services.accounts, operatorOrgId: () => deps.services.setup.operatorOrgId() })
  for (const routes of [
    healthRoutes,
    configRoutes,
    setupRoutes,
    authRoutes,
    meRoutes,
    orgRoutes,
    apiKeyRoutes,
    adminJobRoutes,
    domainRoutes,
    mailboxRoutes,
    aliasRoutes,
    clientSetupRoutes,
    messageRoutes,
    threadRoutes,
    folderRoutes,
    searchRoutes,
    emailRoutes,
    attachmentRoutes,
    draftRoutes,
    queueRoutes,
    suppressionRoutes,
    analyticsRoutes,
    warmupRoutes,
    feedRoutes,
    trackingRoutes,
    eventRoutes,
    webhookRoutes,
  ])
    await routes(app, deps)
  for (const plugin of deps.plugins ?? []) await app.register(plugin)
  await app.ready()
  return app
}
