// Queue administration (scope admin, the caller's org only): counts, pending messages, one
// message, reschedule its next attempt, cancel it, pause and resume delivery.

import { Type } from 'typebox'
import {
  cancelEmail,
  listQueue,
  queueStatus,
  rescheduleEmail,
  setQueuePaused,
} from '../../services/outbound/queue-admin.ts'
import { getEmail } from '../../services/outbound/views.ts'
import { principalOf } from '../plugins/auth.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import { Email, EmailStatus, EmailSummary, QueueStatus } from '../schemas/outbound.ts'
import type { RoutePlugin } from '../types.ts'

const IdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) })

export const queueRoutes: RoutePlugin = async (app, deps) => {
  const ctx = deps.services.outbound
  const tags = ['queue']
  const status = {
    config: { auth: 'admin' as const },
    schema: { tags, response: { 200: QueueStatus, ...errorResponses } },
  }

  app.get(
    '/v1/queue',
    { ...status, schema: { ...status.schema, summary: 'Queue status: paused, counts, oldest and next' } },
    async (req) => queueStatus(ctx, principalOf(req)),
  )
  app.post(
    '/v1/queue/pause',
    {
      ...status,
      schema: { ...status.schema, summary: "Pause delivery of this organisation's mail (it stays queued)" },
    },
    async (req) => setQueuePaused(ctx, principalOf(req), true),
  )
  app.post(
    '/v1/queue/resume',
    { ...status, schema: { ...status.schema, summary: 'Resume delivery' } },
    async (req) => setQueuePaused(ctx, principalOf(req), false),
  )

  app.get(
    '/v1/queue/messages',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Messages waiting: scheduled, queued, held or being delivered',
        querystring: Type.Object({
          status: Type.Optional(EmailStatus),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
        }),
        response: { 200: list(EmailSummary), ...errorResponses },
      },
    },
    async (req) => listQueue(ctx, principalOf(req), req.query),
  )

  app.get(
    '/v1/queue/messages/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'One queued message',
        params: IdParam,
        response: { 200: Email, ...errorResponses },
      },
    },
    async (req) => getEmail(ctx, principalOf(req), req.params.id),
  )

  app.patch(
    '/v1/queue/messages/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Set the next attempt (null: retry now); a held message is released',
        params: IdParam,
        body: Type.Object(
          { next_attempt_at: Type.Union([Type.Null(), Type.String({ format: 'date-time' })]) },
          { additionalProperties: false },
        ),
        response: { 200: Email, ...errorResponses },
      },
    },
    async (req) => rescheduleEmail(ctx, principalOf(req), req.params.id, req.body.next_attempt_at),
  )

  app.delete(
    '/v1/queue/messages/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags,
        summary: 'Cancel a queued message',
        params: IdParam,
        response: { 200: Email, ...errorResponses },
      },
    },
    async (req) => cancelEmail(ctx, principalOf(req), req.params.id),
  )
}
