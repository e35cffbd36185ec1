// Spam and ham signals (issue: spam filter learning): a message a person moves into Junk is a
// spam signal, one moved out of Junk to anywhere but Trash a ham signal. The moves of the API
// (moves.ts) and of IMAP (mailstore/copy.ts) both report here, in their transaction; delivery
// filing into Junk is the filter's own verdict and is not a signal.

import { newId } from '../../store/ids.ts'
import type { Folder } from '../../store/schema.ts'
import type { Tx } from './context.ts'

export type SignalVia = 'imap' | 'api'

/** The verdict a move from `from` roles to `to` roles expresses, or null. */
export function verdictOf(
  from: readonly Folder['role'][],
  to: readonly Folder['role'][],
): 'spam' | 'ham' | null {
  const wasJunk = from.includes('junk')
  const isJunk = to.includes('junk')
  if (isJunk && !wasJunk) return 'spam'
  if (wasJunk && !isJunk && to.length > 0 && !to.every((r) => r === 'trash')) return 'ham'
  return null
}

export async function recordSpamSignal(
  tx: Tx,
  m: { id: string; mailbox_id: string; org_id: string },
  verdict: 'spam' | 'ham',
  via: SignalVia,
  now: number,
): Promise<void> {
  await tx
    .insertInto('spam_signals')
    .values({
      id: newId('sig', now),
      org_id: m.org_id,
      mailbox_id: m.mailbox_id,
      message_id: m.id,
      verdict,
      via,
      created_at: now,
    })
    .execute()
}
