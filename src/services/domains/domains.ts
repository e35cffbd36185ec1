// Hosted domains: create, list, get (by id or name), update, delete; DKIM keys; the DNS
// records to publish and their live status; verification; the daily re-check.
// Invariants:
// - Every query is scoped by the caller's org.
// - A domain name is verified in at most one org (a partial unique index backs this). Another
//   org may add the same name only as pending, with its own ownership token; adding or
//   verifying a name verified elsewhere is 409.
// - Only verified, active domains receive mail (services/mailboxes/resolve.ts reads this).

import { randomBytes } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import type { Resolver } from '../../dns/resolver.ts'
import { normaliseDomain } from '../../mail/address.ts'
import type { ChangeBus } from '../../store/change-bus.ts'
import type { Store } from '../../store/db.ts'
import { newId } from '../../store/ids.ts'
import type { Database, Domain } from '../../store/schema.ts'
import type { Clock } from '../../time/clock.ts'
import type { Principal } from '../accounts/principal.ts'
import { ServiceError } from '../errors.ts'
import { notifyChange } from '../events/changes.ts'
import { writeEvent } from '../events/write.ts'
import { type DkimKeyView, dkimKeyView, publishedDkimKeys, rotateDkimKeys } from './dkim.ts'
import { type DnsRecord, domainDnsRecords, mtaStsPolicy, zoneFileSnippet } from './dns-records.ts'
import { checkDomainDns, type DnsStatus } from './dns-status.ts'

const MB = 1024 * 1024

export interface DomainSettings {
  /** The server's host name: MX, SRV and client set-up target. */
  mailHost: string
  ports: { submission: number; submissions: number; imap: number; imaps: number }
  dmarcPolicy: 'none' | 'quarantine' | 'reject'
  mtaStsMode: 'testing' | 'enforce' | 'none'
  mtaStsMaxAgeSeconds: number
  ttl: number
  dkimGraceMs: number
}

export interface DomainsContext {
  store: Store
  clock: Clock
  resolver: Resolver
  bus: ChangeBus
  keyEncryptionKey: Buffer
  settings: DomainSettings
}

export interface DomainView {
  id: string
  name: string
  status: 'pending' | 'verified'
  verified_at: number | null
  active: boolean
  description: string
  max_aliases: number
  max_mailboxes: number
  default_quota_mb: number
  max_quota_mb: number
  total_quota_mb: number
  backup_mx: boolean
  mailboxes: number
  aliases: number
  quota_allocated_mb: number
  used_bytes: number
  dns_checked_at: number | null
  created_at: number
  updated_at: number
}

export interface DomainInput {
  name: string
  active?: boolean
  description?: string
  max_aliases?: number
  max_mailboxes?: number
  default_quota_mb?: number
  max_quota_mb?: number
  total_quota_mb?: number
  backup_mx?: boolean
}

export type DomainPatch = Omit<DomainInput, 'name'>

type Tx = Kysely<Database> | Transaction<Database>

const actorOf = (p: Principal) => p.user_id ?? p.key_id

async function viewOf(db: Tx, d: Domain): Promise<DomainView> {
  const mbx = await db
    .selectFrom('mailboxes')
    .select((eb) => [
      eb.fn.countAll<number>().as('n'),
      eb.fn.sum<number>('quota_bytes').as('quota'),
      eb.fn.sum<number>('used_bytes').as('used'),
    ])
    .where('domain_id', '=', d.id)
    .executeTakeFirstOrThrow()
  const als = await db
    .selectFrom('aliases')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('domain_id', '=', d.id)
    .executeTakeFirstOrThrow()
  return {
    id: d.id,
    name: d.name,
    status: d.status,
    verified_at: d.verified_at,
    active: d.active === 1,
    description: d.description,
    max_aliases: d.max_aliases,
    max_mailboxes: d.max_mailboxes,
    default_quota_mb: Math.round(d.default_quota_bytes / MB),
    max_quota_mb: Math.round(d.max_quota_bytes / MB),
    total_quota_mb: Math.round(d.total_quota_bytes / MB),
    backup_mx: d.backup_mx === 1,
    mailboxes: Number(mbx.n),
    aliases: Number(als.n),
    quota_allocated_mb: Math.round(Number(mbx.quota ?? 0) / MB),
    used_bytes: Number(mbx.used ?? 0),
    dns_checked_at: d.dns_checked_at,
    created_at: d.created_at,
    updated_at: d.updated_at,
  }
}

function checkLimits(v: { default_quota_mb: number; max_quota_mb: number; total_quota_mb: number }): void {
  const problems: { field: string; message: string }[] = []
  if (v.default_quota_mb > v.max_quota_mb)
    problems.push({ field: 'default_quota_mb', message: 'must not exceed max_quota_mb' })
  if (v.max_quota_mb > v.total_quota_mb)
    problems.push({ field: 'max_quota_mb', message: 'must not exceed total_quota_mb' })
  if (problems.length)
    throw new ServiceError(
      'invalid',
      'INVALID_LIMITS',
      problems.map((p) => `${p.field} ${p.message}`).join('; '),
      { details: problems },
    )
}

function parseName(name: string): string {
  try {
    return normaliseDomain(name)
  } catch (err) {
    throw new ServiceError(
      'invalid',
      'INVALID_DOMAIN',
      `${JSON.stringify(name)} is not a valid domain name: ${(err as Error).message}`,
      {
        details: [{ field: 'name', message: (err as Error).message }],
      },
    )
  }
}

/** The org's domain by id or name, or 404. */
export async function findDomain(db: Tx, orgId: string, idOrName: string): Promise<Domain> {
  let q = db.selectFrom('domains').selectAll().where('org_id', '=', orgId)
  if (idOrName.startsWith('dom_')) q = q.where('id', '=', idOrName)
  else {
    let name: string
    try {
      name = normaliseDomain(idOrName)
    } catch {
      throw new ServiceError('not_found', 'DOMAIN_NOT_FOUND', `No domain ${idOrName} in this organisation.`)
    }
    q = q.where('name', '=', name)
  }
  const row = await q.executeTakeFirst()
  if (!row)
    throw new ServiceError('not_found', 'DOMAIN_NOT_FOUND', `No domain ${idOrName} in this organisation.`)
  return row
}

async function verifiedElsewhere(db: Tx, name: string, orgId: string): Promise<boolean> {
  const r = await db
    .selectFrom('domains')
    .select('id')
    .where('name', '=', name)
    .where('status', '=', 'verified')
    .where('org_id', '!=', orgId)
    .executeTakeFirst()
  return r !== undefined
}

async function changed(ctx: DomainsContext, db: Tx, orgId: string, domainId: string, what: string) {
  await notifyChange(ctx.bus, db, 'domain.changed', orgId, { domain_id: domainId, what })
}

export async function createDomain(
  ctx: DomainsContext,
  p: Principal,
  input: DomainInput,
  ip: string | null,
): Promise<DomainView & { dkim: DkimKeyView[] }> {
  const name = parseName(input.name)
  const limits = {
    default_quota_mb: input.default_quota_mb ?? 3072,
    max_quota_mb: input.max_quota_mb ?? 10_240,
    total_quota_mb: input.total_quota_mb ?? 102_400,
  }
  checkLimits(limits)
  const db = ctx.store.db
  const now = ctx.clock.now()
  if (await verifiedElsewhere(db, name, p.org_id))
    throw new ServiceError(
      'conflict',
      'DOMAIN_VERIFIED_ELSEWHERE',
      `${name} is verified by another organisation on this server.`,
    )
  const row: Domain = {
    id: newId('dom', now),
    org_id: p.org_id,
    name,
    status: 'pending',
    ownership_token: randomBytes(16).toString('hex'),
    verified_at: null,
    active: input.active === false ? 0 : 1,
    description: input.description ?? '',
    max_aliases: input.max_aliases ?? 400,
    max_mailboxes: input.max_mailboxes ?? 10,
    default_quota_bytes: limits.default_quota_mb * MB,
    max_quota_bytes: limits.max_quota_mb * MB,
    total_quota_bytes: limits.total_quota_mb * MB,
    backup_mx: input.backup_mx ? 1 : 0,
    dns_status: null,
    dns_checked_at: null,
    mta_sts_id: `${now}`,
    created_at: now,
    updated_at: now,
  }
  return db.transaction().execute(async (tx) => {
    const dup = await tx
      .selectFrom('domains')
      .select('id')
      .where('org_id', '=', p.org_id)
      .where('name', '=', name)
      .executeTakeFirst()
    if (dup)
      throw new ServiceError(
        'conflict',
        'DOMAIN_EXISTS',
        `${name} is already a domain of this organisation (${dup.id}).`,
      )
    await tx.insertInto('domains').values(row).execute()
    const dkim = await rotateDkimKeys(db, ctx.keyEncryptionKey, row, now, ctx.settings.dkimGraceMs, tx)
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'domain.created',
      actor: actorOf(p),
      ip,
      subject_id: row.id,
      payload: { name },
    })
    await changed(ctx, tx, p.org_id, row.id, 'created')
    return { ...(await viewOf(tx, row)), dkim }
  })
}

export async function listDomains(ctx: DomainsContext, p: Principal): Promise<DomainView[]> {
  const rows = await ctx.store.db
    .selectFrom('domains')
    .selectAll()
    .where('org_id', '=', p.org_id)
    .orderBy('name')
    .execute()
  return Promise.all(rows.map((r) => viewOf(ctx.store.db, r)))
}

export async function getDomain(
  ctx: DomainsContext,
  p: Principal,
  idOrName: string,
): Promise<DomainView & { dkim: DkimKeyView[] }> {
  const d = await findDomain(ctx.store.db, p.org_id, idOrName)
  const keys = await ctx.store.db
    .selectFrom('dkim_keys')
    .selectAll()
    .where('domain_id', '=', d.id)
    .orderBy('created_at')
    .execute()
  return { ...(await viewOf(ctx.store.db, d)), dkim: keys.map(dkimKeyView) }
}

export async function updateDomain(
  ctx: DomainsContext,
  p: Principal,
  idOrName: string,
  patch: DomainPatch,
  ip: string | null,
): Promise<DomainView> {
  const now = ctx.clock.now()
  return ctx.store.db.transaction().execute(async (tx) => {
    const d = await findDomain(tx, p.org_id, idOrName)
    const next = {
      default_quota_mb: patch.default_quota_mb ?? Math.round(d.default_quota_bytes / MB),
      max_quota_mb: patch.max_quota_mb ?? Math.round(d.max_quota_bytes / MB),
      total_quota_mb: patch.total_quota_mb ?? Math.round(d.total_quota_bytes / MB),
    }
    checkLimits(next)
    const current = await viewOf(tx, d)
    if (patch.max_mailboxes !== undefined && patch.max_mailboxes < current.mailboxes)
      throw new ServiceError(
        'conflict',
        'LIMIT_BELOW_USE',
        `max_mailboxes ${patch.max_mailboxes} is below the ${current.mailboxes} mailboxes that exist.`,
      )
    if (patch.max_aliases !== undefined && patch.max_aliases < current.aliases)
      throw new ServiceError(
        'conflict',
        'LIMIT_BELOW_USE',
        `max_aliases ${patch.max_aliases} is below the ${current.aliases} aliases that exist.`,
      )
    if (next.total_quota_mb < current.quota_allocated_mb)
      throw new ServiceError(
        'conflict',
        'LIMIT_BELOW_USE',
        `total_quota_mb ${next.total_quota_mb} is below the ${current.quota_allocated_mb} MB already given to mailboxes.`,
      )
    const biggest = await tx
      .selectFrom('mailboxes')
      .select((eb) => eb.fn.max<number>('quota_bytes').as('q'))
      .where('domain_id', '=', d.id)
      .executeTakeFirstOrThrow()
    if (Number(biggest.q ?? 0) > next.max_quota_mb * MB)
      throw new ServiceError(
        'conflict',
        'LIMIT_BELOW_USE',
        `max_quota_mb ${next.max_quota_mb} is below a mailbox's quota; lower that mailbox first.`,
      )
    const set: Partial<Domain> = {
      updated_at: now,
      default_quota_bytes: next.default_quota_mb * MB,
      max_quota_bytes: next.max_quota_mb * MB,
      total_quota_bytes: next.total_quota_mb * MB,
    }
    if (patch.active !== undefined) set.active = patch.active ? 1 : 0
    if (patch.description !== undefined) set.description = patch.description
    if (patch.max_aliases !== undefined) set.max_aliases = patch.max_aliases
    if (patch.max_mailboxes !== undefined) set.max_mailboxes = patch.max_mailboxes
    if (patch.backup_mx !== undefined) set.backup_mx = patch.backup_mx ? 1 : 0
    await tx.updateTable('domains').set(set).where('id', '=', d.id).where('org_id', '=', p.org_id).execute()
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'domain.updated',
      actor: actorOf(p),
      ip,
      subject_id: d.id,
      payload: { fields: Object.keys(patch) },
    })
    await changed(ctx, tx, p.org_id, d.id, 'updated')
    return viewOf(tx, await findDomain(tx, p.org_id, d.id))
  })
}

/** Deletes a domain; refused while mailboxes or aliases exist unless `force` (which deletes them). */
export async function deleteDomain(
  ctx: DomainsContext,
  p: Principal,
  idOrName: string,
  force: boolean,
  ip: string | null,
): Promise<void> {
  const now = ctx.clock.now()
  await ctx.store.db.transaction().execute(async (tx) => {
    const d = await findDomain(tx, p.org_id, idOrName)
    const v = await viewOf(tx, d)
    if ((v.mailboxes > 0 || v.aliases > 0) && !force)
      throw new ServiceError(
        'conflict',
        'DOMAIN_NOT_EMPTY',
        `${d.name} still has ${v.mailboxes} mailboxes and ${v.aliases} aliases; delete them first or pass force=true to delete them with the domain.`,
      )
    await tx.deleteFrom('aliases').where('domain_id', '=', d.id).execute()
    const mailboxes = await tx.selectFrom('mailboxes').select('id').where('domain_id', '=', d.id).execute()
    for (const m of mailboxes) await releaseMailboxBlobs(tx, m.id, now)
    await tx.deleteFrom('mailboxes').where('domain_id', '=', d.id).execute()
    await tx.deleteFrom('domains').where('id', '=', d.id).execute()
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'domain.deleted',
      actor: actorOf(p),
      ip,
      subject_id: d.id,
      payload: { name: d.name, force },
    })
    await changed(ctx, tx, p.org_id, d.id, 'deleted')
  })
}

/** Drops the blob references of a mailbox's messages (they become collectable). */
export async function releaseMailboxBlobs(tx: Tx, mailboxId: string, now: number): Promise<void> {
  const refs = await tx
    .selectFrom('messages')
    .select(['org_id', 'blob_sha256', (eb) => eb.fn.countAll<number>().as('n')])
    .where('mailbox_id', '=', mailboxId)
    .groupBy(['org_id', 'blob_sha256'])
    .execute()
  for (const r of refs)
    await tx
      .updateTable('blobs')
      .set((eb) => ({ refcount: eb('refcount', '-', Number(r.n)), updated_at: now }))
      .where('namespace', '=', r.org_id)
      .where('sha256', '=', r.blob_sha256)
      .execute()
}

async function recordsFor(ctx: DomainsContext, db: Tx, d: Domain): Promise<DnsRecord[]> {
  const keys = await publishedDkimKeys(db, d.id)
  const s = ctx.settings
  return domainDnsRecords({
    domain: d.name,
    ownershipToken: d.ownership_token,
    mailHost: s.mailHost,
    dkim: keys.map((k) => ({ selector: k.selector, algorithm: k.algorithm, publicKey: k.public_key })),
    ports: s.ports,
    dmarcPolicy: s.dmarcPolicy,
    mtaStsMode: s.mtaStsMode,
    mtaStsId: d.mta_sts_id ?? String(d.created_at),
    ttl: s.ttl,
  })
}

export async function domainRecords(
  ctx: DomainsContext,
  p: Principal,
  idOrName: string,
): Promise<{ domain: string; records: DnsRecord[]; zone: string }> {
  const d = await findDomain(ctx.store.db, p.org_id, idOrName)
  const records = await recordsFor(ctx, ctx.store.db, d)
  return { domain: d.name, records, zone: zoneFileSnippet(records) }
}

async function checkAndStore(ctx: DomainsContext, d: Domain): Promise<DnsStatus> {
  const status = await checkDomainDns(ctx.resolver, await recordsFor(ctx, ctx.store.db, d), ctx.clock.now())
  const compact = JSON.stringify(
    status.records.map((r) => ({ purpose: r.purpose, name: r.name, type: r.type, state: r.state })),
  )
  await ctx.store.db
    .updateTable('domains')
    .set({ dns_status: compact, dns_checked_at: status.checked_at })
    .where('id', '=', d.id)
    .execute()
  return status
}

export async function domainDnsStatus(
  ctx: DomainsContext,
  p: Principal,
  idOrName: string,
): Promise<DnsStatus> {
  return checkAndStore(ctx, await findDomain(ctx.store.db, p.org_id, idOrName))
}

/** Marks the domain verified when its ownership TXT and MX are in place. */
export async function verifyDomain(
  ctx: DomainsContext,
  p: Principal,
  idOrName: string,
  ip: string | null,
): Promise<{ domain: DomainView; dns: DnsStatus }> {
  const d = await findDomain(ctx.store.db, p.org_id, idOrName)
  const dns = await checkAndStore(ctx, d)
  if (d.status === 'verified') return { domain: await viewOf(ctx.store.db, d), dns }
  if (!dns.verified_ready) {
    const missing = dns.records
      .filter((r) => r.required && r.state !== 'ok')
      .map((r) => `${r.purpose}: ${r.detail}`)
    throw new ServiceError(
      'conflict',
      'DNS_NOT_READY',
      `Publish the required records first (see dns-records): ${missing.join('; ')}`,
    )
  }
  await markVerified(ctx, p, d, ip, { name: d.name })
  return { domain: await viewOf(ctx.store.db, await findDomain(ctx.store.db, p.org_id, d.id)), dns }
}

/**
 * Marks a domain verified on the operator's word, without looking anything up: for a laptop or
 * a test box with no public DNS (mox's localserve does the same). Only the CLI calls this (the
 * HTTP API has no way to reach it); the event says the operator vouched. Refused when another
 * organisation has the name at all, verified or not: the operator's word settles ownership
 * between nobody and this org, never between two tenants.
 */
export async function trustDomainAsOperator(
  ctx: DomainsContext,
  p: Principal,
  idOrName: string,
): Promise<DomainView> {
  const d = await findDomain(ctx.store.db, p.org_id, idOrName)
  const other = await ctx.store.db
    .selectFrom('domains')
    .select('id')
    .where('name', '=', d.name)
    .where('org_id', '!=', p.org_id)
    .executeTakeFirst()
  if (other)
    throw new ServiceError(
      'conflict',
      'DOMAIN_HELD_ELSEWHERE',
      `${d.name} has been added by another organisation on this server; verify it through DNS instead.`,
    )
  if (d.status !== 'verified')
    await markVerified(ctx, p, d, null, { name: d.name, trusted_by_operator: true })
  return viewOf(ctx.store.db, await findDomain(ctx.store.db, p.org_id, d.id))
}

async function markVerified(
  ctx: DomainsContext,
  p: Principal,
  d: { id: string; name: string },
  ip: string | null,
  payload: Record<string, unknown>,
): Promise<void> {
  const now = ctx.clock.now()
  try {
    await ctx.store.db.transaction().execute(async (tx) => {
      if (await verifiedElsewhere(tx, d.name, p.org_id))
        throw new ServiceError(
          'conflict',
          'DOMAIN_VERIFIED_ELSEWHERE',
          `${d.name} is verified by another organisation on this server.`,
        )
      await tx
        .updateTable('domains')
        .set({ status: 'verified', verified_at: now, updated_at: now })
        .where('id', '=', d.id)
        .execute()
      await writeEvent(tx, now, {
        org_id: p.org_id,
        type: 'domain.verified',
        actor: actorOf(p),
        ip,
        subject_id: d.id,
        payload,
      })
      await changed(ctx, tx, p.org_id, d.id, 'verified')
    })
  } catch (err) {
    if (err instanceof ServiceError) throw err
    if (/unique|duplicate/i.test(String((err as Error).message)))
      throw new ServiceError(
        'conflict',
        'DOMAIN_VERIFIED_ELSEWHERE',
        `${d.name} is verified by another organisation on this server.`,
      )
    throw err
  }
}

export async function rotateDomainKeys(
  ctx: DomainsContext,
  p: Principal,
  idOrName: string,
  ip: string | null,
): Promise<DkimKeyView[]> {
  const d = await findDomain(ctx.store.db, p.org_id, idOrName)
  const now = ctx.clock.now()
  const keys = await rotateDkimKeys(ctx.store.db, ctx.keyEncryptionKey, d, now, ctx.settings.dkimGraceMs)
  await writeEvent(ctx.store.db, now, {
    org_id: p.org_id,
    type: 'domain.dkim_rotated',
    actor: actorOf(p),
    ip,
    subject_id: d.id,
    payload: { selectors: keys.map((k) => k.selector) },
  })
  await changed(ctx, ctx.store.db, p.org_id, d.id, 'dkim')
  return keys
}

/** The daily job: re-checks verified domains and records each change of a record's state as an event. */
export async function recheckVerifiedDomains(
  ctx: DomainsContext,
): Promise<{ checked: number; changed: number }> {
  const rows = await ctx.store.db.selectFrom('domains').selectAll().where('status', '=', 'verified').execute()
  let changedCount = 0
  for (const d of rows) {
    const before = new Map<string, string>(
      (d.dns_status
        ? (JSON.parse(d.dns_status) as { purpose: string; name: string; type: string; state: string }[])
        : []
      ).map((r) => [`${r.purpose} ${r.type} ${r.name}`, r.state]),
    )
    const status = await checkAndStore(ctx, d)
    const changes = status.records
      .filter((r) => before.size > 0 && before.get(`${r.purpose} ${r.type} ${r.name}`) !== r.state)
      .map((r) => ({
        purpose: r.purpose,
        name: r.name,
        from: before.get(`${r.purpose} ${r.type} ${r.name}`) ?? null,
        to: r.state,
        detail: r.detail,
      }))
    if (changes.length) {
      changedCount++
      await writeEvent(ctx.store.db, status.checked_at, {
        org_id: d.org_id,
        type: 'domain.dns_changed',
        actor: 'system',
        ip: null,
        subject_id: d.id,
        payload: { name: d.name, changes },
      })
    }
  }
  return { checked: rows.length, changed: changedCount }
}

/** A hosted, verified, active domain by name (client set-up, MTA-STS), or null. */
export async function findServedDomain(ctx: { store: Store }, name: string): Promise<Domain | null> {
  let n: string
  try {
    n = normaliseDomain(name)
  } catch {
    return null
  }
  const row = await ctx.store.db
    .selectFrom('domains')
    .selectAll()
    .where('name', '=', n)
    .where('status', '=', 'verified')
    .where('active', '=', 1)
    .executeTakeFirst()
  return row ?? null
}

export function mtaStsPolicyFor(ctx: DomainsContext): string {
  return mtaStsPolicy({
    mailHost: ctx.settings.mailHost,
    mode: ctx.settings.mtaStsMode,
    maxAgeSeconds: ctx.settings.mtaStsMaxAgeSeconds,
  })
}
