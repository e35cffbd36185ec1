// The selected folder of one session: its messages in UID order (a message's sequence number
// is its position + 1), the MODSEQ this session has seen up to, \Recent, and the changes made
// elsewhere that the client has not been told about yet.
// Invariants (RFC 9051 7.5.1, 7.4.1; RFC 7162 3.2.10):
// - Sequence numbers change only when this session reports an EXPUNGE (or VANISHED): an
//   expunge seen in the store is held back until the session may report it (not during a
//   FETCH, STORE or SEARCH by sequence number), and the UIDs stay listed until then.
// - New messages are appended as they are reported (EXISTS), never earlier.
// - Memory: the list read at SELECT is a Snapshot shared, read-only, by every session that
//   opened the folder in the same state (folder-snapshots.ts); each session keeps only its
//   differences from it: base positions it removed, messages appended since, and MODSEQs that
//   moved. 1,000 sessions idling on one 10,000-message folder hold one list, not 1,000. The
//   differences are folded into a private list when they grow large.

import type { Entry, FolderChanges, FolderInfo } from '../services/mailstore/folder-view.ts'

/** A folder's message list as read at one moment: read-only once made. */
export interface Snapshot {
  readonly uids: Uint32Array
  readonly modseqs: Float64Array
  readonly ids: readonly string[]
  readonly count: number
}

export function snapshotOf(entries: readonly Entry[]): Snapshot {
  const uids = new Uint32Array(entries.length)
  const modseqs = new Float64Array(entries.length)
  const ids: string[] = new Array(entries.length)
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Entry
    uids[i] = e.uid
    modseqs[i] = e.modseq
    ids[i] = e.message_id
  }
  return { uids, modseqs, ids, count: entries.length }
}

export interface PendingUpdates {
  /** Sequence numbers to report as EXPUNGE, highest first (each is right when sent). */
  expunged: number[]
  /** UIDs of the same messages (for VANISHED under QRESYNC). */
  vanishedUids: number[]
  /** New total after new messages, or null when none arrived. */
  exists: number | null
  /** New \Recent count when it changed. */
  recent: number | null
  /** Messages whose flags changed elsewhere: their UIDs. */
  flagsChanged: number[]
  /** UIDs of the new messages now listed. */
  added: number[]
}

/** How many entries of a sorted array are <= x. */
function countLE(sorted: readonly number[], x: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((sorted[mid] as number) <= x) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Differences above which they are folded into a private list. */
const MAX_REMOVED = 2048
const MAX_TAIL = 4096

export class SelectedFolder {
  readonly folder: FolderInfo
  readonly readOnly: boolean
  private base: Snapshot
  /** Base positions no longer listed (reported expunges), ascending. */
  private removed: number[] = []
  /** Messages listed after the base (arrivals reported as EXISTS), in UID order. */
  private tailUids: number[] = []
  private tailModseqs: number[] = []
  private tailIds: string[] = []
  /** MODSEQs of base messages that changed since the base was read. */
  private modOverride = new Map<number, number>()
  /** Of the messages listed at SELECT (UIDs below openTop), those from this UID are \Recent. */
  readonly recentFrom: number
  private readonly openTop: number
  /** Messages that arrived later and that this session claimed as \Recent (claimRecent). */
  private readonly claimed = new Set<number>()
  /** Keywords announced in FLAGS to this session (a new one means a new FLAGS, RFC 3501 7.2.6). */
  readonly keywords = new Set<string>()
  /** The highest MODSEQ this session has taken into account. */
  modseq: number
  /** Expunged UIDs seen in the store and not yet reported. */
  private heldExpunges = new Set<number>()
  /** New messages seen in the store and not yet reported (EXISTS). */
  private heldNew: Entry[] = []
  /** UIDs with flag changes not yet reported. */
  private heldFlags = new Set<number>()

  constructor(folder: FolderInfo, base: Snapshot, recentFrom: number, readOnly: boolean) {
    this.folder = folder
    this.readOnly = readOnly
    this.recentFrom = recentFrom
    this.openTop = folder.uidnext
    this.base = base
    this.modseq = folder.highestmodseq
  }

  get exists(): number {
    return this.base.count - this.removed.length + this.tailUids.length
  }

  private get baseVisible(): number {
    return this.base.count - this.removed.length
  }

  /** The base position of the k-th (0-based) listed base message. */
  private baseIndexAt(k: number): number {
    const r = this.removed
    if (r.length === 0) return k
    // The smallest position whose listed count (itself included) exceeds k.
    let lo = k
    let hi = k + r.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (mid + 1 - countLE(r, mid) > k) hi = mid
      else lo = mid + 1
    }
    return lo
  }

  /** The base position of a UID, or -1 when it is not there (or removed). */
  private baseIndexOf(uid: number): number {
    const u = this.base.uids
    let lo = 0
    let hi = this.base.count - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const v = u[mid] as number
      if (v === uid) {
        const r = this.removed
        const at = countLE(r, mid)
        return at > 0 && r[at - 1] === mid ? -1 : mid
      }
      if (v < uid) lo = mid + 1
      else hi = mid - 1
    }
    return -1
  }

  private tailIndexOf(uid: number): number {
    const t = this.tailUids
    let lo = 0
    let hi = t.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const v = t[mid] as number
      if (v === uid) return mid
      if (v < uid) lo = mid + 1
      else hi = mid - 1
    }
    return -1
  }

  get recent(): number {
    let n = 0
    for (let seq = this.exists; seq >= 1; seq--) {
      const uid = this.uidAt(seq)
      if (uid < this.recentFrom) break
      if (this.isRecent(uid)) n++
    }
    return n
  }

  isRecent(uid: number): boolean {
    return uid < this.openTop ? uid >= this.recentFrom : this.claimed.has(uid)
  }

  /** Marks messages that arrived after SELECT as \Recent to this session. */
  markRecent(uids: readonly number[]): void {
    for (const u of uids) this.claimed.add(u)
  }

  uidAt(seq: number): number {
    const k = seq - 1
    const bv = this.baseVisible
    if (k < bv) return this.base.uids[this.baseIndexAt(k)] as number
    return this.tailUids[k - bv] as number
  }

  messageIdAt(seq: number): string {
    const k = seq - 1
    const bv = this.baseVisible
    if (k < bv) return this.base.ids[this.baseIndexAt(k)] as string
    return this.tailIds[k - bv] as string
  }

  modseqAt(seq: number): number {
    const k = seq - 1
    const bv = this.baseVisible
    if (k < bv) {
      const i = this.baseIndexAt(k)
      return this.modOverride.get(this.base.uids[i] as number) ?? (this.base.modseqs[i] as number)
    }
    return this.tailModseqs[k - bv] as number
  }

  /** Calls fn for every listed message in order, in one linear walk (no lookups per message). */
  forEachListed(fn: (seq: number, uid: number) => void): void {
    const r = this.removed
    const u = this.base.uids
    let seq = 0
    let k = 0
    for (let i = 0; i < this.base.count; i++) {
      if (k < r.length && r[k] === i) {
        k++
        continue
      }
      fn(++seq, u[i] as number)
    }
    for (const uid of this.tailUids) fn(++seq, uid)
  }

  /** The highest UID listed (0 when empty): the value of `*` in UID sets. */
  get maxUid(): number {
    if (this.tailUids.length) return this.tailUids[this.tailUids.length - 1] as number
    const bv = this.baseVisible
    return bv ? (this.base.uids[this.baseIndexAt(bv - 1)] as number) : 0
  }

  /** The sequence number of a UID, or 0 when it is not listed. */
  seqOf(uid: number): number {
    const i = this.baseIndexOf(uid)
    if (i >= 0) return i - countLE(this.removed, i) + 1
    const j = this.tailIndexOf(uid)
    return j >= 0 ? this.baseVisible + j + 1 : 0
  }

  /** The first sequence number whose UID is >= uid (exists + 1 when none). */
  private firstSeqAtLeast(uid: number): number {
    let lo = 1
    let hi = this.exists + 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.uidAt(mid) < uid) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Sequence numbers (ascending) of listed UIDs within [lo, hi]. */
  seqsInUidRange(lo: number, hi: number): [number, number] | null {
    const first = this.firstSeqAtLeast(lo)
    const after = hi >= 0xffffffff ? this.exists + 1 : this.firstSeqAtLeast(hi + 1)
    return after > first ? [first, after - 1] : null
  }

  /** True when the message at `seq` was expunged elsewhere and not yet reported. */
  isExpungedPending(seq: number): boolean {
    return this.heldExpunges.has(this.uidAt(seq))
  }

  private setModseq(uid: number, modseq: number): void {
    const j = this.tailIndexOf(uid)
    if (j >= 0) this.tailModseqs[j] = modseq
    else this.modOverride.set(uid, modseq)
  }

  /** Takes a change set from the store into account (the store's view after `modseq`). */
  absorb(c: FolderChanges): void {
    for (const uid of c.vanished) if (this.seqOf(uid)) this.heldExpunges.add(uid)
    let top = this.maxUid
    for (const e of this.heldNew) if (e.uid > top) top = e.uid
    const held = new Set(this.heldNew.map((e) => e.uid))
    for (const e of c.changed) {
      const seq = this.seqOf(e.uid)
      if (seq) {
        if (this.modseqAt(seq) < e.modseq) {
          this.setModseq(e.uid, e.modseq)
          this.heldFlags.add(e.uid)
        }
      } else if (e.uid > top && !held.has(e.uid)) {
        this.heldNew.push(e)
        held.add(e.uid)
      }
    }
    this.heldNew.sort((x, y) => x.uid - y.uid)
    if (c.folder.highestmodseq > this.modseq) this.modseq = c.folder.highestmodseq
  }

  /** Records this session's own flag change (so it is not reported back as someone else's). */
  noteOwnModseq(uid: number, modseq: number): void {
    if (this.seqOf(uid)) this.setModseq(uid, modseq)
  }

  /**
   * The updates the client may be told now. With `expunges` false (during FETCH, STORE and
   * SEARCH by sequence number, RFC 9051 7.5.1), expunges stay held.
   */
  takeUpdates(expunges: boolean): PendingUpdates {
    const out: PendingUpdates = {
      expunged: [],
      vanishedUids: [],
      exists: null,
      recent: null,
      flagsChanged: [],
      added: [],
    }
    if (expunges && this.heldExpunges.size) {
      const seqs = [...this.heldExpunges].map((u) => this.seqOf(u)).filter((s) => s > 0)
      seqs.sort((a, b) => b - a)
      for (const s of seqs) {
        out.expunged.push(s)
        out.vanishedUids.push(this.uidAt(s))
      }
      this.removeMany(new Set(out.vanishedUids))
      this.heldExpunges.clear()
    }
    for (const uid of this.heldFlags)
      if (this.seqOf(uid) && !this.heldExpunges.has(uid)) out.flagsChanged.push(uid)
    this.heldFlags.clear()
    if (this.heldNew.length) {
      for (const e of this.heldNew) {
        this.push(e)
        out.added.push(e.uid)
      }
      this.heldNew = []
      out.exists = this.exists
    }
    out.vanishedUids.sort((a, b) => a - b)
    this.compactIfLarge()
    return out
  }

  /** Removes the messages this session itself expunged (the EXPUNGE responses are its own). */
  removeUids(uids: readonly number[]): number[] {
    const seqs = uids.map((u) => this.seqOf(u)).filter((s) => s > 0)
    seqs.sort((a, b) => b - a)
    for (const u of uids) this.heldExpunges.delete(u)
    this.removeMany(new Set(uids))
    this.compactIfLarge()
    return seqs
  }

  /** Adds a message this session itself appended or copied in. */
  addOwn(e: Entry): void {
    if (e.uid > this.maxUid) this.heldNew.push(e)
  }

  private push(e: Entry): void {
    this.tailUids.push(e.uid)
    this.tailModseqs.push(e.modseq)
    this.tailIds.push(e.message_id)
  }

  /** Drops the listed UIDs in one pass (an EXPUNGE of 100,000 messages stays linear). */
  private removeMany(gone: ReadonlySet<number>): void {
    if (gone.size === 0) return
    const fromBase: number[] = []
    for (const uid of gone) {
      const i = this.baseIndexOf(uid)
      if (i >= 0) {
        fromBase.push(i)
        this.modOverride.delete(uid)
      }
    }
    if (fromBase.length) {
      fromBase.sort((a, b) => a - b)
      const merged: number[] = []
      let a = 0
      let b = 0
      while (a < this.removed.length || b < fromBase.length) {
        if (
          b >= fromBase.length ||
          (a < this.removed.length && (this.removed[a] as number) < (fromBase[b] as number))
        )
          merged.push(this.removed[a++] as number)
        else merged.push(fromBase[b++] as number)
      }
      this.removed = merged
    }
    if (this.tailUids.some((u) => gone.has(u))) {
      const keep = this.tailUids.map((u) => !gone.has(u))
      this.tailUids = this.tailUids.filter((_, i) => keep[i])
      this.tailModseqs = this.tailModseqs.filter((_, i) => keep[i])
      this.tailIds = this.tailIds.filter((_, i) => keep[i])
    }
  }

  /** Folds large differences into a private list (the shared one is left to other sessions). */
  private compactIfLarge(): void {
    if (this.removed.length <= MAX_REMOVED && this.tailUids.length <= MAX_TAIL) return
    const n = this.exists
    const entries: Entry[] = new Array(n)
    for (let seq = 1; seq <= n; seq++)
      entries[seq - 1] = {
        uid: this.uidAt(seq),
        modseq: this.modseqAt(seq),
        message_id: this.messageIdAt(seq),
      }
    this.base = snapshotOf(entries)
    this.removed = []
    this.tailUids = []
    this.tailModseqs = []
    this.tailIds = []
    this.modOverride.clear()
  }
}
