// Authentication and authorisation for every route. Each route declares `config.auth`: 'public'
// or the scope it needs (services/accounts/principal.ts); a /v1 route without one is refused at
// start, so nothing is unprotected by accident. Credentials: an API key (Authorization: Bearer
// or X-API-Key; on a WebSocket upgrade also the subprotocol `postern.key.<key>`, for browsers,
// which cannot set headers there) or the session cookie. A state-changing request authenticated by cookie must
// carry a non-empty X-Requested-With header (CSRF). No CORS headers are ever sent, so browsers
// never let another origin use the cookie. The OpenAPI document gets each route's security
// and scope from the same declaration.

import type { FastifyRequest } from 'fastify'
import type { ApiKeyService } from '../../services/accounts/api-keys.ts'
import { missingScope, type Principal, type Scope } from '../../services/accounts/principal.ts'
import { SESSION_COOKIE, type SessionService } from '../../services/accounts/sessions.ts'
import { readCookie } from '../cookies.ts'
import { problem, sendProblem } from '../problem.ts'
import type { App } from '../types.ts'

export type RouteAuth = 'public' | Scope

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth
  }
  interface FastifyRequest {
    principal: Principal | null
    /** How the principal authenticated. */
    authVia: 'cookie' | 'key' | null
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
/** Routes outside /v1 and the API's own documents need no declaration. */
const UNDECLARED_OK = (url: string) => !url.startsWith('/v1/') || url === '/v1/openapi.json'

/** The subprotocol that carries an API key on a WebSocket upgrade. */
export const KEY_PROTOCOL_PREFIX = 'postern.key.'

function presentedKey(req: FastifyRequest): string | null {
  const auth = req.headers.authorization
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)$/i.exec(auth.trim())
    return m ? (m[1] as string) : auth.trim()
  }
  const x = req.headers['x-api-key']
  if (typeof x === 'string' && x.trim()) return x.trim()
  const protocols = req.headers['sec-websocket-protocol']
  if (typeof protocols === 'string' && req.headers.upgrade?.toLowerCase() === 'websocket')
    for (const p of protocols.split(',')) {
      const t = p.trim()
      if (t.startsWith(KEY_PROTOCOL_PREFIX) && t.length > KEY_PROTOCOL_PREFIX.length)
        return t.slice(KEY_PROTOCOL_PREFIX.length)
    }
  return null
}

/** The credential a request presented (long-lived connections re-check it later). */
export function presentedCredential(req: FastifyRequest): { key: string } | { cookie: string } | null {
  const key = presentedKey(req)
  if (key) return { key }
  const cookie = readCookie(req, SESSION_COOKIE)
  return cookie ? { cookie } : null
}

/** The principal for a request's credentials, or why there is none. */
async function authenticate(
  req: FastifyRequest,
  deps: { keys: ApiKeyService; sessions: SessionService },
): Promise<{ principal: Principal; via: 'cookie' | 'key' } | { error: 'none' | 'bad_key' | 'bad_session' }> {
  const key = presentedKey(req)
  if (key) {
    const p = await deps.keys.authenticate(key)
    return p ? { principal: p, via: 'key' } : { error: 'bad_key' }
  }
  const cookie = readCookie(req, SESSION_COOKIE)
  if (cookie) {
    const p = await deps.sessions.authenticate(cookie)
    return p ? { principal: p, via: 'cookie' } : { error: 'bad_session' }
  }
  return { error: 'none' }
}

export function registerAuth(
  app: App,
  deps: { keys: ApiKeyService; sessions: SessionService; operatorOrgId: () => Promise<string | null> },
): void {
  app.decorateRequest('principal', null)
  app.decorateRequest('authVia', null)

  app.addHook('onRoute', (route) => {
    const auth = route.config?.auth
    if (auth === undefined) {
      if (UNDECLARED_OK(route.url)) return
      throw new Error(`route ${route.method} ${route.url} declares no config.auth ('public' or a scope)`)
    }
    if (auth === 'public') return
    route.schema ??= {}
    const schema = route.schema as Record<string, unknown>
    schema.security = [{ bearer: [] }, { apiKey: [] }, { session: [] }]
    const note = `Requires scope \`${auth}\`. Cookie sessions must send X-Requested-With on state-changing requests.`
    schema.description = schema.description ? `${schema.description}\n\n${note}` : note
  })

  // onRequest: credentials are checked before the body is read or validated, so an
  // unauthenticated caller learns nothing about a route's fields and pays for no parsing.
  app.addHook('onRequest', async (req, reply) => {
    const auth = req.routeOptions.config?.auth
    if (auth === undefined || auth === 'public') return
    const r = await authenticate(req, deps)
    if ('error' in r) {
      const p =
        r.error === 'none'
          ? problem(
              401,
              'AUTH_REQUIRED',
              'Sign in (session cookie) or send an API key: Authorization: Bearer <key> or X-API-Key.',
            )
          : r.error === 'bad_key'
            ? problem(401, 'INVALID_API_KEY', 'The API key is unknown, revoked or expired.')
            : problem(401, 'SESSION_EXPIRED', 'The session is expired, revoked or invalid; sign in again.')
      reply.header('www-authenticate', 'Bearer realm="postern"')
      return sendProblem(reply, p)
    }
    if (r.via === 'cookie' && !SAFE_METHODS.has(req.method)) {
      const xrw = req.headers['x-requested-with']
      if (typeof xrw !== 'string' || xrw.trim() === '')
        return sendProblem(
          reply,
          problem(
            403,
            'CSRF_HEADER_MISSING',
            'State-changing requests made with a session cookie must send an X-Requested-With header.',
          ),
        )
    }
    if (auth === 'operator') r.principal.operator = r.principal.org_id === (await deps.operatorOrgId())
    const missing = missingScope(r.principal, auth)
    if (missing) return sendProblem(reply, problem(403, 'MISSING_SCOPE', `Forbidden: ${missing}.`))
    req.principal = r.principal
    req.authVia = r.via
  })
}

/** The principal of an authenticated route (the preHandler guarantees it). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new Error('principalOf on a public route')
  return req.principal
}
