// The sending API: send one message or a batch (Idempotency-Key honoured), a dry run, the
// outbound list and one email with per-recipient state and events, its delivery trace,
// reschedule and cancel. Sending needs scope send; reading needs read. Test keys send test mail
// and see only test mail; other callers see test mail with ?test=true (views.ts).

import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { cancelEmail, rescheduleEmail } from '../../services/outbound/queue-admin.ts'
import { sendBatch, sendEmail, validateEmail } from '../../services/outbound/send.ts'
import { emailTrace, getEmail, listEmails } from '../../services/outbound/views.ts'
import { principalOf } from '../plugins/auth.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import {
  BatchResult,
  Email,
  EmailStatus,
  EmailSummary,
  SendBody,
  SendResult,
  Trace,
  Validation,
} from '../schemas/outbound.ts'
import type { RoutePlugin } from '../types.ts'

const IdParam = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100, description: 'Email id (eml_...)' }),
})
const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ maxLength: 256, description: 'Same key and body within 24 h returns the first result' }),
  ),
})

const TestQuery = Type.Object({
  test: Type.Optional(
    Type.Boolean({
      description:
        'Test mail (sent with test keys) instead of live mail; a test key always sees test mail only',
    }),
  ),
})

const idempotencyKey = (req: FastifyRequest) => {
  const v = req.headers['idempotency-key']
  return typeof v === 'string' ? v : undefined
}

export const emailRoutes: RoutePlugin = async (app, deps) => {
  const ctx = deps.services.outbound
  const tags = ['sending']
  // Attachments arrive base64 inside JSON: a third larger than the message they make.
  const bodyLimit = Math.ceil(deps.config.smtp.max_message_bytes * 1.4) + 65_536

  app.post(
    '/v1/emails',
    {
      bodyLimit,
      config: { auth: 'send' },
      schema: {
        tags,
        summary: 'Send an email (now or at scheduled_at); 202 once it is durably queued',
        headers: IdempotencyHeaders,
        body: SendBody,
        response: { 202: SendResult, ...errorResponses },
      },
    },
    async (req, reply) => {
      const r = await sendEmail(ctx, principalOf(req), req.body, {
        ip: req.ip,
        idempotencyKey: idempotencyKey(req),
      })
      if (r.replayed) reply.header('idempotency-replayed', 'true')
      return reply.code(r.status).send(r.body)
    },
  )

  app.post(
    '/v1/emails/batch',
    {
      bodyLimit,
      config: { auth: 'send' },
      schema: {
        tags,
        summary: 'Send up to 100 emails in one request (all are checked before any is queued)',
        headers: IdempotencyHeaders,
        body: Type.Array(SendBody, { minItems: 1, maxItems: 1000 }),
        response: { 202: BatchResult, ...errorResponses },
      },
    },
    async (req, reply) => {
      const r = await sendBatch(ctx, principalOf(req), req.body, {
        ip: req.ip,
        idempotencyKey: idempotencyKey(req),
      })
      if (r.replayed) reply.header('idempotency-replayed', 'true')
      return reply.code(r.status).send(r.body)
    },
  )

  app.post(
    '/v1/emails/validate',
    {
      bodyLimit,
      config: { auth: 'send' },
      schema: {
        tags,
        summary:
          'Dry run: addresses, sender rights, suppressions, size and each recipient domain’s mail servers; nothing is sent',
        body: SendBody,
        response: { 200: Validation, ...errorResponses },
      },
    },
    async (req) => validateEmail(ctx, principalOf(req), req.body),
  )

  app.get(
    '/v1/emails',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary: 'Sent and queued emails, newest first',
        querystring: Type.Object({
          status: Type.Optional(EmailStatus),
          recipient: Type.Optional(Type.String({ maxLength: 320 })),
          tag: Type.Optional(Type.String({ maxLength: 330, description: 'name or name:value' })),
          after: Type.Optional(Type.String({ format: 'date-time' })),
          before: Type.Optional(Type.String({ format: 'date-time' })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
          test: TestQuery.properties.test,
        }),
        response: { 200: list(EmailSummary), ...errorResponses },
      },
    },
    async (req) => {
      const { status, ...rest } = req.query
      return listEmails(ctx, principalOf(req), { ...rest, ...(status ? { status: [status] } : {}) })
    },
  )

  app.get(
    '/v1/emails/:id',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary: 'One email with each recipient’s state and the events so far',
        params: IdParam,
        querystring: TestQuery,
        response: { 200: Email, ...errorResponses },
      },
    },
    async (req) => getEmail(ctx, principalOf(req), req.params.id, req.query.test === true),
  )

  app.get(
    '/v1/emails/:id/trace',
    {
      config: { auth: 'read' },
      schema: {
        tags,
        summary: 'Every delivery step: queued, DNS answers, connections, TLS, SMTP replies, final state',
        params: IdParam,
        querystring: TestQuery,
        response: { 200: Trace, ...errorResponses },
      },
    },
    async (req) => emailTrace(ctx, principalOf(req), req.params.id, req.query.test === true),
  )

  app.patch(
    '/v1/emails/:id',
    {
      config: { auth: 'send' },
      schema: {
        tags,
        summary: 'Reschedule a scheduled (or queued) email; scheduled_at null sends it now',
        params: IdParam,
        body: Type.Object(
          { scheduled_at: Type.Union([Type.Null(), Type.String({ format: 'date-time' })]) },
          { additionalProperties: false },
        ),
        response: { 200: Email, ...errorResponses },
      },
    },
    async (req) => rescheduleEmail(ctx, principalOf(req), req.params.id, req.body.scheduled_at),
  )

  app.post(
    '/v1/emails/:id/cancel',
    {
      config: { auth: 'send' },
      schema: {
        tags,
        summary: 'Cancel an email that has not been sent yet',
        params: IdParam,
        response: { 200: Email, ...errorResponses },
      },
    },
    async (req) => cancelEmail(ctx, principalOf(req), req.params.id),
  )
}
