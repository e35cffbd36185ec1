// Draining system mail (verification codes, resets, invitations, notices) into the outbound
// queue. The accounts services write `system_mail` rows; this turns each into a composed
// message from `postern@<hostname>`, DKIM-signed when that host name is a verified domain
// here, and enqueues it like any other message (retries, bounces, trace).
// Invariants: a row is taken by one process only (queued -> sending in one conditional
// update) before it is enqueued; system mail ignores the suppression list (a person must get
// their reset code) and belongs to its org, or to the operator's org when it has none.

import { composeMessage } from '../../mail/compose.ts'
import { newId } from '../../store/ids.ts'
import type { OutboundContext } from './context.ts'
import { enqueue } from './enqueue.ts'

/** The verified domain of the system sender address (its keys sign system mail), or null. */
export async function systemSigningDomain(
  ctx: Pick<OutboundContext, 'store' | 'settings'>,
): Promise<{ id: string; name: string } | null> {
  const fromDomain = ctx.settings.systemFrom.split('@')[1] as string
  const row = await ctx.store.db
    .selectFrom('domains')
    .select(['id', 'name'])
    .where('name', '=', fromDomain)
    .where('status', '=', 'verified')
    .executeTakeFirst()
  return row ?? null
}

export async function drainSystemMail(
  ctx: OutboundContext,
  operatorOrgId: () => Promise<string | null>,
  limit = 50,
): Promise<number> {
  const db = ctx.store.db
  const rows = await db
    .selectFrom('system_mail')
    .selectAll()
    .where('status', '=', 'queued')
    .orderBy('created_at')
    .limit(limit)
    .execute()
  if (rows.length === 0) return 0
  const from = ctx.settings.systemFrom
  const fromDomain = from.split('@')[1] as string
  const signing = await systemSigningDomain(ctx)
  let n = 0
  for (const row of rows) {
    const orgId = row.org_id ?? (await operatorOrgId())
    if (!orgId) continue
    const taken = await db
      .updateTable('system_mail')
      .set({ status: 'sending' })
      .where('id', '=', row.id)
      .where('status', '=', 'queued')
      .executeTakeFirst()
    if (Number(taken.numUpdatedRows) === 0) continue
    const now = ctx.clock.now()
    const messageId = `${newId('msg', now).slice(4)}@${fromDomain}`
    try {
      const raw = await composeMessage({
        from: { name: 'Postern', address: from },
        to: [{ address: row.to_address }],
        subject: row.subject,
        text: row.text,
        messageId,
        date: new Date(now),
        headers: { 'Auto-Submitted': 'auto-generated' },
      })
      await enqueue(ctx, {
        org_id: orgId,
        domain: signing ?? null,
        mailbox_id: null,
        api_key_id: null,
        user_id: null,
        origin: 'system',
        from_header: `Postern <${from}>`,
        subject: row.subject,
        raw,
        message_id_header: `<${messageId}>`,
        recipients: [{ address: row.to_address, type: 'to' }],
        tags: { kind: row.kind },
        scheduled_at: null,
        headers_json: { to: [row.to_address], cc: [], bcc: [], reply_to: [] },
        sent_copy_mailbox: null,
        system_mail_id: row.id,
        // Without a signing domain there is no return path of ours: the null sender, so a
        // bounce of a system message can never loop back as mail.
        ...(signing ? {} : { mail_from: '' }),
        actor: 'system',
        ignoreSuppressions: true,
      })
      n++
    } catch (err) {
      ctx.log.error({ err, system_mail_id: row.id }, 'could not queue system mail')
      await db.updateTable('system_mail').set({ status: 'failed' }).where('id', '=', row.id).execute()
    }
  }
  return n
}
