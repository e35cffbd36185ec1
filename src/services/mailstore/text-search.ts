// The full-text side of IMAP SEARCH BODY/TEXT: which of a folder's messages the full-text
// index (store/fulltext.ts) matches for a search string. The index is word-based: every word
// of the string must occur (the last also as a prefix), so a string inside a word ("ello" in
// "hello") is not found, as with Dovecot's full-text search plugins.

import { matchCondition, queryWords } from '../../store/fulltext.ts'
import type { MessagesContext } from '../messages/context.ts'
import type { MailAccountRef } from './folder-view.ts'

/** Message ids of the folder that the index matches; null when the string has no words (matches all). */
export async function fullTextMatches(
  ctx: Pick<MessagesContext, 'store'>,
  a: MailAccountRef,
  folderId: string,
  text: string,
): Promise<Set<string> | null> {
  const words = queryWords(text)
  if (words.length === 0) return null
  const rows = await ctx.store.db
    .selectFrom('folder_messages as fm')
    .innerJoin('messages as m', 'm.id', 'fm.message_id')
    .select('m.id')
    .where('fm.folder_id', '=', folderId)
    .where('fm.org_id', '=', a.org_id)
    .where('m.mailbox_id', '=', a.mailbox_id)
    .where(matchCondition(ctx.store.dialect, words))
    .execute()
  return new Set(rows.map((r) => r.id))
}
