// GET /v1/ws: the live feed over WebSocket (services/feed). Authentication is the API's own
// (plugins/auth.ts): an API key in Authorization or X-API-Key, or, from a browser, the
// subprotocol `postern.key.<key>` offered beside `postern.v1`, or the session cookie. A
// cookie-authenticated upgrade must come from this server's own origin (the Origin header),
// so another site cannot open the feed with a visitor's cookie (cross-site WebSocket
// hijacking). The credential is re-checked at every heartbeat; a revoked key or ended session
// closes the socket with 4401.
// Invariants: one feed hub per app (one reader of the events table per process); a plain GET
// (no upgrade) answers 426; a bad cursor or type filter is refused before the upgrade (400).

import websocket from '@fastify/websocket'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { missingScope } from '../../services/accounts/principal.ts'
import { createFeedHub } from '../../services/feed/hub.ts'
import { feedScope } from '../../services/feed/scope.ts'
import {
  createFeedSession,
  cursorProblem,
  FEED_CLOSE,
  parseTypeFilter,
  type TypeFilter,
} from '../../services/feed/session.ts'
import { presentedCredential, principalOf } from '../plugins/auth.ts'
import { problem, sendProblem } from '../problem.ts'
import { errorResponses } from '../schemas/common.ts'
import type { RoutePlugin } from '../types.ts'

const PROTOCOL = 'postern.v1'

const DESCRIPTION = `A WebSocket (RFC 6455) streaming the organisation's events (the rows of the events API, in the
same vocabulary as webhooks) and mailbox changes, as they happen in any process of the
installation. Each caller sees what it may read: org-wide keys every event of the org, a
mailbox key only its mailbox's, a person the mailboxes granted to them (admins and owners also
the org's events about no mailbox).

**Connect** with an API key in \`Authorization: Bearer\` or \`X-API-Key\`, or (browsers, which
cannot set headers on a WebSocket) offer the subprotocols \`postern.v1, postern.key.<key>\`, or
send the session cookie from this server's own origin.

**Frames** (JSON text) from the server: \`{"type":"event","cursor":"evt_...","event":{...}}\`,
\`{"type":"change","cursor":...,"topic":"mail.changed","mailbox_id":...,"what":...}\`,
\`{"type":"ready","cursor":...,"replayed":n}\` once the replay is over, \`{"type":"pong"}\`,
and \`{"type":"error","code":...,"detail":...}\` before a close. From the client:
\`{"resume":"evt_..."}\` (as the first frame, instead of ?cursor) and \`{"type":"ping"}\`.

**Resume**: reconnect with \`?cursor=<the last cursor received>\` to get every event after it,
then the live stream. **Close codes**: 4400 invalid frame or cursor, 4401 credentials revoked
or expired, 4429 the client read too slowly (its unsent data passed feed.max_buffered_bytes;
reconnect with the last cursor). The server pings every feed.heartbeat_seconds.`

const Query = Type.Object({
  cursor: Type.Optional(
    Type.String({ maxLength: 100, description: 'Resume after this event id (the cursor of a frame)' }),
  ),
  types: Type.Optional(
    Type.String({
      maxLength: 2000,
      description: 'Only these event types, comma-separated; `email.*` takes a whole family',
    }),
  ),
  changes: Type.Optional(Type.Boolean({ description: 'Send mailbox change frames (default true)' })),
})

/** Whether the Origin of a browser's upgrade is this server (its Host, or the public URL). */
function sameOrigin(req: FastifyRequest, publicUrl: string | null): boolean {
  const origin = req.headers.origin
  if (typeof origin !== 'string') return false
  let o: URL
  try {
    o = new URL(origin)
  } catch {
    return false
  }
  if (publicUrl && new URL(publicUrl).origin === o.origin) return true
  return o.host === req.headers.host
}

export const feedRoutes: RoutePlugin = async (app, deps) => {
  const { store, bus, clock, log } = deps.services.outbound
  const { keys, sessions } = deps.services.accounts
  const settings = deps.config.feed
  await app.register(websocket, {
    options: {
      maxPayload: 64 * 1024,
      handleProtocols: (offered) => (offered.has(PROTOCOL) ? PROTOCOL : false),
    },
  })
  const hub = createFeedHub({
    store,
    bus,
    clock,
    log: log.child({ mod: 'feed' }),
    pollMs: settings.poll_ms,
    lookbackMs: settings.lookback_ms,
  })
  app.addHook('onClose', async () => hub.close())
  // An upgrade refused with an HTTP answer before the plugin saw it (the auth hook runs first)
  // must not leave its socket open: Node's own server would destroy it too.
  app.addHook('onResponse', async (req) => {
    if (req.headers.upgrade?.toLowerCase() === 'websocket') req.raw.socket?.destroy()
  })
  const filters = new WeakMap<FastifyRequest, TypeFilter | null>()

  app.route({
    method: 'GET',
    url: '/v1/ws',
    config: { auth: 'read' },
    schema: {
      tags: ['events'],
      summary: 'Live feed of events and mailbox changes (WebSocket)',
      description: DESCRIPTION,
      querystring: Query,
      response: errorResponses,
    },
    preHandler: async (req, reply) => {
      const q = req.query as { cursor?: string; types?: string }
      if (q.cursor !== undefined) {
        const why = cursorProblem(q.cursor, clock.now())
        if (why) return sendProblem(reply, problem(400, 'INVALID_CURSOR', why))
      }
      let filter: TypeFilter | null = null
      if (q.types !== undefined) {
        const r = parseTypeFilter(q.types)
        if ('unknown' in r)
          return sendProblem(
            reply,
            problem(400, 'INVALID_EVENT_TYPE', `not event types: ${r.unknown.join(', ').slice(0, 300)}`),
          )
        filter = r.filter
      }
      filters.set(req, filter)
      if (req.ws && req.authVia === 'cookie' && !sameOrigin(req, deps.config.public_url))
        return sendProblem(
          reply,
          problem(
            403,
            'ORIGIN_NOT_ALLOWED',
            "A feed opened with the session cookie must come from this server's own pages (Origin); programs use an API key.",
          ),
        )
    },
    handler: async (_req, reply) => {
      reply.header('upgrade', 'websocket')
      return sendProblem(
        reply,
        problem(
          426,
          'UPGRADE_REQUIRED',
          'GET /v1/ws is a WebSocket: connect with a WebSocket client (Upgrade: websocket).',
        ),
      )
    },
    wsHandler: async (socket, req) => {
      const principal = principalOf(req)
      const q = req.query as { cursor?: string; changes?: boolean }
      const credential = presentedCredential(req)
      const scope = await feedScope(store.db, principal)
      const session = createFeedSession({
        store,
        hub,
        clock,
        scope,
        types: filters.get(req) ?? null,
        changes: q.changes !== false,
        maxBuffered: settings.max_buffered_bytes,
        transport: {
          send: (text) => socket.send(text),
          buffered: () => socket.bufferedAmount,
          close: (code, reason) => socket.close(code, reason),
        },
      })
      let alive = true
      socket.on('pong', () => {
        alive = true
      })
      const check = async () => {
        if (!alive) return socket.terminate()
        alive = false
        socket.ping()
        const again = !credential
          ? null
          : 'key' in credential
            ? await keys.authenticate(credential.key)
            : await sessions.authenticate(credential.cookie)
        if (!again || again.org_id !== principal.org_id || missingScope(again, 'read'))
          return session.end(
            FEED_CLOSE.unauthorized,
            'CREDENTIALS_REVOKED',
            'the key or session of this feed is no longer valid',
          )
        await scope.refresh()
      }
      const beat = setInterval(
        () => void check().catch((err) => req.log.warn({ err }, 'feed heartbeat failed')),
        settings.heartbeat_seconds * 1000,
      )
      socket.on('close', () => {
        clearInterval(beat)
        session.stop()
      })
      const started = session.start(q.cursor ?? null).catch((err) => {
        req.log.error({ err }, 'feed replay failed')
        socket.close(1011, 'INTERNAL_ERROR')
      })
      socket.on('message', (data, isBinary) => {
        void started.then(() => {
          if (isBinary)
            return session.end(
              FEED_CLOSE.invalidFrame,
              'INVALID_FRAME',
              'frames must be JSON text, not binary',
            )
          return session.frame(String(data))
        })
      })
    },
  })
}
