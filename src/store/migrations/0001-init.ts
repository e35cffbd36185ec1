// 0001: the core data model (DESIGN.md, "Data model principles"). Frozen in time: later
// changes are new migrations, never edits here. Portable types only: text ids, bigint epoch
// milliseconds, integer 0/1 booleans, JSON kept in text columns.

import { type Kysely, sql } from 'kysely'

type Db = Kysely<unknown>
type Builder = ReturnType<Db['schema']['createTable']>

const isPostgres = (db: Db) => db.getExecutor().adapter.constructor.name.startsWith('Postgres')

// Column groups reused across tables, each documented once.
const id = (t: Builder) => t.addColumn('id', 'text', (c) => c.primaryKey())
const org = (t: Builder) =>
  t.addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
const stamps = (t: Builder) =>
  t
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
const flag = (t: Builder, name: string, def: 0 | 1) =>
  t.addColumn(name, 'integer', (c) => c.notNull().defaultTo(def))

export async function up(db: Db): Promise<void> {
  const pg = isPostgres(db)
  const s = db.schema

  await s
    .createTable('server_meta')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()

  await stamps(id(s.createTable('orgs')))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('settings', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('deleted_at', 'bigint')
    .execute()

  await flag(stamps(org(id(s.createTable('users')))), 'disabled', 0)
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('password_hash', 'text')
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('email_verified_at', 'bigint')
    .addColumn('totp_secret_enc', 'text')
    .addColumn('totp_enabled_at', 'bigint')
    .addColumn('preferences', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('last_login_at', 'bigint')
    .execute()
  await s.createIndex('users_org').on('users').column('org_id').execute()

  await org(id(s.createTable('sessions')))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .addColumn('last_seen_at', 'bigint')
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .execute()
  await s.createIndex('sessions_user').on('sessions').column('user_id').execute()

  await flag(stamps(org(id(s.createTable('domains')))), 'active', 1)
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('pending'))
    .addColumn('ownership_token', 'text', (c) => c.notNull())
    .addColumn('verified_at', 'bigint')
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('max_aliases', 'integer', (c) => c.notNull().defaultTo(400))
    .addColumn('max_mailboxes', 'integer', (c) => c.notNull().defaultTo(10))
    .addColumn('default_quota_bytes', 'bigint', (c) => c.notNull())
    .addColumn('max_quota_bytes', 'bigint', (c) => c.notNull())
    .addColumn('total_quota_bytes', 'bigint', (c) => c.notNull())
    .addColumn('backup_mx', 'integer', (c) => c.notNull().defaultTo(0))
    .addUniqueConstraint('domains_org_name', ['org_id', 'name'])
    .execute()
  await s.createIndex('domains_name').on('domains').column('name').execute()
  // A domain name is verified in at most one org (others may hold it only as pending).
  await s
    .createIndex('domains_verified_name')
    .on('domains')
    .column('name')
    .unique()
    .where(sql.ref('status'), '=', 'verified')
    .execute()

  await org(id(s.createTable('dkim_keys')))
    .addColumn('domain_id', 'text', (c) => c.notNull().references('domains.id').onDelete('cascade'))
    .addColumn('selector', 'text', (c) => c.notNull())
    .addColumn('algorithm', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('private_key_enc', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('retire_after', 'bigint')
    .addColumn('retired_at', 'bigint')
    .addUniqueConstraint('dkim_keys_domain_selector', ['domain_id', 'selector'])
    .execute()

  let mailboxes = flag(stamps(org(id(s.createTable('mailboxes')))), 'active', 1)
  mailboxes = flag(flag(flag(mailboxes, 'force_pw_update', 0), 'tls_enforce_in', 0), 'tls_enforce_out', 0)
  await mailboxes
    .addColumn('domain_id', 'text', (c) => c.notNull().references('domains.id'))
    .addColumn('local_part', 'text', (c) => c.notNull())
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('password_hash', 'text')
    .addColumn('quota_bytes', 'bigint', (c) => c.notNull())
    .addColumn('used_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('owner_user_id', 'text', (c) => c.references('users.id').onDelete('set null'))
    .addColumn('modseq', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute()
  // Unique per domain, not installation-wide: two orgs may hold the same pending domain.
  await s
    .createIndex('mailboxes_domain_local')
    .on('mailboxes')
    .columns(['domain_id', 'local_part'])
    .unique()
    .execute()
  await s.createIndex('mailboxes_address').on('mailboxes').column('address').execute()

  await s
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('mailbox_id', 'text', (c) => c.references('mailboxes.id').onDelete('cascade'))
    .addColumn('created_by', 'text', (c) => c.references('users.id').onDelete('set null'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint')
    .addColumn('last_used_at', 'bigint')
    .addColumn('revoked_at', 'bigint')
    .execute()
  await s.createIndex('api_keys_org').on('api_keys').column('org_id').execute()

  await s
    .createTable('mailbox_grants')
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('mailbox_id', 'text', (c) => c.notNull().references('mailboxes.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('mailbox_grants_pk', ['mailbox_id', 'user_id'])
    .execute()

  await flag(stamps(org(id(s.createTable('aliases')))), 'active', 1)
    .addColumn('domain_id', 'text', (c) => c.notNull().references('domains.id'))
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('targets', 'text', (c) => c.notNull())
    .execute()
  await s
    .createIndex('aliases_domain_address')
    .on('aliases')
    .columns(['domain_id', 'address'])
    .unique()
    .execute()
  await s.createIndex('aliases_address').on('aliases').column('address').execute()

  await flag(stamps(org(id(s.createTable('folders')))), 'subscribed', 1)
    .addColumn('mailbox_id', 'text', (c) => c.notNull().references('mailboxes.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text')
    .addColumn('uidvalidity', 'bigint', (c) => c.notNull())
    .addColumn('uidnext', 'bigint', (c) => c.notNull().defaultTo(1))
    .addColumn('highestmodseq', 'bigint', (c) => c.notNull().defaultTo(0))
    .addUniqueConstraint('folders_mailbox_name', ['mailbox_id', 'name'])
    .execute()

  await org(id(s.createTable('threads')))
    .addColumn('mailbox_id', 'text', (c) => c.notNull().references('mailboxes.id').onDelete('cascade'))
    .addColumn('subject_norm', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('message_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('first_message_at', 'bigint', (c) => c.notNull())
    .addColumn('last_message_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await s
    .createIndex('threads_mailbox_last')
    .on('threads')
    .columns(['mailbox_id', 'last_message_at'])
    .execute()

  await flag(org(id(s.createTable('messages'))), 'has_attachments', 0)
    .addColumn('mailbox_id', 'text', (c) => c.notNull().references('mailboxes.id').onDelete('cascade'))
    .addColumn('thread_id', 'text', (c) => c.references('threads.id').onDelete('set null'))
    .addColumn('blob_sha256', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('message_id_header', 'text')
    .addColumn('in_reply_to', 'text')
    .addColumn('references_header', 'text')
    .addColumn('subject', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('from_address', 'text')
    .addColumn('from_name', 'text')
    .addColumn('to_json', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('cc_json', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('sent_at', 'bigint')
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addColumn('preview', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('auth_results', 'text')
    .addColumn('spam_score', 'real')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('deleted_at', 'bigint')
    .execute()
  await s
    .createIndex('messages_mailbox_received')
    .on('messages')
    .columns(['mailbox_id', 'received_at'])
    .execute()
  await s.createIndex('messages_thread').on('messages').column('thread_id').execute()
  await s
    .createIndex('messages_message_id')
    .on('messages')
    .columns(['mailbox_id', 'message_id_header'])
    .execute()

  // One row per message in a folder: its own UID (RFC 9051) and MODSEQ (RFC 7162).
  await s
    .createTable('folder_messages')
    .addColumn('folder_id', 'text', (c) => c.notNull().references('folders.id').onDelete('cascade'))
    .addColumn('message_id', 'text', (c) => c.notNull().references('messages.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('uid', 'bigint', (c) => c.notNull())
    .addColumn('modseq', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('folder_messages_pk', ['folder_id', 'uid'])
    .addUniqueConstraint('folder_messages_folder_message', ['folder_id', 'message_id'])
    .execute()
  await s.createIndex('folder_messages_message').on('folder_messages').column('message_id').execute()
  await s
    .createIndex('folder_messages_modseq')
    .on('folder_messages')
    .columns(['folder_id', 'modseq'])
    .execute()

  // Flags and keywords (\Seen, \Flagged, $Important, ...) are per message.
  await s
    .createTable('message_keywords')
    .addColumn('message_id', 'text', (c) => c.notNull().references('messages.id').onDelete('cascade'))
    .addColumn('keyword', 'text', (c) => c.notNull())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('message_keywords_pk', ['message_id', 'keyword'])
    .execute()

  // Expunge tombstones for QRESYNC VANISHED (RFC 7162 section 3.2.10).
  await s
    .createTable('expunged')
    .addColumn('folder_id', 'text', (c) => c.notNull().references('folders.id').onDelete('cascade'))
    .addColumn('uid', 'bigint', (c) => c.notNull())
    .addColumn('modseq', 'bigint', (c) => c.notNull())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('expunged_pk', ['folder_id', 'uid'])
    .execute()

  await stamps(org(id(s.createTable('outbound_messages'))))
    .addColumn('domain_id', 'text', (c) => c.references('domains.id').onDelete('set null'))
    .addColumn('mailbox_id', 'text', (c) => c.references('mailboxes.id').onDelete('set null'))
    .addColumn('api_key_id', 'text')
    .addColumn('user_id', 'text')
    .addColumn('mail_from', 'text', (c) => c.notNull())
    .addColumn('from_header', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('blob_sha256', 'text')
    .addColumn('size', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('idempotency_key', 'text')
    .addColumn('idempotency_hash', 'text')
    .addColumn('tags', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('scheduled_at', 'bigint')
    .addColumn('next_attempt_at', 'bigint')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'bigint')
    .addUniqueConstraint('outbound_messages_idempotency', ['org_id', 'idempotency_key'] as never)
    .execute()
  await s
    .createIndex('outbound_messages_due')
    .on('outbound_messages')
    .columns(['status', 'next_attempt_at'])
    .execute()

  await stamps(org(id(s.createTable('outbound_recipients'))))
    .addColumn('outbound_id', 'text', (c) =>
      c.notNull().references('outbound_messages.id').onDelete('cascade'),
    )
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('domain', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint')
    .addColumn('last_code', 'integer')
    .addColumn('last_enhanced_code', 'text')
    .addColumn('last_response', 'text')
    .addColumn('dsn_notify', 'text')
    .addColumn('dsn_orcpt', 'text')
    .execute()
  await s
    .createIndex('outbound_recipients_outbound')
    .on('outbound_recipients')
    .column('outbound_id')
    .execute()

  await id(s.createTable('events'))
    .addColumn('org_id', 'text', (c) => c.references('orgs.id').onDelete('cascade'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('subject_id', 'text')
    .addColumn('actor', 'text')
    .addColumn('ip', 'text')
    .addColumn('payload', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await s.createIndex('events_org_time').on('events').columns(['org_id', 'created_at']).execute()
  await s.createIndex('events_subject').on('events').column('subject_id').execute()

  // Blob references: one row per (namespace, sha256); namespace is the org id or 'system'.
  await s
    .createTable('blobs')
    .addColumn('namespace', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('refcount', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('blobs_pk', ['namespace', 'sha256'])
    .execute()
  await s.createIndex('blobs_unreferenced').on('blobs').columns(['refcount', 'updated_at']).execute()

  // Blob bytes for the database backend (several nodes sharing PostgreSQL).
  await s
    .createTable('blob_data')
    .addColumn('namespace', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('data', pg ? 'bytea' : 'blob', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('blob_data_pk', ['namespace', 'sha256'])
    .execute()

  // Change log for the SQLite change-event bus (PostgreSQL uses LISTEN/NOTIFY instead).
  await s
    .createTable('changes')
    .addColumn('seq', pg ? sql`bigserial` : 'integer', (c) =>
      pg ? c.primaryKey() : c.primaryKey().autoIncrement(),
    )
    .addColumn('topic', 'text', (c) => c.notNull())
    .addColumn('org_id', 'text')
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()

  // Scheduled and background jobs, leased so each run happens once across processes.
  await s
    .createTable('jobs')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('next_run_at', 'bigint', (c) => c.notNull())
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'bigint')
    .addColumn('last_started_at', 'bigint')
    .addColumn('last_finished_at', 'bigint')
    .addColumn('last_status', 'text')
    .addColumn('last_error', 'text')
    .addColumn('last_duration_ms', 'bigint')
    .addColumn('run_count', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute()
}

export async function down(db: Db): Promise<void> {
  for (const t of [
    'jobs',
    'changes',
    'blob_data',
    'blobs',
    'events',
    'outbound_recipients',
    'outbound_messages',
    'expunged',
    'message_keywords',
    'folder_messages',
    'messages',
    'threads',
    'folders',
    'aliases',
    'mailbox_grants',
    'api_keys',
    'mailboxes',
    'dkim_keys',
    'domains',
    'sessions',
    'users',
    'orgs',
    'server_meta',
  ])
    await db.schema.dropTable(t).execute()
}
