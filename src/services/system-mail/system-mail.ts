// The system-mail service: every message Postern itself sends to people (verification codes,
// password resets, invitations, notices) goes through queue() into `system_mail`. Until the
// outbound capability drains that table through the signed delivery path, the rows are the
// record (and tests read them). Invariant: callers never compose or send mail themselves.

import type { Kysely, Transaction } from 'kysely'
import { newId } from '../../store/ids.ts'
import type { Database, SystemMailTable } from '../../store/schema.ts'

export interface SystemMessage {
  org_id: string | null
  kind: SystemMailTable['kind']
  to: string
  subject: string
  text: string
}

export async function queueSystemMail(
  db: Kysely<Database> | Transaction<Database>,
  now: number,
  m: SystemMessage,
): Promise<string> {
  const id = newId('eml', now)
  await db
    .insertInto('system_mail')
    .values({
      id,
      org_id: m.org_id,
      kind: m.kind,
      to_address: m.to,
      subject: m.subject,
      text: m.text,
      created_at: now,
      sent_at: null,
    })
    .execute()
  return id
}
