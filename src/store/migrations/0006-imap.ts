// 0006: what the IMAP server keeps beyond 0001's UIDs, MODSEQs and tombstones.
// - folders.recent_uid: the UIDNEXT as of the last read-write SELECT of the folder; messages at
//   or above it are \Recent to the next session that selects it (RFC 3501 2.3.2), and to no other.
// - expunged (folder_id, modseq): VANISHED and EXPUNGE notifications read tombstones by MODSEQ.

import type { Kysely } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('folders')
    .addColumn('recent_uid', 'bigint', (c) => c.notNull().defaultTo(1))
    .execute()
  await db.schema.createIndex('expunged_modseq').on('expunged').columns(['folder_id', 'modseq']).execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('expunged_modseq').execute()
  await db.schema.alterTable('folders').dropColumn('recent_uid').execute()
}
