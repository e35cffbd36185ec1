// 0017: REQUIRETLS (RFC 8689) per outbound message. `require_tls` (0/1) is set when the
// message was submitted or received with the REQUIRETLS MAIL parameter, or sent through the
// API with `require_tls`: it may then only leave over verified TLS to a next hop that offers
// REQUIRETLS, and carries the parameter on (tls-policy.ts).

import type { Kysely } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('outbound_messages')
    .addColumn('require_tls', 'integer', (c) => c.notNull().defaultTo(0))
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('outbound_messages').dropColumn('require_tls').execute()
}
