// 0011: delivery status notifications (RFC 3461) for mail clients. A submitted message keeps
// its MAIL parameters (RET, ENVID, SMTPUTF8) and the address notices go to; each recipient
// keeps the notice owed to the sender and not yet queued (an outbox, so a crash between the
// outcome and the notice loses neither) and whether its delay notice went out. The partial
// index lets the notice sweep find the few owed rows among all recipients.

import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  const s = db.schema
  await s.alterTable('outbound_messages').addColumn('dsn_ret', 'text').execute()
  await s.alterTable('outbound_messages').addColumn('dsn_envid', 'text').execute()
  await s
    .alterTable('outbound_messages')
    .addColumn('smtputf8', 'integer', (c) => c.notNull().defaultTo(0))
    .execute()
  await s.alterTable('outbound_messages').addColumn('dsn_to', 'text').execute()
  await s.alterTable('outbound_recipients').addColumn('dsn_pending', 'text').execute()
  await s
    .alterTable('outbound_recipients')
    .addColumn('dsn_delay_sent', 'integer', (c) => c.notNull().defaultTo(0))
    .execute()
  await s
    .createIndex('outbound_recipients_dsn_pending')
    .on('outbound_recipients')
    .column('dsn_pending')
    .where(sql.ref('dsn_pending'), 'is not', null)
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('outbound_recipients_dsn_pending').execute()
  for (const c of ['dsn_delay_sent', 'dsn_pending'])
    await db.schema.alterTable('outbound_recipients').dropColumn(c).execute()
  for (const c of ['dsn_to', 'smtputf8', 'dsn_envid', 'dsn_ret'])
    await db.schema.alterTable('outbound_messages').dropColumn(c).execute()
}
