// 0015: the events API filters and webhooks.
// - events.mailbox_id and events.recipient: what GET /v1/events filters on besides type and
//   subject (a mailbox's inbound mail; an outbound recipient), set by the event writer; with
//   indexes for each filter and one on the time alone for the retention prune.
// - webhooks: an org's endpoints: URL, event-type filter (JSON array, empty = every type),
//   status (pending until the verification challenge is answered, active, disabled), the
//   signing secret sealed with the key-encryption key, and the previous secret (still signing
//   until old_secret_until) after a rotation; the failure streak behind auto-disable.
// - webhook_deliveries: the durable outbox and its log: one row per (endpoint, event),
//   unique, written in the event's transaction; leased by the sender (lease_owner/until),
//   retried on next_attempt_at until it succeeds or its retry window closes.
// - webhook_attempts: one row per HTTP attempt (status code, latency, response excerpt, error).

import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  const s = db.schema
  await s.alterTable('events').addColumn('mailbox_id', 'text').execute()
  await s.alterTable('events').addColumn('recipient', 'text').execute()
  await s.createIndex('events_time').on('events').column('created_at').execute()
  await s.createIndex('events_org_type_time').on('events').columns(['org_id', 'type', 'created_at']).execute()
  await s
    .createIndex('events_org_mailbox_time')
    .on('events')
    .columns(['org_id', 'mailbox_id', 'created_at'])
    .where(sql.ref('mailbox_id'), 'is not', null)
    .execute()
  await s
    .createIndex('events_org_recipient')
    .on('events')
    .columns(['org_id', 'recipient'])
    .where(sql.ref('recipient'), 'is not', null)
    .execute()

  await s
    .createTable('webhooks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('event_types', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('secret_enc', 'text', (c) => c.notNull())
    .addColumn('old_secret_enc', 'text')
    .addColumn('old_secret_until', 'bigint')
    .addColumn('challenge_hash', 'text')
    .addColumn('challenge_expires_at', 'bigint')
    .addColumn('verified_at', 'bigint')
    .addColumn('failing_since', 'bigint')
    .addColumn('consecutive_failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('disabled_at', 'bigint')
    .addColumn('disabled_reason', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()
  await s.createIndex('webhooks_org_status').on('webhooks').columns(['org_id', 'status']).execute()

  await s
    .createTable('webhook_deliveries')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('webhook_id', 'text', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
    .addColumn('event_id', 'text')
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('body', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'bigint')
    .addColumn('last_status_code', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('delivered_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()
  await s
    .createIndex('webhook_deliveries_once')
    .on('webhook_deliveries')
    .columns(['webhook_id', 'event_id'])
    .unique()
    .execute()
  await s
    .createIndex('webhook_deliveries_due')
    .on('webhook_deliveries')
    .columns(['status', 'next_attempt_at'])
    .execute()
  await s
    .createIndex('webhook_deliveries_hook_time')
    .on('webhook_deliveries')
    .columns(['webhook_id', 'created_at'])
    .execute()

  await s
    .createTable('webhook_attempts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('delivery_id', 'text', (c) =>
      c.notNull().references('webhook_deliveries.id').onDelete('cascade'),
    )
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('latency_ms', 'integer', (c) => c.notNull())
    .addColumn('response_excerpt', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('error', 'text')
    .addColumn('at', 'bigint', (c) => c.notNull())
    .execute()
  await s.createIndex('webhook_attempts_delivery').on('webhook_attempts').column('delivery_id').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('webhook_attempts').execute()
  await db.schema.dropTable('webhook_deliveries').execute()
  await db.schema.dropTable('webhooks').execute()
  for (const i of ['events_org_recipient', 'events_org_mailbox_time', 'events_org_type_time', 'events_time'])
    await db.schema.dropIndex(i).execute()
  for (const c of ['recipient', 'mailbox_id']) await db.schema.alterTable('events').dropColumn(c).execute()
}
