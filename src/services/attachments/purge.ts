// The `attachment-purge` job: uploads past their expires_at that no draft links are deleted and
// their blob reference released (the blob collector then deletes bytes nothing else uses; a
// message composed from an upload holds its own copy inside its raw bytes). The expiry is set
// at upload (attachments.unused_hours); a draft keeps its uploads alive while it exists, and
// once it is deleted or sent they go with the next run after their expiry.
// Invariant: the row's deletion and the reference release are one transaction, and the
// delete re-checks the link, so an upload a draft took meanwhile is kept.

import { sql } from 'kysely'
import type { JobDef } from '../jobs/runner.ts'
import type { AttachmentsContext } from './attachments.ts'

export async function purgeAttachments(
  ctx: Pick<AttachmentsContext, 'store' | 'clock' | 'blobs'>,
  opts: { batch?: number; signal?: AbortSignal } = {},
): Promise<{ deleted: number }> {
  const db = ctx.store.db
  const batch = opts.batch ?? 500
  let deleted = 0
  for (;;) {
    if (opts.signal?.aborted) break
    const now = ctx.clock.now()
    const due = await db
      .selectFrom('attachments as a')
      .select(['a.id', 'a.org_id', 'a.sha256'])
      .where('a.expires_at', '<', now)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('draft_attachments as l')
              .select(sql`1`.as('x'))
              .whereRef('l.attachment_id', '=', 'a.id'),
          ),
        ),
      )
      .orderBy('a.expires_at')
      .limit(batch)
      .execute()
    if (due.length === 0) break
    let n = 0
    await db.transaction().execute(async (tx) => {
      for (const a of due) {
        const r = await tx
          .deleteFrom('attachments')
          .where('id', '=', a.id)
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom('draft_attachments').select(sql`1`.as('x')).where('attachment_id', '=', a.id),
              ),
            ),
          )
          .executeTakeFirst()
        if (Number(r.numDeletedRows) !== 1) continue
        await ctx.blobs.release(tx, a.org_id, a.sha256)
        n++
      }
    })
    deleted += n
    if (due.length < batch || n === 0) break
  }
  return { deleted }
}

export function attachmentPurgeJob(ctx: Pick<AttachmentsContext, 'store' | 'clock' | 'blobs'>): JobDef {
  return {
    name: 'attachment-purge',
    description: 'Deletes uploaded attachments past their expiry that no draft uses.',
    intervalMs: 3_600_000,
    firstRunDelayMs: 5 * 60_000,
    run: async ({ signal }) => purgeAttachments(ctx, { signal }),
  }
}
