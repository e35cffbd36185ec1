// Rows the analytics tests and benchmark build directly in the store: organisations, domains,
// outbound messages with recipients, and events written through the one event writer, as
// the queue would write them (payload shapes of services/outbound/worker.ts and feedback.ts).

import type { EventType } from '../../src/services/events/types.ts'
import { writeEvent } from '../../src/services/events/write.ts'
import type { Store } from '../../src/store/db.ts'
import { newId } from '../../src/store/ids.ts'

type Db = Store['db']

export async function addOrg(db: Db, name: string, now: number): Promise<string> {
  const id = newId('org', now)
  await db
    .insertInto('orgs')
    .values({ id, name, created_at: now, updated_at: now, deleted_at: null })
    .execute()
  return id
}

export async function addDomain(db: Db, orgId: string, name: string, now: number): Promise<string> {
  const id = newId('dom', now)
  await db
    .insertInto('domains')
    .values({
      id,
      org_id: orgId,
      name,
      ownership_token: `tok-${id}`,
      verified_at: null,
      default_quota_bytes: 1,
      max_quota_bytes: 1,
      total_quota_bytes: 1,
      dns_status: null,
      dns_checked_at: null,
      mta_sts_id: null,
      created_at: now,
      updated_at: now,
    })
    .execute()
  return id
}

export interface FixtureMessage {
  id: string
  org_id: string
  /** The sending domain the rollup should show. */
  sending_domain: string
  tags: Record<string, string>
  recipients: { address: string; suppressed: boolean }[]
  /** 'system': Postern's own mail (codes, invitations), which analytics leave out. */
  origin?: 'api' | 'system'
}

export async function addMessage(
  db: Db,
  m: Omit<FixtureMessage, 'id'> & { domain_id: string | null; now: number },
): Promise<FixtureMessage> {
  const id = newId('eml', m.now)
  await db
    .insertInto('outbound_messages')
    .values({
      id,
      org_id: m.org_id,
      domain_id: m.domain_id,
      mailbox_id: null,
      api_key_id: null,
      user_id: null,
      mail_from: `bounces+${id}@${m.sending_domain}`,
      from_header: `sender@${m.sending_domain}`,
      blob_sha256: null,
      status: 'sent',
      idempotency_key: null,
      idempotency_hash: null,
      tags: JSON.stringify(m.tags),
      scheduled_at: null,
      next_attempt_at: null,
      lease_owner: null,
      lease_until: null,
      message_id_header: null,
      origin: m.origin ?? 'api',
      created_at: m.now,
      updated_at: m.now,
    } as never)
    .execute()
  if (m.recipients.length)
    await db
      .insertInto('outbound_recipients')
      .values(
        m.recipients.map((r) => ({
          id: newId('rcp', m.now),
          org_id: m.org_id,
          outbound_id: id,
          address: r.address,
          domain: r.address.split('@')[1] as string,
          state: r.suppressed ? ('suppressed' as const) : ('delivered' as const),
          next_attempt_at: null,
          last_code: null,
          last_enhanced_code: null,
          last_response: null,
          dsn_notify: null,
          dsn_orcpt: null,
          delivered_at: null,
          remote_mta: null,
          dsn_pending: null,
          created_at: m.now,
          updated_at: m.now,
        })),
      )
      .execute()
  return {
    id,
    org_id: m.org_id,
    sending_domain: m.sending_domain,
    tags: m.tags,
    recipients: m.recipients,
    origin: m.origin ?? 'api',
  }
}

export async function addEvent(
  db: Db,
  e: {
    org_id: string
    type: EventType
    at: number
    email_id: string | null
    payload?: Record<string, unknown>
  },
): Promise<void> {
  await writeEvent(db, e.at, {
    org_id: e.org_id,
    type: e.type,
    actor: 'queue',
    ip: null,
    subject_id: e.email_id,
    payload: { ...(e.email_id ? { email_id: e.email_id } : {}), ...e.payload },
  })
}
