// 0012: open and click tracking and one-click unsubscribe (RFC 8058) for sent mail.
// - tracked_messages: one row per tracked or unsubscribable outbound message, keyed by the
//   random key its tokens carry (the unique part of its Message-ID, known at compose time,
//   before the queue id exists), with the recipient when the message has exactly one, what
//   was turned on, and counters.
// - tracked_links: the http(s) URLs that were in the HTML, by index; a click redirects only to
//   the URL stored here (the token carries the index, never a URL).

import type { Kysely } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  const s = db.schema
  await s
    .createTable('tracked_messages')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('outbound_id', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text')
    .addColumn('track_opens', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('track_clicks', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('list_unsubscribe', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('opens', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('clicks', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await s.createIndex('tracked_messages_outbound').on('tracked_messages').column('outbound_id').execute()
  await s
    .createTable('tracked_links')
    .addColumn('message_key', 'text', (c) =>
      c.notNull().references('tracked_messages.key').onDelete('cascade'),
    )
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('tracked_links_pk', ['message_key', 'idx'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('tracked_links').execute()
  await db.schema.dropTable('tracked_messages').execute()
}
