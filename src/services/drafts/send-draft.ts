// Sending a draft: the same path as POST /v1/emails (checks, limits, DKIM, the queue), as the
// draft's mailbox. The From must be the mailbox or one of its aliases whoever calls, and the
// caller needs the send scope as well as the mailbox. In the transaction that queues the mail
// the draft leaves Drafts: its message is deleted and its row goes, and the sent message is
// filed in Sent (when the mailbox's save_sent_copy is on), so the draft moves to Sent rather
// than leaving a second copy. A draft changed meanwhile (DRAFT_CHANGED) queues nothing.

import type { Principal } from '../accounts/principal.ts'
import type { OutboundContext } from '../outbound/context.ts'
import { type SendInput, type SendMeta, type SendResult, sendAsMailbox } from '../outbound/send.ts'
import { type DraftFields, type DraftsContext, findDraft, needScope, removeDraft } from './drafts.ts'
import { readClientDraft, referencesFor } from './save-draft.ts'

export async function sendDraft(
  ctx: DraftsContext,
  outbound: OutboundContext,
  p: Principal,
  id: string,
  meta: SendMeta,
): Promise<SendResult & { draft_id: string }> {
  needScope(p, 'send')
  const db = ctx.store.db
  const d = await findDraft(db, p, id)
  let fields: DraftFields
  let attachments: { filename: string; content: Buffer; contentType: string | null; cid: null }[]
  if (d.row) {
    fields = JSON.parse(d.row.fields) as DraftFields
    const linked = await db
      .selectFrom('draft_attachments as l')
      .innerJoin('attachments as a', 'a.id', 'l.attachment_id')
      .select(['a.org_id', 'a.sha256', 'a.filename', 'a.content_type'])
      .where('l.draft_id', '=', d.row.id)
      .where('l.org_id', '=', p.org_id)
      .orderBy('l.position')
      .execute()
    attachments = []
    for (const a of linked)
      attachments.push({
        filename: a.filename,
        contentType: a.content_type,
        content: await ctx.blobs.get(a.org_id, a.sha256),
        cid: null,
      })
  } else {
    const r = await readClientDraft(ctx, d)
    fields = r.fields
    attachments = r.parts.map((x) => ({
      filename: x.filename,
      contentType: x.content_type,
      content: x.content,
      cid: null,
    }))
  }
  const input: SendInput = {
    from: fields.from,
    to: fields.to,
    cc: fields.cc,
    bcc: fields.bcc,
    reply_to: fields.reply_to,
    subject: fields.subject,
    ...(fields.text !== null ? { text: fields.text } : {}),
    ...(fields.html !== null ? { html: fields.html } : {}),
  }
  const mailbox = { id: d.message.mailbox_id, org_id: d.message.org_id }
  const r = await sendAsMailbox(
    outbound,
    p,
    mailbox.id,
    input,
    {
      attachments,
      inReplyTo: fields.in_reply_to,
      references: await referencesFor(db, { ...mailbox, address: '' }, fields.in_reply_to),
      alsoInTransaction: (tx, now) => removeDraft(tx, ctx, d, now),
    },
    meta,
  )
  return { ...r, draft_id: id }
}
