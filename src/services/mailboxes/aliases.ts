// Aliases: an address (or `@domain`, a catch-all) that delivers to one or more targets, local
// mailboxes or external addresses. Invariants: the alias's domain belongs to the caller's org;
// a local target (on a domain of the same org) must be an existing mailbox; an address is an
// alias or a mailbox, never both; the domain's max_aliases holds; every query is org-scoped.

import type { Kysely, Transaction } from 'kysely'
import { normaliseDomain, parseAddress } from '../../mail/address.ts'
import { newId } from '../../store/ids.ts'
import type { Alias, Database } from '../../store/schema.ts'
import type { Principal } from '../accounts/principal.ts'
import { findDomain } from '../domains/domains.ts'
import { ServiceError } from '../errors.ts'
import { recordChange } from '../events/write.ts'
import type { MailboxesContext } from './mailboxes.ts'

export interface AliasView {
  id: string
  address: string
  domain_id: string
  catch_all: boolean
  targets: string[]
  active: boolean
  created_at: number
  updated_at: number
}

export interface AliasInput {
  address: string
  targets: string[]
  active?: boolean
}

type Tx = Kysely<Database> | Transaction<Database>

const actorOf = (p: Principal) => p.user_id ?? p.key_id
const MAX_TARGETS = 100

export const aliasView = (a: Alias): AliasView => ({
  id: a.id,
  address: a.address,
  domain_id: a.domain_id,
  catch_all: a.address.startsWith('@'),
  targets: JSON.parse(a.targets) as string[],
  active: a.active === 1,
  created_at: a.created_at,
  updated_at: a.updated_at,
})

const invalid = (field: string, message: string) =>
  new ServiceError('invalid', 'INVALID_ADDRESS', `${field} ${message}`, { details: [{ field, message }] })

/** The alias address in canonical form: `local@domain` or `@domain` (catch-all). */
function parseAliasAddress(input: string): { canonical: string; domain: string } {
  const text = input.trim()
  if (text.startsWith('@')) {
    try {
      const domain = normaliseDomain(text.slice(1))
      return { canonical: `@${domain}`, domain }
    } catch (err) {
      throw invalid('address', `is not a valid catch-all: ${(err as Error).message}`)
    }
  }
  try {
    const a = parseAddress(text)
    return { canonical: a.canonical, domain: a.domain }
  } catch (err) {
    throw invalid('address', `is not a valid address: ${(err as Error).message}`)
  }
}

async function checkTargets(db: Tx, orgId: string, targets: string[]): Promise<string[]> {
  if (targets.length === 0) throw invalid('targets', 'needs at least one address')
  if (targets.length > MAX_TARGETS) throw invalid('targets', `may list at most ${MAX_TARGETS} addresses`)
  const out: string[] = []
  for (const [i, t] of targets.entries()) {
    let a: ReturnType<typeof parseAddress>
    try {
      a = parseAddress(t)
    } catch (err) {
      throw invalid(`targets.${i}`, `is not a valid address: ${(err as Error).message}`)
    }
    const local = await db
      .selectFrom('domains')
      .select('id')
      .where('org_id', '=', orgId)
      .where('name', '=', a.domain)
      .executeTakeFirst()
    if (local) {
      const mbx = await db
        .selectFrom('mailboxes')
        .select('id')
        .where('domain_id', '=', local.id)
        .where('address', '=', a.canonical)
        .executeTakeFirst()
      if (!mbx)
        throw invalid(
          `targets.${i}`,
          `${a.canonical} is on a domain of this organisation but is not a mailbox`,
        )
    }
    if (!out.includes(a.canonical)) out.push(a.canonical)
  }
  return out
}

export async function findAlias(db: Tx, orgId: string, id: string): Promise<Alias> {
  const row = await db
    .selectFrom('aliases')
    .selectAll()
    .where('id', '=', id)
    .where('org_id', '=', orgId)
    .executeTakeFirst()
  if (!row) throw new ServiceError('not_found', 'ALIAS_NOT_FOUND', `No alias ${id} in this organisation.`)
  return row
}

export async function createAlias(
  ctx: MailboxesContext,
  p: Principal,
  input: AliasInput,
  ip: string | null,
): Promise<AliasView> {
  const { canonical, domain: domainName } = parseAliasAddress(input.address)
  const now = ctx.clock.now()
  return ctx.store.db.transaction().execute(async (tx) => {
    const domain = await findDomain(tx, p.org_id, domainName)
    const targets = await checkTargets(tx, p.org_id, input.targets)
    if (targets.includes(canonical)) throw invalid('targets', 'must not include the alias itself')
    if (
      await tx
        .selectFrom('mailboxes')
        .select('id')
        .where('domain_id', '=', domain.id)
        .where('address', '=', canonical)
        .executeTakeFirst()
    )
      throw new ServiceError('conflict', 'ADDRESS_TAKEN', `${canonical} is already a mailbox.`)
    if (
      await tx
        .selectFrom('aliases')
        .select('id')
        .where('domain_id', '=', domain.id)
        .where('address', '=', canonical)
        .executeTakeFirst()
    )
      throw new ServiceError('conflict', 'ADDRESS_TAKEN', `${canonical} is already an alias.`)
    const count = await tx
      .selectFrom('aliases')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('domain_id', '=', domain.id)
      .executeTakeFirstOrThrow()
    if (Number(count.n) >= domain.max_aliases)
      throw new ServiceError(
        'conflict',
        'DOMAIN_ALIAS_LIMIT',
        `${domain.name} already has its maximum of ${domain.max_aliases} aliases; raise max_aliases first.`,
      )
    const row: Alias = {
      id: newId('als', now),
      org_id: p.org_id,
      domain_id: domain.id,
      address: canonical,
      targets: JSON.stringify(targets),
      active: input.active === false ? 0 : 1,
      created_at: now,
      updated_at: now,
    }
    await tx.insertInto('aliases').values(row).execute()
    await recordChange(ctx.bus, tx, now, {
      org_id: p.org_id,
      type: 'alias.created',
      actor: actorOf(p),
      ip,
      subject_id: row.id,
      payload: { address: canonical },
      topic: 'alias.changed',
      data: { alias_id: row.id, what: 'created' },
    })
    return aliasView(row)
  })
}

export async function listAliases(
  ctx: MailboxesContext,
  p: Principal,
  filter: { domain?: string } = {},
): Promise<AliasView[]> {
  let q = ctx.store.db.selectFrom('aliases').selectAll().where('org_id', '=', p.org_id)
  if (filter.domain)
    q = q.where('domain_id', '=', (await findDomain(ctx.store.db, p.org_id, filter.domain)).id)
  return (await q.orderBy('address').execute()).map(aliasView)
}

export async function getAlias(ctx: MailboxesContext, p: Principal, id: string): Promise<AliasView> {
  return aliasView(await findAlias(ctx.store.db, p.org_id, id))
}

export async function updateAlias(
  ctx: MailboxesContext,
  p: Principal,
  id: string,
  patch: { targets?: string[]; active?: boolean },
  ip: string | null,
): Promise<AliasView> {
  const now = ctx.clock.now()
  return ctx.store.db.transaction().execute(async (tx) => {
    const a = await findAlias(tx, p.org_id, id)
    const set: Partial<Alias> = { updated_at: now }
    if (patch.targets !== undefined) {
      const targets = await checkTargets(tx, p.org_id, patch.targets)
      if (targets.includes(a.address)) throw invalid('targets', 'must not include the alias itself')
      set.targets = JSON.stringify(targets)
    }
    if (patch.active !== undefined) set.active = patch.active ? 1 : 0
    await tx.updateTable('aliases').set(set).where('id', '=', a.id).where('org_id', '=', p.org_id).execute()
    await recordChange(ctx.bus, tx, now, {
      org_id: p.org_id,
      type: 'alias.updated',
      actor: actorOf(p),
      ip,
      subject_id: a.id,
      payload: { fields: Object.keys(patch) },
      topic: 'alias.changed',
      data: { alias_id: a.id, what: 'updated' },
    })
    return aliasView(await findAlias(tx, p.org_id, a.id))
  })
}

export async function deleteAlias(
  ctx: MailboxesContext,
  p: Principal,
  id: string,
  ip: string | null,
): Promise<void> {
  const now = ctx.clock.now()
  await ctx.store.db.transaction().execute(async (tx) => {
    const a = await findAlias(tx, p.org_id, id)
    await tx.deleteFrom('aliases').where('id', '=', a.id).where('org_id', '=', p.org_id).execute()
    await tx
      .updateTable('users')
      .set({ default_alias_id: null })
      .where('default_alias_id', '=', a.id)
      .execute()
    await recordChange(ctx.bus, tx, now, {
      org_id: p.org_id,
      type: 'alias.deleted',
      actor: actorOf(p),
      ip,
      subject_id: a.id,
      payload: { address: a.address },
      topic: 'alias.changed',
      data: { alias_id: a.id, what: 'deleted' },
    })
  })
}

/**
 * Makes an alias the signed-in user's default send-from address. The user must be able to
 * send as it: an admin or owner, or the alias delivers to a mailbox the user owns or was granted.
 */
export async function setDefaultAlias(ctx: MailboxesContext, p: Principal, id: string): Promise<AliasView> {
  const a = await findAlias(ctx.store.db, p.org_id, id)
  if (a.address.startsWith('@'))
    throw new ServiceError('invalid', 'CATCH_ALL_NOT_SENDABLE', 'A catch-all cannot be a send-from address.')
  const userId = p.user_id as string
  if (!(p.role === 'owner' || p.role === 'admin')) {
    const targets = JSON.parse(a.targets) as string[]
    const reachable = targets.length
      ? await ctx.store.db
          .selectFrom('mailboxes as m')
          .leftJoin('mailbox_grants as g', (j) =>
            j.onRef('g.mailbox_id', '=', 'm.id').on('g.user_id', '=', userId),
          )
          .select('m.id')
          .where('m.org_id', '=', p.org_id)
          .where('m.address', 'in', targets)
          .where((eb) => eb.or([eb('m.owner_user_id', '=', userId), eb('g.user_id', 'is not', null)]))
          .executeTakeFirst()
      : undefined
    if (!reachable)
      throw new ServiceError(
        'forbidden',
        'ALIAS_NOT_YOURS',
        'You can only send as an alias that delivers to a mailbox you can access.',
      )
  }
  await ctx.store.db
    .updateTable('users')
    .set({ default_alias_id: a.id, updated_at: ctx.clock.now() })
    .where('id', '=', userId)
    .where('org_id', '=', p.org_id)
    .execute()
  return aliasView(a)
}
