// When Postern owes a mail client's sender a delivery status notification (RFC 3461), decided
// per recipient from its NOTIFY and what happened. Pure.
// Choices (written here once):
// - Without NOTIFY, a recipient gets failure notices only (RFC 3461 4.1 allows FAILURE or
//   FAILURE,DELAY; Postfix likewise sends no delay warnings unless configured). A delay
//   notice goes out only when NOTIFY names DELAY, once per recipient, after
//   outbound.delay_notice_seconds undelivered.
// - NOTIFY=NEVER: no notice of any kind, not even a bounce.
// - Success (NOTIFY=SUCCESS): delivered into a mailbox here is `delivered` (RFC 3461 5.2.3);
//   accepted by a next hop that does not offer DSN is `relayed` (5.2.2); accepted by a next
//   hop that offers DSN needs nothing from us: NOTIFY and ORCPT went with the RCPT and that
//   hop reports (its report reaches the return path, and is passed on from there).
// - Returned content (RET, RFC 3461 4.3): a failure notice returns the whole message unless
//   RET=HDRS (or the message is over outbound.dsn_return_max_bytes); delay and success
//   notices return only the header section, whatever RET says (as Postfix does).

import type { NoticeAction } from '../../mail/dsn.ts'

export type NoticeKind = 'failure' | 'delay' | 'success'

/** The stored NOTIFY list ('SUCCESS,DELAY', or null when not given) asks for this kind. */
export function wantsNotice(notify: string | null, kind: NoticeKind): boolean {
  if (notify === null || notify === '') return kind === 'failure'
  const list = notify.toUpperCase().split(',')
  if (list.includes('NEVER')) return false
  return list.includes(kind === 'failure' ? 'FAILURE' : kind === 'delay' ? 'DELAY' : 'SUCCESS')
}

/**
 * The success notice owed after a 2xx: null when none (not asked, or the next hop took the
 * DSN request over). `nextHopDsn` is null for local delivery.
 */
export function successNotice(
  notify: string | null,
  local: boolean,
  nextHopDsn: boolean,
): NoticeAction | null {
  if (!wantsNotice(notify, 'success')) return null
  if (local) return 'delivered'
  return nextHopDsn ? null : 'relayed'
}

/** Whether a notice with this action returns the whole message. */
export function returnsFull(
  action: NoticeAction,
  ret: string | null,
  size: number,
  maxBytes: number,
): boolean {
  return action === 'failed' && ret !== 'HDRS' && size <= maxBytes
}
