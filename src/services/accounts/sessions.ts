// Browser sessions. The cookie carries a token signed with the server's token signing key
// (HS256) naming the user, org, session secret (`sid`), issue and expiry times. The database
// keeps only SHA-256(sid) with the session row, so sessions can be listed and revoked, and a
// stolen database yields no usable cookie. Every request re-reads the user's role, disabled
// flag and org state: the token's claims are never trusted for authorisation.

import type { Store } from '../../store/db.ts'
import { newId } from '../../store/ids.ts'
import type { Clock } from '../../time/clock.ts'
import type { Principal, Role } from './principal.ts'
import { newSecret, sha256Hex } from './secrets.ts'

/** jose (some 46 modules) is loaded on the first log-in or cookie, not on an idle server. */
let jose: Promise<typeof import('jose')> | null = null
const loadJose = () => {
  jose ??= import('jose')
  return jose
}

export const SESSION_COOKIE = 'postern_session'

export interface SessionInfo {
  id: string
  created_at: number
  expires_at: number
  last_seen_at: number | null
  ip: string | null
  user_agent: string | null
}

export interface SessionService {
  create(
    user: { id: string; org_id: string },
    meta: { ip: string | null; userAgent: string | null },
  ): Promise<{ token: string; session: SessionInfo }>
  /** The principal for a cookie token, or null when invalid, expired, revoked, disabled or the org is gone. */
  authenticate(token: string): Promise<Principal | null>
  list(userId: string): Promise<SessionInfo[]>
  /** Revokes one of the user's sessions; false when it is not theirs or not active. */
  revoke(userId: string, sessionId: string): Promise<boolean>
  /** Revokes every active session of a user except `keep`. */
  revokeAll(userId: string, keep?: string | null): Promise<number>
  readonly ttlMs: number
}

export function createSessionService(deps: {
  store: Store
  clock: Clock
  signingKey: Buffer
  days: number
}): SessionService {
  const { store, clock } = deps
  const db = store.db
  const ttlMs = deps.days * 86_400_000
  const key = new Uint8Array(deps.signingKey)

  return {
    ttlMs,
    async create(user, meta) {
      const now = clock.now()
      const sid = newSecret('ses', 24)
      const row = {
        id: newId('ses', now),
        org_id: user.org_id,
        user_id: user.id,
        token_hash: sha256Hex(sid),
        created_at: now,
        expires_at: now + ttlMs,
        revoked_at: null,
        last_seen_at: now,
        ip: meta.ip,
        user_agent: meta.userAgent?.slice(0, 300) ?? null,
      }
      await db.insertInto('sessions').values(row).execute()
      const { SignJWT } = await loadJose()
      const token = await new SignJWT({ org: user.org_id, sid })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(user.id)
        .setIssuedAt(Math.floor(now / 1000))
        .setExpirationTime(Math.floor((now + ttlMs) / 1000))
        .sign(key)
      const { id, created_at, expires_at, last_seen_at, ip, user_agent } = row
      return { token, session: { id, created_at, expires_at, last_seen_at, ip, user_agent } }
    },

    async authenticate(token) {
      const now = clock.now()
      let claims: { sub?: string; org?: unknown; sid?: unknown }
      const { errors: joseErrors, jwtVerify } = await loadJose()
      try {
        const r = await jwtVerify(token, key, { algorithms: ['HS256'], currentDate: new Date(now) })
        claims = r.payload
      } catch (err) {
        if (err instanceof joseErrors.JOSEError) return null
        throw err
      }
      if (typeof claims.sid !== 'string' || typeof claims.sub !== 'string') return null
      const row = await db
        .selectFrom('sessions as s')
        .innerJoin('users as u', 'u.id', 's.user_id')
        .innerJoin('orgs as o', 'o.id', 's.org_id')
        .select([
          's.id',
          's.org_id',
          's.user_id',
          's.expires_at',
          's.revoked_at',
          's.last_seen_at',
          'u.role',
          'u.disabled',
          'o.deleted_at',
        ])
        .where('s.token_hash', '=', sha256Hex(claims.sid))
        .executeTakeFirst()
      if (!row || row.user_id !== claims.sub || row.revoked_at !== null || row.expires_at <= now) return null
      if (row.disabled || row.deleted_at !== null) return null
      if (row.last_seen_at === null || now - row.last_seen_at > 60_000)
        await db.updateTable('sessions').set({ last_seen_at: now }).where('id', '=', row.id).execute()
      return {
        kind: 'session',
        org_id: row.org_id,
        user_id: row.user_id,
        role: row.role as Role,
        session_id: row.id,
        key_id: null,
        key_scope: null,
        mailbox_id: null,
      }
    },

    async list(userId) {
      return db
        .selectFrom('sessions')
        .select(['id', 'created_at', 'expires_at', 'last_seen_at', 'ip', 'user_agent'])
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', clock.now())
        .orderBy('created_at', 'desc')
        .execute()
    },

    async revoke(userId, sessionId) {
      const r = await db
        .updateTable('sessions')
        .set({ revoked_at: clock.now() })
        .where('id', '=', sessionId)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst()
      return Number(r.numUpdatedRows) === 1
    },

    async revokeAll(userId, keep = null) {
      let q = db
        .updateTable('sessions')
        .set({ revoked_at: clock.now() })
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
      if (keep) q = q.where('id', '!=', keep)
      return Number((await q.executeTakeFirst()).numUpdatedRows)
    },
  }
}
