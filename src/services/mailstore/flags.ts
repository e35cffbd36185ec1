// STORE: setting, adding and removing flags and keywords of messages of one folder (RFC 9051
// 6.4.6), with UNCHANGEDSINCE (RFC 7162 3.1.3). Flags are per message (a message in several
// folders shows the same flags in each), so a change raises the MODSEQ of every membership.
// Invariants: \Recent is never stored (it is session state); keywords are validated by the
// caller's grammar (atoms); one transaction per command, so a STORE is all or nothing.

import type { MessagesContext } from '../messages/context.ts'
import { mailChanged } from '../messages/context.ts'
import { setKeywords } from '../messages/folder-ops.ts'
import type { MailAccountRef } from './folder-view.ts'

export type StoreMode = 'set' | 'add' | 'remove'

export interface StoreResult {
  /** UIDs whose MODSEQ was above UNCHANGEDSINCE: left alone (the MODIFIED response code). */
  modified: number[]
  /** UIDs whose flags changed. */
  changed: number[]
}

const RECENT = '\\recent'

/** Applies one STORE to the UIDs of a folder; UIDs no longer there are skipped. */
export async function storeFlags(
  ctx: MessagesContext,
  a: MailAccountRef,
  folderId: string,
  uids: readonly number[],
  mode: StoreMode,
  flags: readonly string[],
  unchangedSince: number | null,
): Promise<StoreResult> {
  const wanted = [...new Set(flags.filter((f) => f.toLowerCase() !== RECENT))]
  const now = ctx.clock.now()
  const modified: number[] = []
  const changed: number[] = []
  await ctx.store.db.transaction().execute(async (tx) => {
    for (let i = 0; i < uids.length; i += 500) {
      const rows = await tx
        .selectFrom('folder_messages as fm')
        .innerJoin('messages as m', 'm.id', 'fm.message_id')
        .select(['fm.uid', 'fm.modseq', 'fm.message_id'])
        .where('fm.folder_id', '=', folderId)
        .where('fm.org_id', '=', a.org_id)
        .where('m.mailbox_id', '=', a.mailbox_id)
        .where('fm.uid', 'in', uids.slice(i, i + 500))
        .execute()
      for (const r of rows) {
        const uid = Number(r.uid)
        if (unchangedSince !== null && Number(r.modseq) > unchangedSince) {
          modified.push(uid)
          continue
        }
        const m = { id: r.message_id, mailbox_id: a.mailbox_id, org_id: a.org_id }
        let change: { add?: string[]; remove?: string[] }
        if (mode === 'add') change = { add: wanted }
        else if (mode === 'remove') change = { remove: wanted }
        else {
          const current = (
            await tx
              .selectFrom('message_keywords')
              .select('keyword')
              .where('message_id', '=', r.message_id)
              .execute()
          ).map((k) => k.keyword)
          change = {
            add: wanted.filter((w) => !current.includes(w)),
            remove: current.filter((c) => !wanted.includes(c)),
          }
        }
        if (await setKeywords(tx, m, change, now)) changed.push(uid)
      }
    }
    if (changed.length) await mailChanged(ctx, tx, a.org_id, a.mailbox_id, 'flags')
  })
  return { modified: modified.sort((x, y) => x - y), changed }
}
