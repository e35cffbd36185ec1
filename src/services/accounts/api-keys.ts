// API keys for programs. A key is shown once at creation; the database keeps its SHA-256 and
// a visible prefix so people can recognise it. Scopes: admin, send, read, write (org-wide) and
// mailbox (one mailbox). Keys may expire; use is recorded (at most once a minute per key);
// revoked and expired keys, keys of a deleted org, keys whose creator is disabled, and admin
// keys whose creator lost the admin role authenticate as nothing.

import type { Selectable } from 'kysely'
import type { Store } from '../../store/db.ts'
import { newId } from '../../store/ids.ts'
import type { ApiKeyTable } from '../../store/schema.ts'
import type { Clock } from '../../time/clock.ts'
import { ServiceError } from '../errors.ts'
import { writeEvent } from '../events/write.ts'
import type { KeyScope, Principal } from './principal.ts'
import { newSecret, sha256Hex } from './secrets.ts'

export const KEY_SCOPES: readonly KeyScope[] = ['admin', 'send', 'read', 'write', 'mailbox']

export interface ApiKeyView {
  id: string
  name: string
  prefix: string
  scope: KeyScope
  mailbox_id: string | null
  created_by: string | null
  created_at: number
  expires_at: number | null
  last_used_at: number | null
  revoked_at: number | null
  test: boolean
}

export interface CreateKeyInput {
  name: string
  scope: KeyScope
  mailbox_id?: string | null
  expires_at?: number | null
  /** A test-mode key. */
  test?: boolean
}

/** Live keys start `pst_`, test keys `pst_test_`, so people (and secret scanners) tell them apart. */
export const TEST_KEY_PREFIX = 'pst_test'

export interface ApiKeyService {
  create(
    actor: Principal,
    input: CreateKeyInput,
    ip: string | null,
  ): Promise<{ key: string; view: ApiKeyView }>
  authenticate(key: string): Promise<Principal | null>
  list(orgId: string): Promise<ApiKeyView[]>
  revoke(actor: Principal, id: string, ip: string | null): Promise<void>
}

const view = (r: Selectable<ApiKeyTable>): ApiKeyView => ({
  id: r.id,
  name: r.name,
  prefix: r.prefix,
  scope: r.scope,
  mailbox_id: r.mailbox_id,
  created_by: r.created_by,
  created_at: r.created_at,
  expires_at: r.expires_at,
  last_used_at: r.last_used_at,
  revoked_at: r.revoked_at,
  test: Number(r.test) === 1,
})

export function createApiKeyService(deps: { store: Store; clock: Clock }): ApiKeyService {
  const db = deps.store.db
  const actorId = (p: Principal) => p.user_id ?? p.key_id

  return {
    async create(actor, input, ip) {
      const now = deps.clock.now()
      const mailboxId = input.scope === 'mailbox' ? (input.mailbox_id ?? null) : null
      if (input.scope === 'mailbox') {
        if (!mailboxId)
          throw new ServiceError('invalid', 'MAILBOX_REQUIRED', 'A mailbox-scoped key needs mailbox_id.', {
            details: [{ field: 'mailbox_id', message: 'is required for scope mailbox' }],
          })
        const mbx = await db
          .selectFrom('mailboxes')
          .select('id')
          .where('id', '=', mailboxId)
          .where('org_id', '=', actor.org_id)
          .executeTakeFirst()
        if (!mbx)
          throw new ServiceError(
            'not_found',
            'MAILBOX_NOT_FOUND',
            `No mailbox ${mailboxId} in this organisation.`,
          )
      } else if (input.mailbox_id) {
        throw new ServiceError('invalid', 'MAILBOX_NOT_ALLOWED', 'mailbox_id is only for scope mailbox.', {
          details: [{ field: 'mailbox_id', message: 'only allowed with scope mailbox' }],
        })
      }
      if (input.expires_at != null && input.expires_at <= now)
        throw new ServiceError('invalid', 'EXPIRY_IN_PAST', 'expires_at must be in the future.', {
          details: [{ field: 'expires_at', message: 'must be in the future' }],
        })
      const test = input.test === true
      const key = newSecret(test ? TEST_KEY_PREFIX : 'pst', 30)
      const row: Selectable<ApiKeyTable> = {
        id: newId('key', now),
        org_id: actor.org_id,
        name: input.name,
        prefix: key.slice(0, test ? 17 : 12),
        key_hash: sha256Hex(key),
        scope: input.scope,
        mailbox_id: mailboxId,
        created_by: actor.user_id,
        created_at: now,
        expires_at: input.expires_at ?? null,
        last_used_at: null,
        revoked_at: null,
        test: test ? 1 : 0,
      }
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('api_keys').values(row).execute()
        await writeEvent(tx, now, {
          org_id: actor.org_id,
          type: 'api_key.created',
          actor: actorId(actor),
          ip,
          subject_id: row.id,
          payload: {
            name: row.name,
            scope: row.scope,
            mailbox_id: row.mailbox_id,
            prefix: row.prefix,
            ...(test ? { test: true } : {}),
          },
        })
      })
      return { key, view: view(row) }
    },

    async authenticate(key) {
      if (!key.startsWith('pst_') || key.length > 200) return null
      const now = deps.clock.now()
      const row = await db
        .selectFrom('api_keys as k')
        .innerJoin('orgs as o', 'o.id', 'k.org_id')
        .leftJoin('users as u', 'u.id', 'k.created_by')
        .select([
          'k.id',
          'k.org_id',
          'k.scope',
          'k.mailbox_id',
          'k.created_by',
          'k.expires_at',
          'k.revoked_at',
          'k.last_used_at',
          'k.test',
          'o.deleted_at',
          'u.role as creator_role',
          'u.disabled as creator_disabled',
        ])
        .where('k.key_hash', '=', sha256Hex(key))
        .executeTakeFirst()
      if (!row || row.revoked_at !== null || row.deleted_at !== null) return null
      if (row.expires_at !== null && row.expires_at <= now) return null
      // A key never outranks the person who made it: a disabled creator ends it, and an admin
      // key stops when its creator is no longer an admin.
      if (row.creator_disabled) return null
      if (row.scope === 'admin' && row.creator_role === 'member') return null
      if (row.last_used_at === null || now - row.last_used_at > 60_000)
        await db.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', row.id).execute()
      return {
        kind: 'key',
        org_id: row.org_id,
        user_id: row.created_by,
        role: null,
        session_id: null,
        key_id: row.id,
        key_scope: row.scope,
        mailbox_id: row.mailbox_id,
        ...(Number(row.test) === 1 ? { test: true } : {}),
      }
    },

    async list(orgId) {
      const rows = await db
        .selectFrom('api_keys')
        .selectAll()
        .where('org_id', '=', orgId)
        .orderBy('created_at', 'desc')
        .execute()
      return rows.map(view)
    },

    async revoke(actor, id, ip) {
      const now = deps.clock.now()
      await db.transaction().execute(async (tx) => {
        const r = await tx
          .updateTable('api_keys')
          .set({ revoked_at: now })
          .where('id', '=', id)
          .where('org_id', '=', actor.org_id)
          .where('revoked_at', 'is', null)
          .executeTakeFirst()
        if (Number(r.numUpdatedRows) !== 1)
          throw new ServiceError('not_found', 'API_KEY_NOT_FOUND', `No active API key ${id}.`)
        await writeEvent(tx, now, {
          org_id: actor.org_id,
          type: 'api_key.revoked',
          actor: actorId(actor),
          ip,
          subject_id: id,
        })
      })
    },
  }
}
