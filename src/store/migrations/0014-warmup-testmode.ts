// 0014: alias warm-up ramps and test mode (issue 15, items 7 and 8).
// - alias_warmups: one ramp per sender address of an org: the daily caps (JSON array of
//   integers, day 1 first), when day 1 started, and the recipients counted on the current day
//   (`used` belongs to day index `used_day`; a new day starts from 0 without a reset job). The
//   token is the ramp's public handle (an identifier, not a credential), unique across orgs.
// - api_keys.test: the key sends in test mode (nothing reaches the network).
// - outbound_messages.test: the message was sent with a test key; its outcomes are simulated.
// Booleans are 0/1 integers on both dialects, times epoch milliseconds.

import type { Kysely } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  const s = db.schema
  await s
    .createTable('alias_warmups')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('alias_id', 'text')
    .addColumn('token', 'text', (c) => c.notNull())
    .addColumn('curve', 'text', (c) => c.notNull())
    .addColumn('schedule', 'text', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('used_day', 'integer', (c) => c.notNull().defaultTo(-1))
    .addColumn('used', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()
  await s
    .createIndex('alias_warmups_org_address')
    .on('alias_warmups')
    .columns(['org_id', 'address'])
    .unique()
    .execute()
  await s.createIndex('alias_warmups_token').on('alias_warmups').column('token').unique().execute()
  await s
    .alterTable('api_keys')
    .addColumn('test', 'integer', (c) => c.notNull().defaultTo(0))
    .execute()
  await s
    .alterTable('outbound_messages')
    .addColumn('test', 'integer', (c) => c.notNull().defaultTo(0))
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('outbound_messages').dropColumn('test').execute()
  await db.schema.alterTable('api_keys').dropColumn('test').execute()
  await db.schema.dropTable('alias_warmups').execute()
}
