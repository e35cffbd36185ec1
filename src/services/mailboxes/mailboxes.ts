// Mailboxes: mail accounts with storage and an IMAP/SMTP login. Create (within the domain's
// limits: count, per-mailbox quota, domain total), list, get (by id or address), update,
// delete, set the password, and grant users access (team inboxes).
// Invariants:
// - An address is a mailbox or an alias, never both (checked in the same transaction).
// - Addresses are stored canonical (lower case), so they match case-insensitively.
// - The login password is argon2id-hashed; a generated one and the mailbox-scoped API key are
//   returned once, at creation.
// - Who sees a mailbox: org admins (role or key) and read/write keys see all; a mailbox key
//   only its own; members only mailboxes they own or were granted.

import type { Kysely, Transaction } from 'kysely'
import { parseAddress } from '../../mail/address.ts'
import { newId } from '../../store/ids.ts'
import type { Database, Folder, Mailbox } from '../../store/schema.ts'
import type { ApiKeyService } from '../accounts/api-keys.ts'
import type { PasswordHasher } from '../accounts/passwords.ts'
import type { Principal } from '../accounts/principal.ts'
import { newAppPassword } from '../accounts/secrets.ts'
import type { DomainsContext } from '../domains/domains.ts'
import { findDomain, releaseMailboxBlobs } from '../domains/domains.ts'
import { ServiceError } from '../errors.ts'
import { recordChange, writeEvent } from '../events/write.ts'

const MB = 1024 * 1024

export interface MailboxesContext extends DomainsContext {
  hasher: PasswordHasher
  keys: ApiKeyService
}

export interface MailboxView {
  id: string
  address: string
  domain_id: string
  local_part: string
  name: string
  active: boolean
  quota_mb: number
  used_bytes: number
  force_pw_update: boolean
  tls_enforce_in: boolean
  tls_enforce_out: boolean
  /** Mail this mailbox sends is copied to its Sent folder. */
  save_sent_copy: boolean
  owner_user_id: string | null
  created_at: number
  updated_at: number
}

export interface MailboxInput {
  domain: string
  local_part: string
  name?: string
  password?: string
  quota_mb?: number
  active?: boolean
  force_pw_update?: boolean
  tls_enforce_in?: boolean
  tls_enforce_out?: boolean
  save_sent_copy?: boolean
  owner_user_id?: string | null
}

export type MailboxPatch = Partial<Omit<MailboxInput, 'domain' | 'local_part'>>

type Tx = Kysely<Database> | Transaction<Database>

const DEFAULT_FOLDERS: { name: string; role: Folder['role'] }[] = [
  { name: 'INBOX', role: 'inbox' },
  { name: 'Sent', role: 'sent' },
  { name: 'Drafts', role: 'drafts' },
  { name: 'Junk', role: 'junk' },
  { name: 'Trash', role: 'trash' },
  { name: 'Archive', role: 'archive' },
]

const actorOf = (p: Principal) => p.user_id ?? p.key_id

export const mailboxView = (m: Mailbox): MailboxView => ({
  id: m.id,
  address: m.address,
  domain_id: m.domain_id,
  local_part: m.local_part,
  name: m.name,
  active: m.active === 1,
  quota_mb: Math.round(m.quota_bytes / MB),
  used_bytes: m.used_bytes,
  force_pw_update: m.force_pw_update === 1,
  tls_enforce_in: m.tls_enforce_in === 1,
  tls_enforce_out: m.tls_enforce_out === 1,
  save_sent_copy: Number(m.save_sent_copy) === 1,
  owner_user_id: m.owner_user_id,
  created_at: m.created_at,
  updated_at: m.updated_at,
})

function isOrgWide(p: Principal): boolean {
  if (p.kind === 'session') return p.role === 'owner' || p.role === 'admin'
  return p.key_scope === 'admin' || p.key_scope === 'read' || p.key_scope === 'write'
}

/** The mailboxes `p` may see: a query filter applied to every read. */
function visible(p: Principal, db: Tx) {
  let q = db.selectFrom('mailboxes').selectAll('mailboxes').where('mailboxes.org_id', '=', p.org_id)
  if (isOrgWide(p)) return q
  if (p.kind === 'key') return q.where('mailboxes.id', '=', p.mailbox_id ?? '')
  const userId = p.user_id as string
  q = q.where((eb) =>
    eb.or([
      eb('mailboxes.owner_user_id', '=', userId),
      eb.exists(
        eb
          .selectFrom('mailbox_grants as g')
          .select('g.user_id')
          .whereRef('g.mailbox_id', '=', 'mailboxes.id')
          .where('g.user_id', '=', userId),
      ),
    ]),
  )
  return q
}

/** The mailbox by id or address if `p` may see it, else 404. */
export async function findMailbox(db: Tx, p: Principal, idOrAddress: string): Promise<Mailbox> {
  let q = visible(p, db)
  if (idOrAddress.includes('@')) {
    let canonical: string
    try {
      canonical = parseAddress(idOrAddress).canonical
    } catch {
      throw new ServiceError('not_found', 'MAILBOX_NOT_FOUND', `No mailbox ${idOrAddress}.`)
    }
    q = q.where('mailboxes.address', '=', canonical)
  } else q = q.where('mailboxes.id', '=', idOrAddress)
  const rows = await q.execute()
  // Two orgs' pending domains can share an address; within one org it is unique.
  const row = rows[0]
  if (!row)
    throw new ServiceError('not_found', 'MAILBOX_NOT_FOUND', `No mailbox ${idOrAddress} that you can see.`)
  return row
}

async function addressTaken(
  db: Tx,
  domainId: string,
  canonical: string,
): Promise<'mailbox' | 'alias' | null> {
  if (
    await db
      .selectFrom('mailboxes')
      .select('id')
      .where('domain_id', '=', domainId)
      .where('address', '=', canonical)
      .executeTakeFirst()
  )
    return 'mailbox'
  if (
    await db
      .selectFrom('aliases')
      .select('id')
      .where('domain_id', '=', domainId)
      .where('address', '=', canonical)
      .executeTakeFirst()
  )
    return 'alias'
  return null
}

function checkPassword(ctx: MailboxesContext, password: string, address: string, field = 'password') {
  const problems = ctx.hasher.weaknesses(password, { email: address })
  if (problems.length)
    throw new ServiceError('invalid', 'WEAK_PASSWORD', `The password ${problems.join('; ')}.`, {
      details: problems.map((message) => ({ field, message })),
    })
}

async function checkOwner(db: Tx, orgId: string, userId: string | null | undefined) {
  if (!userId) return
  const u = await db
    .selectFrom('users')
    .select('id')
    .where('id', '=', userId)
    .where('org_id', '=', orgId)
    .executeTakeFirst()
  if (!u) throw new ServiceError('not_found', 'USER_NOT_FOUND', `No user ${userId} in this organisation.`)
}

export interface CreatedMailbox {
  mailbox: MailboxView
  /** The IMAP/SMTP password (the given one is not echoed; a generated one is shown once). */
  password: string | null
  /** A mailbox-scoped API key, shown once. */
  api_key: { id: string; key: string }
}

export async function createMailbox(
  ctx: MailboxesContext,
  p: Principal,
  input: MailboxInput,
  ip: string | null,
): Promise<CreatedMailbox> {
  const db = ctx.store.db
  const domain = await findDomain(db, p.org_id, input.domain)
  let parsed: ReturnType<typeof parseAddress>
  try {
    parsed = parseAddress(`${input.local_part}@${domain.name}`)
  } catch (err) {
    throw new ServiceError(
      'invalid',
      'INVALID_ADDRESS',
      `${input.local_part}@${domain.name} is not a valid address: ${(err as Error).message}`,
      {
        details: [{ field: 'local_part', message: (err as Error).message }],
      },
    )
  }
  const quotaBytes = (input.quota_mb ?? Math.round(domain.default_quota_bytes / MB)) * MB
  if (quotaBytes > domain.max_quota_bytes)
    throw new ServiceError(
      'invalid',
      'QUOTA_ABOVE_MAX',
      `quota_mb ${quotaBytes / MB} is above the domain's max_quota_mb ${domain.max_quota_bytes / MB}.`,
      {
        details: [{ field: 'quota_mb', message: `must be at most ${domain.max_quota_bytes / MB}` }],
      },
    )
  const generated = input.password === undefined
  const password = input.password ?? `${newAppPassword()}-${newAppPassword()}`
  if (!generated) checkPassword(ctx, password, parsed.canonical)
  const passwordHash = await ctx.hasher.hash(password)
  const now = ctx.clock.now()
  const row: Mailbox = {
    id: newId('mbx', now),
    org_id: p.org_id,
    domain_id: domain.id,
    local_part: parsed.canonical.slice(0, parsed.canonical.lastIndexOf('@')),
    address: parsed.canonical,
    name: input.name ?? '',
    password_hash: passwordHash,
    quota_bytes: quotaBytes,
    used_bytes: 0,
    active: input.active === false ? 0 : 1,
    force_pw_update: input.force_pw_update ? 1 : 0,
    tls_enforce_in: input.tls_enforce_in ? 1 : 0,
    tls_enforce_out: input.tls_enforce_out ? 1 : 0,
    save_sent_copy: input.save_sent_copy === false ? 0 : 1,
    owner_user_id: input.owner_user_id ?? null,
    modseq: 0,
    created_at: now,
    updated_at: now,
  }
  const mailbox = await db.transaction().execute(async (tx) => {
    await checkOwner(tx, p.org_id, input.owner_user_id)
    const taken = await addressTaken(tx, domain.id, row.address)
    if (taken)
      throw new ServiceError(
        'conflict',
        'ADDRESS_TAKEN',
        `${row.address} is already ${taken === 'mailbox' ? 'a mailbox' : 'an alias'}.`,
      )
    const use = await tx
      .selectFrom('mailboxes')
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('quota_bytes').as('quota')])
      .where('domain_id', '=', domain.id)
      .executeTakeFirstOrThrow()
    if (Number(use.n) >= domain.max_mailboxes)
      throw new ServiceError(
        'conflict',
        'DOMAIN_MAILBOX_LIMIT',
        `${domain.name} already has its maximum of ${domain.max_mailboxes} mailboxes; raise max_mailboxes first.`,
      )
    if (Number(use.quota ?? 0) + quotaBytes > domain.total_quota_bytes)
      throw new ServiceError(
        'conflict',
        'DOMAIN_QUOTA_EXCEEDED',
        `${domain.name} has ${Math.round((domain.total_quota_bytes - Number(use.quota ?? 0)) / MB)} MB of its total_quota_mb left; this mailbox needs ${quotaBytes / MB} MB.`,
      )
    await tx.insertInto('mailboxes').values(row).execute()
    await tx
      .insertInto('folders')
      .values(
        DEFAULT_FOLDERS.map((f, i) => ({
          id: newId('fld', now),
          org_id: p.org_id,
          mailbox_id: row.id,
          name: f.name,
          role: f.role,
          uidvalidity: Math.floor(now / 1000) + i,
          created_at: now,
          updated_at: now,
        })),
      )
      .execute()
    await recordChange(ctx.bus, tx, now, {
      org_id: p.org_id,
      type: 'mailbox.created',
      actor: actorOf(p),
      ip,
      subject_id: row.id,
      payload: { address: row.address },
      topic: 'mailbox.changed',
      data: { mailbox_id: row.id, what: 'created' },
    })
    return row
  })
  const key = await ctx.keys.create(
    p,
    { name: `mailbox ${mailbox.address}`, scope: 'mailbox', mailbox_id: mailbox.id },
    ip,
  )
  return {
    mailbox: mailboxView(mailbox),
    password: generated ? password : null,
    api_key: { id: key.view.id, key: key.key },
  }
}

export async function listMailboxes(
  ctx: MailboxesContext,
  p: Principal,
  filter: { domain?: string } = {},
): Promise<MailboxView[]> {
  let q = visible(p, ctx.store.db)
  if (filter.domain)
    q = q.where('mailboxes.domain_id', '=', (await findDomain(ctx.store.db, p.org_id, filter.domain)).id)
  return (await q.orderBy('mailboxes.address').execute()).map(mailboxView)
}

export async function getMailbox(
  ctx: MailboxesContext,
  p: Principal,
  idOrAddress: string,
): Promise<MailboxView> {
  return mailboxView(await findMailbox(ctx.store.db, p, idOrAddress))
}

export async function updateMailbox(
  ctx: MailboxesContext,
  p: Principal,
  idOrAddress: string,
  patch: MailboxPatch,
  ip: string | null,
): Promise<MailboxView> {
  const now = ctx.clock.now()
  const m = await findMailbox(ctx.store.db, p, idOrAddress)
  if (patch.password !== undefined) checkPassword(ctx, patch.password, m.address)
  const passwordHash = patch.password !== undefined ? await ctx.hasher.hash(patch.password) : null
  return ctx.store.db.transaction().execute(async (tx) => {
    const set: Partial<Mailbox> = { updated_at: now }
    if (patch.quota_mb !== undefined) {
      const domain = await tx
        .selectFrom('domains')
        .selectAll()
        .where('id', '=', m.domain_id)
        .executeTakeFirstOrThrow()
      const bytes = patch.quota_mb * MB
      if (bytes > domain.max_quota_bytes)
        throw new ServiceError(
          'invalid',
          'QUOTA_ABOVE_MAX',
          `quota_mb ${patch.quota_mb} is above the domain's max_quota_mb ${domain.max_quota_bytes / MB}.`,
          {
            details: [{ field: 'quota_mb', message: `must be at most ${domain.max_quota_bytes / MB}` }],
          },
        )
      const others = await tx
        .selectFrom('mailboxes')
        .select((eb) => eb.fn.sum<number>('quota_bytes').as('q'))
        .where('domain_id', '=', m.domain_id)
        .where('id', '!=', m.id)
        .executeTakeFirstOrThrow()
      if (Number(others.q ?? 0) + bytes > domain.total_quota_bytes)
        throw new ServiceError(
          'conflict',
          'DOMAIN_QUOTA_EXCEEDED',
          `Raising this mailbox to ${patch.quota_mb} MB would exceed the domain's total_quota_mb.`,
        )
      set.quota_bytes = bytes
    }
    if (patch.owner_user_id !== undefined) {
      await checkOwner(tx, p.org_id, patch.owner_user_id)
      set.owner_user_id = patch.owner_user_id
    }
    if (patch.name !== undefined) set.name = patch.name
    if (patch.active !== undefined) set.active = patch.active ? 1 : 0
    if (patch.force_pw_update !== undefined) set.force_pw_update = patch.force_pw_update ? 1 : 0
    if (patch.tls_enforce_in !== undefined) set.tls_enforce_in = patch.tls_enforce_in ? 1 : 0
    if (patch.tls_enforce_out !== undefined) set.tls_enforce_out = patch.tls_enforce_out ? 1 : 0
    if (patch.save_sent_copy !== undefined) set.save_sent_copy = patch.save_sent_copy ? 1 : 0
    if (passwordHash) {
      set.password_hash = passwordHash
      set.force_pw_update = patch.force_pw_update ? 1 : 0
    }
    await tx.updateTable('mailboxes').set(set).where('id', '=', m.id).where('org_id', '=', p.org_id).execute()
    const fields = Object.keys(patch).map((k) => (k === 'password' ? 'password (changed)' : k))
    await recordChange(ctx.bus, tx, now, {
      org_id: p.org_id,
      type: 'mailbox.updated',
      actor: actorOf(p),
      ip,
      subject_id: m.id,
      payload: { fields },
      topic: 'mailbox.changed',
      data: { mailbox_id: m.id, what: 'updated' },
    })
    return mailboxView(
      await tx.selectFrom('mailboxes').selectAll().where('id', '=', m.id).executeTakeFirstOrThrow(),
    )
  })
}

export async function deleteMailbox(
  ctx: MailboxesContext,
  p: Principal,
  idOrAddress: string,
  ip: string | null,
): Promise<void> {
  const now = ctx.clock.now()
  const m = await findMailbox(ctx.store.db, p, idOrAddress)
  await ctx.store.db.transaction().execute(async (tx) => {
    await releaseMailboxBlobs(tx, m.id, now)
    await tx.deleteFrom('mailboxes').where('id', '=', m.id).where('org_id', '=', p.org_id).execute()
    await recordChange(ctx.bus, tx, now, {
      org_id: p.org_id,
      type: 'mailbox.deleted',
      actor: actorOf(p),
      ip,
      subject_id: m.id,
      payload: { address: m.address },
      topic: 'mailbox.changed',
      data: { mailbox_id: m.id, what: 'deleted' },
    })
  })
}

export interface GrantView {
  user_id: string
  email: string
  created_at: number
}

export async function listGrants(
  ctx: MailboxesContext,
  p: Principal,
  idOrAddress: string,
): Promise<GrantView[]> {
  const m = await findMailbox(ctx.store.db, p, idOrAddress)
  return ctx.store.db
    .selectFrom('mailbox_grants as g')
    .innerJoin('users as u', 'u.id', 'g.user_id')
    .select(['g.user_id', 'u.email', 'g.created_at'])
    .where('g.mailbox_id', '=', m.id)
    .where('g.org_id', '=', p.org_id)
    .orderBy('u.email')
    .execute()
}

export async function grantAccess(
  ctx: MailboxesContext,
  p: Principal,
  idOrAddress: string,
  userId: string,
  ip: string | null,
): Promise<GrantView[]> {
  const m = await findMailbox(ctx.store.db, p, idOrAddress)
  const now = ctx.clock.now()
  await ctx.store.db.transaction().execute(async (tx) => {
    await checkOwner(tx, p.org_id, userId)
    await tx
      .insertInto('mailbox_grants')
      .values({ org_id: p.org_id, mailbox_id: m.id, user_id: userId, created_at: now })
      .onConflict((oc) => oc.columns(['mailbox_id', 'user_id']).doNothing())
      .execute()
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'mailbox.access_granted',
      actor: actorOf(p),
      ip,
      subject_id: m.id,
      payload: { user_id: userId },
    })
  })
  return listGrants(ctx, p, m.id)
}

export async function revokeAccess(
  ctx: MailboxesContext,
  p: Principal,
  idOrAddress: string,
  userId: string,
  ip: string | null,
): Promise<void> {
  const m = await findMailbox(ctx.store.db, p, idOrAddress)
  const now = ctx.clock.now()
  const r = await ctx.store.db
    .deleteFrom('mailbox_grants')
    .where('mailbox_id', '=', m.id)
    .where('user_id', '=', userId)
    .where('org_id', '=', p.org_id)
    .executeTakeFirst()
  if (Number(r.numDeletedRows) !== 1)
    throw new ServiceError('not_found', 'GRANT_NOT_FOUND', `User ${userId} has no grant on ${m.address}.`)
  await ctx.store.db
    .updateTable('app_passwords')
    .set({ revoked_at: now })
    .where('mailbox_id', '=', m.id)
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .execute()
  await writeEvent(ctx.store.db, now, {
    org_id: p.org_id,
    type: 'mailbox.access_revoked',
    actor: actorOf(p),
    ip,
    subject_id: m.id,
    payload: { user_id: userId },
  })
}
