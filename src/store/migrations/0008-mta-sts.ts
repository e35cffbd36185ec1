// 0008: the MTA-STS policy cache (RFC 8461 5.1), shared by every node through the database.
// One row per destination domain (A-label, lower case, no trailing dot). The policy columns
// hold the last policy fetched successfully and stay null until one was; the failure columns
// remember the last fetch that failed (for which TXT id, when, why) so a broken policy host is
// not asked again for every message. Remote domains belong to no tenant: the rows carry no
// org id, and nothing tenant-specific is stored in them.

import type { Kysely } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('mta_sts_policies')
    .addColumn('domain', 'text', (c) => c.primaryKey())
    .addColumn('policy_id', 'text')
    .addColumn('mode', 'text')
    .addColumn('mx', 'text')
    .addColumn('max_age', 'bigint')
    .addColumn('fetched_at', 'bigint')
    .addColumn('expires_at', 'bigint')
    .addColumn('failed_id', 'text')
    .addColumn('failed_at', 'bigint')
    .addColumn('last_error', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('mta_sts_policies').execute()
}
