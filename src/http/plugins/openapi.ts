// The OpenAPI 3.1 document, generated from the route schemas and served at
// /v1/openapi.json, with a readable reference at /docs (Swagger UI, served from the package,
// no external assets).

import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { App, AppDeps } from '../types.ts'

export async function registerOpenApi(app: App, deps: AppDeps): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Postern API',
        version: deps.version,
        description:
          'The HTTP API of Postern, a self-hosted mail server. JSON with snake_case fields under /v1; errors are RFC 9457 problem details; lists use cursor pagination.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'API key: Authorization: Bearer <key>' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
          session: { type: 'apiKey', in: 'cookie', name: 'postern_session' },
        },
      },
    },
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true },
  })
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}
