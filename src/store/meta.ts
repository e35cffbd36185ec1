// server_meta: small installation-wide values (setup token hash, key-encryption canary).
// One upsert helper so both dialects share one statement shape.

import type { Store } from './db.ts'

export async function getMeta(store: Store, key: string): Promise<string | null> {
  const row = await store.db
    .selectFrom('server_meta')
    .select('value')
    .where('key', '=', key)
    .executeTakeFirst()
  return row?.value ?? null
}

export async function setMeta(store: Store, key: string, value: string, now: number): Promise<void> {
  await store.db
    .insertInto('server_meta')
    .values({ key, value, updated_at: now })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: now }))
    .execute()
}

export async function deleteMeta(store: Store, key: string): Promise<void> {
  await store.db.deleteFrom('server_meta').where('key', '=', key).execute()
}
