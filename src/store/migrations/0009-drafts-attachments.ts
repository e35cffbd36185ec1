// 0009: uploaded attachments, drafts and the per-mailbox Sent-copy switch.
// - attachments: one uploaded file of an org (bytes in the blob store under the org, one blob
//   reference per row), who uploaded it, and when it expires unless a draft uses it.
// - drafts: the stable id of a draft composed through the API, the fields it was composed
//   from (JSON) and the message that currently holds it in the mailbox's Drafts folder.
// - draft_attachments: which uploads a draft carries, in order; a linked upload never expires.
// - mailboxes.save_sent_copy: 1 files a copy of mail the mailbox sends in its Sent folder.

import type { Kysely } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  const s = db.schema
  await s
    .alterTable('mailboxes')
    .addColumn('save_sent_copy', 'integer', (c) => c.notNull().defaultTo(1))
    .execute()

  await s
    .createTable('attachments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('mailbox_id', 'text')
    .addColumn('api_key_id', 'text')
    .addColumn('user_id', 'text')
    .addColumn('filename', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute()
  await s.createIndex('attachments_org_created').on('attachments').columns(['org_id', 'created_at']).execute()
  await s.createIndex('attachments_expires').on('attachments').column('expires_at').execute()

  await s
    .createTable('drafts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('mailbox_id', 'text', (c) => c.notNull().references('mailboxes.id').onDelete('cascade'))
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('fields', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute()
  await s.createIndex('drafts_message').on('drafts').column('message_id').unique().execute()
  await s.createIndex('drafts_mailbox').on('drafts').columns(['mailbox_id', 'updated_at']).execute()

  await s
    .createTable('draft_attachments')
    .addColumn('draft_id', 'text', (c) => c.notNull().references('drafts.id').onDelete('cascade'))
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('attachment_id', 'text', (c) => c.notNull().references('attachments.id'))
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('draft_attachments_pk', ['draft_id', 'position'])
    .execute()
  await s
    .createIndex('draft_attachments_attachment')
    .on('draft_attachments')
    .column('attachment_id')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('draft_attachments').execute()
  await db.schema.dropTable('drafts').execute()
  await db.schema.dropTable('attachments').execute()
  await db.schema.alterTable('mailboxes').dropColumn('save_sent_copy').execute()
}
