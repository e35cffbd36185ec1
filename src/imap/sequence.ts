// Turns a parsed sequence-set into the selected folder's sequence numbers (RFC 9051 6.4.8,
// 9 `sequence-set`): by sequence number (`*` = the last message) or by UID (`*` = the highest
// UID; UIDs not in the folder are skipped silently, as RFC 9051 6.4.8 requires).

import { ImapSyntaxError, sequenceRanges } from './protocol/parser.ts'
import type { SequenceSet } from './protocol/types.ts'
import type { SelectedFolder } from './selected.ts'

/** Ascending, distinct sequence numbers of the set. */
export function resolveSet(sel: SelectedFolder, set: SequenceSet, byUid: boolean): number[] {
  const out: number[] = []
  if (byUid) {
    for (const [lo, hi] of sequenceRanges(set, sel.maxUid)) {
      const span = sel.seqsInUidRange(lo, hi)
      if (span) for (let n = span[0]; n <= span[1]; n++) out.push(n)
    }
    return out
  }
  if (sel.exists === 0) {
    // `*` alone names nothing in an empty folder; a number is an error.
    if (set.ranges.every((r) => r.from === '*' && r.to === '*')) return out
    throw new ImapSyntaxError('Invalid message sequence number: the folder is empty.')
  }
  for (const [lo, hi] of sequenceRanges(set, sel.exists)) {
    if (hi > sel.exists)
      throw new ImapSyntaxError(`Invalid message sequence number ${hi} (the folder has ${sel.exists}).`)
    for (let n = lo; n <= hi; n++) out.push(n)
  }
  return out
}

/** A UID set in the compact form (1:3,7) for COPYUID/APPENDUID. */
export function uidSetText(uids: readonly number[]): string {
  const out: string[] = []
  let i = 0
  while (i < uids.length) {
    const start = uids[i] as number
    let end = start
    while (i + 1 < uids.length && uids[i + 1] === end + 1) end = uids[++i] as number
    out.push(start === end ? `${start}` : `${start}:${end}`)
    i++
  }
  return out.join(',')
}
