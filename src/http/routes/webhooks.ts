// Webhook endpoints (scope admin): CRUD, verification, test delivery, secret rotation, the
// delivery log and redelivery.

import { Type } from 'typebox'
import { listDeliveries, redeliver, sendTest } from '../../services/webhooks/deliveries.ts'
import {
  createWebhook,
  deleteWebhook,
  getWebhook,
  listWebhooks,
  resendVerification,
  rotateSecret,
  updateWebhook,
  verifyWebhook,
} from '../../services/webhooks/endpoints.ts'
import { principalOf } from '../plugins/auth.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import {
  Delivery,
  SecretRotated,
  VerifyBody,
  Webhook,
  WebhookCreate,
  WebhookCreated,
  WebhookUpdate,
  WebhookUpdated,
  WebhookVerified,
} from '../schemas/webhooks.ts'
import type { RoutePlugin } from '../types.ts'

const PROTOCOL = `Every message is signed per Standard Webhooks 1.0: headers \`webhook-id\` (stable across retries;
deduplicate on it), \`webhook-timestamp\` (Unix seconds) and \`webhook-signature\`
(\`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">\` keyed with the base64-decoded part of the
\`whsec_\` secret; during a rotation's grace period two signatures, space separated). The body is
\`{"type", "timestamp", "data"}\`. A 2xx answer is success; anything else, redirects included (never
followed), is retried with exponential backoff for \`webhooks.retry_hours\` (3 days).

Verification: before an endpoint gets traffic, Postern POSTs a signed
\`{"type":"webhook.verification","timestamp":...,"data":{"webhook_id":...,"challenge":"..."}}\`; the
receiver answers 2xx with the challenge as the whole body or as JSON \`{"challenge":"..."}\`. A receiver
that cannot answer inline may post the challenge back to \`POST /v1/webhooks/{id}/verify\` within 24 hours.`

const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) })

export const webhookRoutes: RoutePlugin = async (app, deps) => {
  const ctx = deps.services.webhooks
  const tags = ['webhooks']
  const admin = { auth: 'admin' as const }

  app.get(
    '/v1/webhooks',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Webhook endpoints of the organisation',
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
        }),
        response: { 200: list(Webhook), ...errorResponses },
      },
    },
    async (req) => listWebhooks(ctx, principalOf(req), req.query),
  )

  app.post(
    '/v1/webhooks',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Add an endpoint: returns its secret once and the result of its verification challenge',
        description: PROTOCOL,
        body: WebhookCreate,
        response: { 201: WebhookCreated, ...errorResponses },
      },
    },
    async (req, reply) => reply.code(201).send(await createWebhook(ctx, principalOf(req), req.body)),
  )

  app.get(
    '/v1/webhooks/:id',
    {
      config: admin,
      schema: { tags, summary: 'One endpoint', params: Id, response: { 200: Webhook, ...errorResponses } },
    },
    async (req) => getWebhook(ctx, principalOf(req), req.params.id),
  )

  app.patch(
    '/v1/webhooks/:id',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Change the URL, event types, description, or enable/disable an endpoint',
        description:
          'A new URL or re-enabling sends a new verification challenge; until it is answered the endpoint gets no traffic.',
        params: Id,
        body: WebhookUpdate,
        response: { 200: WebhookUpdated, ...errorResponses },
      },
    },
    async (req) => updateWebhook(ctx, principalOf(req), req.params.id, req.body),
  )

  app.delete(
    '/v1/webhooks/:id',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Remove an endpoint with its delivery log',
        params: Id,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await deleteWebhook(ctx, principalOf(req), req.params.id)
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/v1/webhooks/:id/verify',
    {
      config: admin,
      schema: {
        tags,
        summary:
          'Verify an endpoint: post back its challenge, or (no body) send one now and accept an inline echo',
        description: PROTOCOL,
        params: Id,
        body: Type.Optional(VerifyBody),
        response: { 200: WebhookVerified, ...errorResponses },
      },
    },
    async (req) => verifyWebhook(ctx, principalOf(req), req.params.id, req.body ?? {}),
  )

  app.post(
    '/v1/webhooks/:id/resend-verification',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Send a pending endpoint a fresh verification challenge',
        params: Id,
        response: { 200: WebhookVerified, ...errorResponses },
      },
    },
    async (req) => resendVerification(ctx, principalOf(req), req.params.id),
  )

  app.post(
    '/v1/webhooks/:id/test',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Queue a webhook.test message to an active endpoint',
        params: Id,
        response: { 202: Delivery, ...errorResponses },
      },
    },
    async (req, reply) => reply.code(202).send(await sendTest(ctx, principalOf(req), req.params.id)),
  )

  app.post(
    '/v1/webhooks/:id/rotate-secret',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Make a new secret (shown once); the old one keeps signing for webhooks.secret_grace_hours',
        params: Id,
        response: { 200: SecretRotated, ...errorResponses },
      },
    },
    async (req) => rotateSecret(ctx, principalOf(req), req.params.id),
  )

  app.get(
    '/v1/webhooks/:id/deliveries',
    {
      config: admin,
      schema: {
        tags,
        summary:
          'The delivery log: each message, its state and every attempt (status, latency, response excerpt)',
        params: Id,
        querystring: Type.Object({
          status: Type.Optional(
            Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed')]),
          ),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
        }),
        response: { 200: list(Delivery), ...errorResponses },
      },
    },
    async (req) => listDeliveries(ctx, principalOf(req), req.params.id, req.query),
  )

  app.post(
    '/v1/webhooks/:id/deliveries/:delivery_id/redeliver',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Send a delivery again now (same webhook-id and body)',
        params: Type.Object({
          id: Type.String({ minLength: 1, maxLength: 100 }),
          delivery_id: Type.String({ minLength: 1, maxLength: 100 }),
        }),
        response: { 202: Delivery, ...errorResponses },
      },
    },
    async (req, reply) =>
      reply.code(202).send(await redeliver(ctx, principalOf(req), req.params.id, req.params.delivery_id)),
  )
}
