// Thread assignment at delivery, per mailbox: a message joins the thread of any message it
// references (In-Reply-To, References, RFC 5322 3.6.4); else the most recent thread with the
// same normalised subject within the window; else a new thread.

import type { Transaction } from 'kysely'
import { sql } from 'kysely'
import { newId } from '../../store/ids.ts'
import type { Database } from '../../store/schema.ts'

const SUBJECT_WINDOW_MS = 30 * 86_400_000

export async function assignThread(
  tx: Transaction<Database>,
  m: {
    org_id: string
    mailbox_id: string
    subject_norm: string
    in_reply_to: string | null
    references: string[]
    at: number
  },
): Promise<string> {
  const refs = [...new Set([m.in_reply_to, ...m.references].filter((x): x is string => !!x))].slice(-50)
  // The thread to join, found and bumped in one statement: a referenced message's thread
  // first, else the newest thread with the same subject in the window.
  const byRef = refs.length
    ? tx
        .selectFrom('messages')
        .select('thread_id')
        .where('mailbox_id', '=', m.mailbox_id)
        .where('message_id_header', 'in', refs)
        .where('thread_id', 'is not', null)
        .orderBy('received_at', 'desc')
        .limit(1)
    : null
  const bySubject = m.subject_norm
    ? tx
        .selectFrom('threads')
        .select('id')
        .where('mailbox_id', '=', m.mailbox_id)
        .where('subject_norm', '=', m.subject_norm)
        .where('last_message_at', '>', m.at - SUBJECT_WINDOW_MS)
        .orderBy('last_message_at', 'desc')
        .limit(1)
    : null
  if (byRef || bySubject) {
    const target =
      byRef && bySubject
        ? sql<string>`COALESCE((${byRef}), (${bySubject}))`
        : sql<string>`(${byRef ?? bySubject})`
    const hit = await tx
      .updateTable('threads')
      .set({
        message_count: sql`message_count + 1`,
        last_message_at: sql`CASE WHEN last_message_at < ${m.at} THEN ${m.at} ELSE last_message_at END`,
      })
      .where('id', '=', target)
      .where('mailbox_id', '=', m.mailbox_id)
      .returning('id')
      .executeTakeFirst()
    if (hit) return hit.id
  }
  const id = newId('thr', m.at)
  await tx
    .insertInto('threads')
    .values({
      id,
      org_id: m.org_id,
      mailbox_id: m.mailbox_id,
      subject_norm: m.subject_norm,
      message_count: 1,
      first_message_at: m.at,
      last_message_at: m.at,
      created_at: m.at,
    })
    .execute()
  return id
}
