// Shared folder lists for SELECT: sessions that open a folder in the same state (same
// HIGHESTMODSEQ and UIDNEXT: nothing was added, removed or re-flagged in between) share one
// read-only Snapshot instead of each reading and holding its own copy. Held weakly: a snapshot
// no session uses any more is collected.

import type { FolderInfo } from '../services/mailstore/folder-view.ts'
import type { Snapshot } from './selected.ts'

interface Held {
  key: string
  ref: WeakRef<Snapshot>
}

const byFolder = new Map<string, Held>()
const keyOf = (f: FolderInfo) => `${f.uidvalidity}:${f.highestmodseq}:${f.uidnext}`
const gone = new FinalizationRegistry<string>((folderId) => {
  const h = byFolder.get(folderId)
  if (h && !h.ref.deref()) byFolder.delete(folderId)
})

/** The snapshot of this folder in exactly this state, if a session still holds one. */
export function sharedSnapshot(f: FolderInfo): Snapshot | null {
  const h = byFolder.get(f.id)
  if (!h || h.key !== keyOf(f)) return null
  return h.ref.deref() ?? null
}

export function shareSnapshot(f: FolderInfo, s: Snapshot): void {
  byFolder.set(f.id, { key: keyOf(f), ref: new WeakRef(s) })
  gone.register(s, f.id)
}
