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
  const domain = await hostedDomain(store, parsed.domain)
  if (!domain) return { kind: 'none', reason: 'not_hosted' }
  if (domain.backup_mx === 1)
    return {
      kind: 'backup',
      org_id: domain.org_id,
      domain_id: domain.id,
      domain: parsed.domain,
      address: parsed.canonical,
    }
  const lookup = async (canonical: string): Promise<Resolution | null> => {
    const m = await db
      .selectFrom('mailboxes')
      .select(['id', 'address', 'active', 'tls_enforce_in'])
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
  const exact = await lookup(parsed.canonical)
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
