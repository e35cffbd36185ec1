// 0016: deliverability analytics. `analytics_counts` holds one row of counters per org, bucket
// (an hour, grain 'hour', and the same sums again per day, grain 'day'), tag, sending domain,
// recipient domain and mailbox, folded from the events table by the analytics job
// (services/analytics/fold.ts); `analytics_cursor` holds the id of the last event folded,
// updated in the same transaction as the counters, so each event is counted once. Tag '' is
// the row every event is counted in; each tag of a message adds a row of its own, so totals
// never double count tagged mail; likewise recipient domain '*' counts every recipient
// domain, so a summary reads a few rows per bucket however many domains the org mails. The
// key starts with org, recipient domain, tag and grain, so a summary, a summary of one
// recipient domain and a series per tag each read one contiguous range; the (org, tag, grain,
// start) index serves series per recipient domain. Whole days are read from day rows, 24
// times fewer than hour rows.

import type { Kysely } from 'kysely'

const COUNTER_COLUMNS = [
  'sent',
  'delivered',
  'deferred',
  'bounced_hard',
  'bounced_soft',
  'complained',
  'opened',
  'clicked',
  'unsubscribed',
  'suppressed',
] as const

export async function up(db: Kysely<unknown>): Promise<void> {
  const s = db.schema
  let t = s
    .createTable('analytics_counts')
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('tag', 'text', (c) => c.notNull())
    .addColumn('grain', 'text', (c) => c.notNull())
    .addColumn('start', 'bigint', (c) => c.notNull())
    .addColumn('sending_domain', 'text', (c) => c.notNull())
    .addColumn('recipient_domain', 'text', (c) => c.notNull())
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
  for (const col of COUNTER_COLUMNS) t = t.addColumn(col, 'bigint', (c) => c.notNull().defaultTo(0))
  await t
    .addPrimaryKeyConstraint('analytics_counts_pk', [
      'org_id',
      'recipient_domain',
      'tag',
      'grain',
      'start',
      'sending_domain',
      'mailbox_id',
    ])
    .execute()
  // Series grouped by recipient domain read every domain's rows of a time range.
  await s
    .createIndex('analytics_counts_time')
    .on('analytics_counts')
    .columns(['org_id', 'tag', 'grain', 'start'])
    .execute()
  await s
    .createTable('analytics_cursor')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('last_id', 'text', (c) => c.notNull())
    .addColumn('folded', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('analytics_cursor').execute()
  await db.schema.dropTable('analytics_counts').execute()
}
