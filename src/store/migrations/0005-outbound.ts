// 0005: outbound mail. Extends the queue tables of 0001 with what delivery needs (the signed
// return path, per-recipient type and timing, the message's origin), and adds the trace of
// every delivery step, the org suppression list, idempotency records for the send API and
// per-org queue pauses. Recipients carry org_id and created_at so per-org caps count them
// from an index.

import type { Kysely } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  const s = db.schema
  const add = (table: string, col: string, type: 'text' | 'bigint' | 'integer', def?: string | number) =>
    s
      .alterTable(table)
      .addColumn(col, type, (c) => (def === undefined ? c : c.notNull().defaultTo(def)))
      .execute()
  await add('outbound_messages', 'origin', 'text', 'api')
  await add('outbound_messages', 'message_id_header', 'text')
  await add('outbound_messages', 'headers_json', 'text', '{}')
  await add('outbound_messages', 'first_attempt_at', 'bigint')
  await add('outbound_messages', 'finished_at', 'bigint')
  await add('outbound_messages', 'expires_at', 'bigint')
  await add('outbound_messages', 'delay_notified', 'integer', 0)
  await add('outbound_messages', 'held_reason', 'text')
  await add('outbound_messages', 'system_mail_id', 'text')
  await add('outbound_recipients', 'type', 'text', 'to')
  await add('outbound_recipients', 'delivered_at', 'bigint')
  await add('outbound_recipients', 'remote_mta', 'text')
  await s
    .createIndex('outbound_recipients_org_time')
    .on('outbound_recipients')
    .columns(['org_id', 'created_at'])
    .execute()
  await s
    .createIndex('outbound_messages_org_created')
    .on('outbound_messages')
    .columns(['org_id', 'created_at'])
    .execute()

  await s
    .createTable('outbound_trace')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('outbound_id', 'text', (c) =>
      c.notNull().references('outbound_messages.id').onDelete('cascade'),
    )
    .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('at', 'bigint', (c) => c.notNull())
    .execute()
  await s.createIndex('outbound_trace_outbound').on('outbound_trace').columns(['outbound_id', 'at']).execute()

  await s
    .createTable('suppressions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('outbound_id', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('suppressions_org_address', ['org_id', 'address'] as never)
    .execute()

  await s
    .createTable('idempotency_keys')
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('status', 'integer', (c) => c.notNull())
    .addColumn('response', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['org_id', 'key'] as never)
    .execute()

  await s
    .createTable('queue_pauses')
    .addColumn('org_id', 'text', (c) => c.primaryKey().references('orgs.id').onDelete('cascade'))
    .addColumn('paused_by', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['queue_pauses', 'idempotency_keys', 'suppressions', 'outbound_trace'])
    await db.schema.dropTable(t).execute()
  await db.schema.dropIndex('outbound_messages_org_created').execute()
  await db.schema.dropIndex('outbound_recipients_org_time').execute()
  for (const c of ['remote_mta', 'delivered_at', 'type'])
    await db.schema.alterTable('outbound_recipients').dropColumn(c).execute()
  for (const c of [
    'system_mail_id',
    'held_reason',
    'delay_notified',
    'expires_at',
    'finished_at',
    'first_attempt_at',
    'headers_json',
    'message_id_header',
    'origin',
  ])
    await db.schema.alterTable('outbound_messages').dropColumn(c).execute()
}
