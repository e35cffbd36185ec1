// GET /v1/config: the public runtime settings a client or the web UI needs (no secrets, no
// paths): version, host name, where each listener is, and request limits.

import { Type } from 'typebox'
import { errorResponses } from '../schemas/common.ts'
import type { RoutePlugin } from '../types.ts'

const PublicConfig = Type.Object({
  version: Type.String(),
  hostname: Type.String(),
  listeners: Type.Array(Type.Object({ name: Type.String(), port: Type.Integer(), tls: Type.String() })),
  limits: Type.Object({ http_body_bytes: Type.Integer() }),
})

export const configRoutes: RoutePlugin = async (app, deps) => {
  app.get(
    '/v1/config',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['service'],
        summary: 'Public runtime configuration',
        response: { 200: PublicConfig, ...errorResponses },
      },
    },
    async () => ({
      version: deps.version,
      hostname: deps.config.hostname as string,
      listeners: deps.listeners().map(({ name, port, tls }) => ({ name, port, tls })),
      limits: { http_body_bytes: deps.config.http.body_limit_bytes },
    }),
  )
}
