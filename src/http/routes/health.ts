// GET /health and /v1/health: liveness and readiness for people and load balancers.
// 200 when the database and blob store answer, 503 (same body) when degraded.

import { Type } from 'typebox'
import { errorResponses } from '../schemas/common.ts'
import type { RoutePlugin } from '../types.ts'

const Check = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('error')]),
  error: Type.Optional(Type.String()),
})

export const HealthSchema = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  version: Type.String(),
  uptime_s: Type.Integer(),
  database: Type.Intersect([Check, Type.Object({ dialect: Type.String(), latency_ms: Type.Number() })]),
  blobs: Type.Intersect([Check, Type.Object({ backend: Type.String() })]),
  listeners: Type.Array(
    Type.Object({
      name: Type.String(),
      host: Type.String(),
      port: Type.Integer(),
      tls: Type.Union([Type.Literal('none'), Type.Literal('implicit'), Type.Literal('starttls')]),
    }),
  ),
  components: Type.Array(
    Type.Object({
      name: Type.String(),
      role: Type.String(),
      status: Type.Union([
        Type.Literal('starting'),
        Type.Literal('running'),
        Type.Literal('stopping'),
        Type.Literal('stopped'),
        Type.Literal('failed'),
      ]),
      detail: Type.Optional(Type.String()),
    }),
  ),
  tls: Type.Union([
    Type.Null(),
    Type.Object({
      source: Type.String(),
      self_signed: Type.Boolean(),
      subject: Type.String(),
      issuer: Type.String(),
      not_after: Type.String(),
      fingerprint256: Type.String(),
      sni_hosts: Type.Array(Type.String()),
      reload_error: Type.Union([Type.String(), Type.Null()]),
    }),
  ]),
  notes: Type.Array(Type.String()),
})

export const healthRoutes: RoutePlugin = async (app, deps) => {
  for (const url of ['/health', '/v1/health']) {
    app.get(
      url,
      {
        config: { auth: 'public' },
        schema: {
          tags: ['service'],
          summary: 'Health of the database, blob store, listeners and TLS certificate',
          hide: url === '/health',
          response: { 200: HealthSchema, 503: HealthSchema, ...errorResponses },
        },
      },
      async (_req, reply) => {
        const report = await deps.services.health.check()
        return reply.code(report.status === 'ok' ? 200 : 503).send(report)
      },
    )
  }
}
