// Who sees what on the live feed (DESIGN.md "Identity and access", applied to events):
// - org-wide admin, read and write keys: every event of their org;
// - a mailbox key: only events about its mailbox;
// - a person: events about the mailboxes they own or were granted, and, for owners and
//   admins, the org's events that concern no mailbox (domains, keys, people, the queue).
// Invariants: nothing of another org, ever (the org check comes first); a person's reachable
// mailboxes are re-read on refresh() (the feed calls it on mailbox changes and heartbeats).

import type { Kysely } from 'kysely'
import type { Database } from '../../store/schema.ts'
import type { Principal } from '../accounts/principal.ts'
import { reachableMailboxIds } from '../messages/access.ts'

export interface FeedScope {
  readonly orgId: string
  /** Whether an event of the org about `mailboxId` (null: about no mailbox) is visible. */
  sees(orgId: string, mailboxId: string | null): boolean
  refresh(): Promise<void>
}

export async function feedScope(db: Kysely<Database>, p: Principal): Promise<FeedScope> {
  const orgWideKey =
    p.kind === 'key' && (p.key_scope === 'admin' || p.key_scope === 'read' || p.key_scope === 'write')
  const orgEvents = orgWideKey || (p.kind === 'session' && (p.role === 'owner' || p.role === 'admin'))
  let mailboxes = new Set<string>()
  const refresh = async () => {
    if (orgWideKey) return
    const rows = await reachableMailboxIds(db, p).execute()
    mailboxes = new Set(rows.map((r) => r.id))
  }
  await refresh()
  return {
    orgId: p.org_id,
    sees(orgId, mailboxId) {
      if (orgId !== p.org_id) return false
      if (mailboxId === null) return orgEvents
      return orgWideKey || mailboxes.has(mailboxId)
    },
    refresh,
  }
}
