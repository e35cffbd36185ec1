// The public tracking routes of sent mail (no credentials: the signed token is the only key):
// GET /t/o/{token} the open pixel, GET /t/c/{token} the click redirect, and the one-click
// unsubscribe of RFC 8058: POST /t/u/{token} unsubscribes, GET /t/u/{token} only shows a page
// with a button that posts (link scanners fetch with GET and must not unsubscribe anyone).
// Invariants: a token that does not verify is a 404 problem and writes nothing; the redirect
// target comes from the store, never from the request (no open redirect); nothing here is
// cached by browsers or proxies.

import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { TrackingSettings } from '../../services/tracking/context.ts'
import {
  followClick,
  type HitContext,
  type HitRequest,
  recordOpen,
  unsubscribe,
  unsubscribeTarget,
} from '../../services/tracking/hits.ts'
import { problem, sendProblem } from '../problem.ts'
import { errorResponses } from '../schemas/common.ts'
import type { RoutePlugin } from '../types.ts'

const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64')
const NO_CACHE = 'no-store, no-cache, must-revalidate, private, max-age=0'
const Token = Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }) })
const Gif = Type.Unsafe<Buffer>({ type: 'string', format: 'binary', description: 'A 1x1 transparent GIF' })
const Html = Type.Unsafe<string>({ type: 'string', description: 'A small HTML page' })
const Redirect = Type.Null({ description: 'Location: the link that was in the mail' })

const escapeHtml = (s: string) =>
  s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;')

const page = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">` +
  `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title></head>` +
  `<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem">${body}</body></html>`

export const trackingRoutes: RoutePlugin = async (app, deps) => {
  const outbound = deps.services.outbound
  const tracking = outbound.tracking as TrackingSettings | undefined
  const tags = ['tracking']
  const notFound = problem(404, 'TRACKING_LINK_NOT_FOUND', 'This link is not valid (or no longer is).')

  await app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>()
    // RFC 8058 one-click POSTs are forms; the body's content is not needed, only its arrival.
    scope.addContentTypeParser(
      ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain'],
      { parseAs: 'string', bodyLimit: 16_384 },
      (_req, body, done) => done(null, body),
    )
    scope.addHook('onSend', async (_req, reply) => {
      reply.header('cache-control', NO_CACHE)
      reply.header('referrer-policy', 'no-referrer')
    })
    const ctxOf = (): HitContext | null =>
      tracking
        ? {
            store: outbound.store,
            clock: outbound.clock,
            tracking,
            limiter: outbound.limiter,
            rule: outbound.rules.tracking_message,
          }
        : null
    const hitOf = (req: {
      raw: { method?: string }
      headers: Record<string, unknown>
      ip: string
    }): HitRequest => ({
      // The raw method: Fastify serves HEAD with the GET route.
      method: req.raw.method ?? 'GET',
      userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : null,
      ip: req.ip ?? null,
    })

    scope.get(
      '/t/o/:token',
      {
        config: { auth: 'public' },
        schema: {
          tags,
          summary: 'Open pixel of a message sent with track_opens (a 1x1 GIF; records email.opened)',
          params: Token,
          response: { 200: Gif, ...errorResponses },
        },
      },
      async (req, reply) => {
        const ctx = ctxOf()
        if (!ctx || !(await recordOpen(ctx, req.params.token, hitOf(req))))
          return sendProblem(reply, notFound)
        return reply.code(200).type('image/gif').header('pragma', 'no-cache').send(PIXEL)
      },
    )

    scope.get(
      '/t/c/:token',
      {
        config: { auth: 'public' },
        schema: {
          tags,
          summary:
            'Click redirect of a message sent with track_clicks (302 to the link that was in the mail; records email.clicked)',
          params: Token,
          response: { 302: Redirect, ...errorResponses },
        },
      },
      async (req, reply) => {
        const ctx = ctxOf()
        const url = ctx ? await followClick(ctx, req.params.token, hitOf(req)) : null
        if (!url) return sendProblem(reply, notFound)
        return reply.code(302).header('location', url).send(null)
      },
    )

    scope.get(
      '/t/u/:token',
      {
        config: { auth: 'public' },
        schema: {
          tags,
          summary: 'Unsubscribe confirmation page (never unsubscribes by itself: its button posts)',
          params: Token,
          response: { 200: Html, ...errorResponses },
        },
      },
      async (req, reply) => {
        const ctx = ctxOf()
        const target = ctx ? await unsubscribeTarget(ctx, req.params.token) : null
        if (!target) return sendProblem(reply, notFound)
        const html = page(
          'Unsubscribe',
          `<h1>Unsubscribe</h1><p>Stop mail from this sender to <strong>${escapeHtml(target.address)}</strong>?</p>` +
            `<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">` +
            `<button type="submit">Unsubscribe</button></form>`,
        )
        return reply.code(200).type('text/html; charset=utf-8').send(html)
      },
    )

    scope.post(
      '/t/u/:token',
      {
        config: { auth: 'public' },
        schema: {
          tags,
          summary:
            'One-click unsubscribe (RFC 8058): suppresses the recipient and records email.unsubscribed',
          params: Token,
          consumes: ['application/x-www-form-urlencoded', 'multipart/form-data'],
          response: { 200: Html, ...errorResponses },
        },
      },
      async (req, reply) => {
        const ctx = ctxOf()
        const r = ctx ? await unsubscribe(ctx, req.params.token, hitOf(req)) : null
        if (!r) return sendProblem(reply, notFound)
        const html = page(
          'Unsubscribed',
          `<h1>Unsubscribed</h1><p><strong>${escapeHtml(r.address)}</strong> will get no more mail from this sender.</p>`,
        )
        return reply.code(200).type('text/html; charset=utf-8').send(html)
      },
    )
  })
}
