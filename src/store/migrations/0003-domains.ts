// 0003: the management plane. Domains keep their last DNS check (JSON of per-record states)
// for the re-check job to detect changes, and an MTA-STS policy id (RFC 8461 section 3.1)
// that changes whenever the policy does. Users get a default send-from alias.

import type { Kysely } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('domains').addColumn('dns_status', 'text').execute()
  await db.schema.alterTable('domains').addColumn('dns_checked_at', 'bigint').execute()
  await db.schema.alterTable('domains').addColumn('mta_sts_id', 'text').execute()
  await db.schema.alterTable('users').addColumn('default_alias_id', 'text').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('default_alias_id').execute()
  for (const c of ['mta_sts_id', 'dns_checked_at', 'dns_status'])
    await db.schema.alterTable('domains').dropColumn(c).execute()
}
