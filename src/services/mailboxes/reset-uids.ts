// Resetting a mailbox's IMAP UIDs (seed 002 "reset IMAP UIDs"; POST /v1/mailboxes/{id}/reset-uids):
// every folder gets a new UIDVALIDITY, greater than any it had, and its messages are numbered
// again from 1 in their current order; tombstones go (no client can ask about old UIDs under
// the new UIDVALIDITY). Mail clients then resync the folder from scratch; open IMAP sessions of
// the mailbox are closed by the IMAP server when it hears the change (what: 'uids_reset').
// Invariants: one transaction; renumbering runs in ascending UID order, so a new UID never
// collides with an old one not yet renumbered (new = position <= old).

import type { Principal } from '../accounts/principal.ts'
import { recordChange } from '../events/write.ts'
import type { MailboxesContext } from './mailboxes.ts'
import { findMailbox } from './mailboxes.ts'

export interface ResetFolder {
  id: string
  name: string
  uidvalidity: number
  uidnext: number
}

export async function resetUids(
  ctx: MailboxesContext,
  p: Principal,
  idOrAddress: string,
  ip: string | null,
): Promise<{ mailbox_id: string; folders: ResetFolder[] }> {
  const now = ctx.clock.now()
  const m = await findMailbox(ctx.store.db, p, idOrAddress)
  return ctx.store.db.transaction().execute(async (tx) => {
    const folders = await tx
      .selectFrom('folders')
      .selectAll()
      .where('mailbox_id', '=', m.id)
      .where('org_id', '=', m.org_id)
      .orderBy('name')
      .execute()
    let next = Math.max(Math.floor(now / 1000), ...folders.map((f) => Number(f.uidvalidity) + 1))
    const out: ResetFolder[] = []
    for (const f of folders) {
      const members = await tx
        .selectFrom('folder_messages')
        .select(['message_id', 'uid'])
        .where('folder_id', '=', f.id)
        .where('org_id', '=', m.org_id)
        .orderBy('uid')
        .execute()
      let uid = 0
      for (const row of members) {
        uid++
        if (Number(row.uid) !== uid)
          await tx
            .updateTable('folder_messages')
            .set({ uid })
            .where('folder_id', '=', f.id)
            .where('message_id', '=', row.message_id)
            .execute()
      }
      await tx.deleteFrom('expunged').where('folder_id', '=', f.id).where('org_id', '=', m.org_id).execute()
      const uidvalidity = next++
      await tx
        .updateTable('folders')
        .set({ uidvalidity, uidnext: uid + 1, recent_uid: uid + 1, updated_at: now })
        .where('id', '=', f.id)
        .where('org_id', '=', m.org_id)
        .execute()
      out.push({ id: f.id, name: f.role === 'inbox' ? 'INBOX' : f.name, uidvalidity, uidnext: uid + 1 })
    }
    await recordChange(ctx.bus, tx, now, {
      org_id: m.org_id,
      type: 'mailbox.uids_reset',
      actor: p.user_id ?? p.key_id,
      ip,
      subject_id: m.id,
      payload: { folders: out.length },
      topic: 'mail.changed',
      data: { mailbox_id: m.id, what: 'uids_reset' },
    })
    return { mailbox_id: m.id, folders: out }
  })
}
