// Where mail to an address goes: the one routing rule for inbound SMTP and local delivery.
// Order: an exact mailbox; an exact alias; the same two for the address without its
// +subaddress (plus-addressing reaches user@ by default); the domain's catch-all. Only
// domains that are verified and active receive mail, so a pending domain (perhaps claimed by
// someone who does not own it) captures nothing. A domain marked backup MX has no mail of its
// own here: every local part resolves to `backup` (queued on to the domain's real MX).

import { parseAddress, splitSubaddress } from '../../mail/address.ts'
import type { Store } from '../../store/db.ts'

export type Resolution =
  | {
      kind: 'mailbox'
      org_id: string
      mailbox_id: string
      address: string
      active: boolean
      tls_enforce_in: boolean
      /** The mailbox's quota and use as read with it (0: no quota), for RCPT's quota check. */
      quota_bytes: number
      used_bytes: number
    }
  | {
      kind: 'alias'
      org_id: string
      alias_id: string
      domain_id: string
      address: string
      targets: string[]
    }
  | { kind: 'backup'; org_id: string; domain_id: string; domain: string; address: string }
  | { kind: 'none'; reason: 'invalid' | 'not_hosted' | 'unknown_recipient' }

/**
 * The verified, active domain of this name (in whichever org holds it), or undefined: the one
 * test of "hosted here". `backup_mx` 1 means we are only its backup MX (its mail goes on to
 * its real MX, never into a mailbox here).
 */
export function hostedDomain(store: Store, name: string) {
  return store.db
    .selectFrom('domains')
    .select(['id', 'org_id', 'backup_mx'])
    .where('name', '=', name)
    .where('status', '=', 'verified')
    .where('active', '=', 1)
    .executeTakeFirst()
}

export async function resolveRecipient(
  store: Store,
  address: string,
  opts: { subaddressSeparator?: string } = {},
): Promise<Resolution> {
  let parsed: ReturnType<typeof parseAddress>
  try {
    parsed = parseAddress(address)
  } catch {
    return { kind: 'none', reason: 'invalid' }
  }
  const db = store.db
  // The domain and the exact mailbox in one statement (the common case: a plain mailbox).
  const row = await db
    .selectFrom('domains as d')
    .leftJoin('mailboxes as m', (j) =>
      j.onRef('m.domain_id', '=', 'd.id').on('m.address', '=', parsed.canonical),
    )
    .select([
      'd.id as domain_id',
      'd.org_id',
      'd.backup_mx',
      'm.id as mailbox_id',
      'm.address',
      'm.active',
      'm.tls_enforce_in',
      'm.quota_bytes',
      'm.used_bytes',
    ])
    .where('d.name', '=', parsed.domain)
    .where('d.status', '=', 'verified')
    .where('d.active', '=', 1)
    .executeTakeFirst()
  if (!row) return { kind: 'none', reason: 'not_hosted' }
  const domain = { id: row.domain_id, org_id: row.org_id }
  if (row.backup_mx === 1)
    return {
      kind: 'backup',
      org_id: domain.org_id,
      domain_id: domain.id,
      domain: parsed.domain,
      address: parsed.canonical,
    }
  if (row.mailbox_id)
    return {
      kind: 'mailbox',
      org_id: domain.org_id,
      mailbox_id: row.mailbox_id,
      address: row.address as string,
      active: row.active === 1,
      tls_enforce_in: row.tls_enforce_in === 1,
      quota_bytes: Number(row.quota_bytes),
      used_bytes: Number(row.used_bytes),
    }
  const lookup = async (canonical: string, mailbox = true): Promise<Resolution | null> => {
    const m = !mailbox
      ? undefined
      : await db
          .selectFrom('mailboxes')
          .select(['id', 'address', 'active', 'tls_enforce_in', 'quota_bytes', 'used_bytes'])
          .where('domain_id', '=', domain.id)
          .where('address', '=', canonical)
          .executeTakeFirst()
    if (m)
      return {
        kind: 'mailbox',
        org_id: domain.org_id,
        mailbox_id: m.id,
        address: m.address,
        active: m.active === 1,
        tls_enforce_in: m.tls_enforce_in === 1,
        quota_bytes: Number(m.quota_bytes),
        used_bytes: Number(m.used_bytes),
      }
    const a = await db
      .selectFrom('aliases')
      .select(['id', 'address', 'targets'])
      .where('domain_id', '=', domain.id)
      .where('address', '=', canonical)
      .where('active', '=', 1)
      .executeTakeFirst()
    if (a)
      return {
        kind: 'alias',
        org_id: domain.org_id,
        alias_id: a.id,
        domain_id: domain.id,
        address: a.address,
        targets: JSON.parse(a.targets) as string[],
      }
    return null
  }
  const exact = await lookup(parsed.canonical, false)
  if (exact) return exact
  const local = parsed.canonical.slice(0, parsed.canonical.lastIndexOf('@'))
  if (!parsed.quoted) {
    const { base, tag } = splitSubaddress(local, opts.subaddressSeparator ?? '+')
    if (tag !== null && base) {
      const plain = await lookup(`${base}@${parsed.domain}`)
      if (plain) return plain
    }
  }
  const catchAll = await lookup(`@${parsed.domain}`)
  if (catchAll) return catchAll
  return { kind: 'none', reason: 'unknown_recipient' }
}
