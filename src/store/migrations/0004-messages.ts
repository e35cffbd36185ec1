// 0004: stored mail. Each message keeps the attachment list from its one parse (so listing
// never re-parses) and its SMTP envelope; the full-text index is dialect-specific:
// SQLite: an FTS5 table whose rowid is the message's rowid (subject, addresses, body text);
// PostgreSQL: a tsvector column with a GIN index ('simple' configuration: no stemming, so
// every language is indexed the same way).

import { type Kysely, sql } from 'kysely'

const isPostgres = (db: Kysely<unknown>) => db.getExecutor().adapter.constructor.name.startsWith('Postgres')

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('messages')
    .addColumn('attachments', 'text', (c) => c.notNull().defaultTo('[]'))
    .execute()
  await db.schema.alterTable('messages').addColumn('envelope', 'text').execute()
  await db.schema
    .alterTable('messages')
    .addColumn('reply_to_json', 'text', (c) => c.notNull().defaultTo('[]'))
    .execute()
  if (isPostgres(db)) {
    await db.schema.alterTable('messages').addColumn('search', sql`tsvector`).execute()
    await sql`CREATE INDEX messages_search ON messages USING GIN (search)`.execute(db)
  } else {
    await sql`CREATE VIRTUAL TABLE messages_fts USING fts5(subject, addresses, body, tokenize = 'unicode61 remove_diacritics 2')`.execute(
      db,
    )
  }
  await db.schema
    .createIndex('folder_messages_folder_created')
    .on('folder_messages')
    .columns(['folder_id', 'created_at'])
    .execute()
  // Threading by subject looks up (mailbox, subject) within a time window.
  await db.schema
    .createIndex('threads_mailbox_subject')
    .on('threads')
    .columns(['mailbox_id', 'subject_norm', 'last_message_at'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('threads_mailbox_subject').execute()
  await db.schema.dropIndex('folder_messages_folder_created').execute()
  if (isPostgres(db)) await db.schema.alterTable('messages').dropColumn('search').execute()
  else await sql`DROP TABLE messages_fts`.execute(db)
  for (const c of ['reply_to_json', 'envelope', 'attachments'])
    await db.schema.alterTable('messages').dropColumn(c).execute()
}
