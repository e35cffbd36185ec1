// Shared steps of the accounts tests: create the first owner through POST /v1/setup, read
// system mail from the database, and a password that passes the strength rule.

import { newId } from '../../src/store/ids.ts'
import { Api } from '../helpers/api.ts'
import type { TestServer } from '../helpers/server.ts'

export const PASSWORD = 'correct-horse-battery-9'
export const PASSWORD2 = 'another-Strong-passphrase-7'

export async function setupOwner(s: TestServer, email = 'owner@example.com', org = 'Acme'): Promise<Api> {
  const api = new Api(s.url)
  const r = await api.post('/v1/setup', {
    setup_token: s.postern.setupToken,
    org_name: org,
    email,
    password: PASSWORD,
    name: 'Olive Owner',
  })
  if (r.status !== 201) throw new Error(`setup failed: ${r.status} ${r.text}`)
  return api
}

export async function lastMail(s: TestServer, to: string, kind?: string) {
  let q = s.postern.store.db.selectFrom('system_mail').selectAll().where('to_address', '=', to)
  if (kind) q = q.where('kind', '=', kind as never)
  const rows = await q.orderBy('created_at', 'desc').execute()
  // created_at ties are possible; ids sort by creation too.
  return rows.sort((a, b) => (a.id < b.id ? 1 : -1))[0]
}

export async function tokenFromMail(s: TestServer, to: string, kind: string, re: RegExp): Promise<string> {
  const mail = await lastMail(s, to, kind)
  const m = mail?.text.match(re)
  if (!m) throw new Error(`no ${kind} mail with ${re} to ${to}`)
  return m[0]
}

export async function events(s: TestServer, type: string) {
  return s.postern.store.db
    .selectFrom('events')
    .selectAll()
    .where('type', '=', type)
    .orderBy('created_at')
    .execute()
}

/** A domain (once per org) and a mailbox, written straight to the store until the domains API exists. */
export async function addMailbox(s: TestServer, orgId: string, ownerUserId: string | null, local: string) {
  const now = Date.now()
  const db = s.postern.store.db
  let domain = await db.selectFrom('domains').select('id').where('org_id', '=', orgId).executeTakeFirst()
  if (!domain) {
    domain = { id: newId('dom') }
    await db
      .insertInto('domains')
      .values({
        id: domain.id,
        org_id: orgId,
        name: `${orgId.slice(-6)}.example.com`,
        ownership_token: 'x',
        verified_at: null,
        default_quota_bytes: 1e9,
        max_quota_bytes: 1e10,
        total_quota_bytes: 1e11,
        created_at: now,
        updated_at: now,
      })
      .execute()
  }
  const id = newId('mbx')
  await db
    .insertInto('mailboxes')
    .values({
      id,
      org_id: orgId,
      domain_id: domain.id,
      local_part: local,
      address: `${local}@${orgId.slice(-6)}.example.com`,
      password_hash: null,
      quota_bytes: 1e9,
      owner_user_id: ownerUserId,
      created_at: now,
      updated_at: now,
    })
    .execute()
  return id
}
