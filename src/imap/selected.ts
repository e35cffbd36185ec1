// The selected folder of one session: its messages in UID order (a message's sequence number
// is its position + 1), the MODSEQ this session has seen up to, \Recent, and the changes made
// elsewhere that the client has not been told about yet.
// Invariants (RFC 9051 7.5.1, 7.4.1; RFC 7162 3.2.10):
// - Sequence numbers change only when this session reports an EXPUNGE (or VANISHED): an
//   expunge seen in the store is held back until the session may report it (not during a
//   FETCH, STORE or SEARCH by sequence number), and the UIDs stay in `uids` until then.
// - New messages are appended as they are reported (EXISTS), never earlier.
// - Memory: two typed arrays per folder (UIDs, MODSEQs), so a 100,000-message folder costs
//   about 1.2 MB, and an idle session on an empty folder almost nothing.

import type { Entry, FolderChanges, FolderInfo } from '../services/mailstore/folder-view.ts'

export interface PendingUpdates {
  /** Sequence numbers to report as EXPUNGE, in the order to send them (highest first is not required: each is sent against the list as it then stands). */
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

export class SelectedFolder {
  readonly folder: FolderInfo
  readonly readOnly: boolean
  private uids: Uint32Array
  private modseqs: Float64Array
  private ids: string[]
  private count: number
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

  constructor(folder: FolderInfo, entries: readonly Entry[], recentFrom: number, readOnly: boolean) {
    this.folder = folder
    this.readOnly = readOnly
    this.recentFrom = recentFrom
    this.openTop = folder.uidnext
    this.count = entries.length
    const cap = Math.max(16, entries.length)
    this.uids = new Uint32Array(cap)
    this.modseqs = new Float64Array(cap)
    this.ids = new Array(cap)
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Entry
      this.uids[i] = e.uid
      this.modseqs[i] = e.modseq
      this.ids[i] = e.message_id
    }
    this.modseq = folder.highestmodseq
  }

  get exists(): number {
    return this.count
  }

  get recent(): number {
    let n = 0
    for (let i = this.count - 1; i >= 0 && (this.uids[i] as number) >= this.recentFrom; i--)
      if (this.isRecent(this.uids[i] as number)) n++
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
    return this.uids[seq - 1] as number
  }

  messageIdAt(seq: number): string {
    return this.ids[seq - 1] as string
  }

  modseqAt(seq: number): number {
    return this.modseqs[seq - 1] as number
  }

  /** The highest UID listed (0 when empty): the value of `*` in UID sets. */
  get maxUid(): number {
    return this.count ? (this.uids[this.count - 1] as number) : 0
  }

  /** The sequence number of a UID, or 0 when it is not listed. */
  seqOf(uid: number): number {
    let lo = 0
    let hi = this.count - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const v = this.uids[mid] as number
      if (v === uid) return mid + 1
      if (v < uid) lo = mid + 1
      else hi = mid - 1
    }
    return 0
  }

  /** Sequence numbers (ascending) of listed UIDs within [lo, hi]. */
  seqsInUidRange(lo: number, hi: number): [number, number] | null {
    // first index with uid >= lo
    let a = 0
    let b = this.count
    while (a < b) {
      const m = (a + b) >> 1
      if ((this.uids[m] as number) < lo) a = m + 1
      else b = m
    }
    const first = a
    a = first
    b = this.count
    while (a < b) {
      const m = (a + b) >> 1
      if ((this.uids[m] as number) <= hi) a = m + 1
      else b = m
    }
    return a > first ? [first + 1, a] : null
  }

  /** True when the message at `seq` was expunged elsewhere and not yet reported. */
  isExpungedPending(seq: number): boolean {
    return this.heldExpunges.has(this.uids[seq - 1] as number)
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
        if ((this.modseqs[seq - 1] as number) < e.modseq) {
          this.modseqs[seq - 1] = e.modseq
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
    const seq = this.seqOf(uid)
    if (seq) this.modseqs[seq - 1] = modseq
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
      // Report from the highest sequence number down, so each number is right as sent.
      const seqs = [...this.heldExpunges].map((u) => this.seqOf(u)).filter((s) => s > 0)
      seqs.sort((a, b) => b - a)
      for (const s of seqs) {
        out.expunged.push(s)
        out.vanishedUids.push(this.uids[s - 1] as number)
      }
      this.removeMany(new Set(out.vanishedUids))
      this.heldExpunges.clear()
    }
    for (const uid of this.heldFlags)
      if (this.seqOf(uid) && !this.heldExpunges.has(uid)) out.flagsChanged.push(uid)
    this.heldFlags.clear()
    if (this.heldNew.length) {
      const before = this.recent
      for (const e of this.heldNew) {
        this.push(e)
        out.added.push(e.uid)
      }
      this.heldNew = []
      out.exists = this.count
      if (this.recent !== before) out.recent = this.recent
    } else if (out.expunged.length) out.recent = null
    out.vanishedUids.sort((a, b) => a - b)
    return out
  }

  /** Removes the messages this session itself expunged (the EXPUNGE responses are its own). */
  removeUids(uids: readonly number[]): number[] {
    const seqs = uids.map((u) => this.seqOf(u)).filter((s) => s > 0)
    seqs.sort((a, b) => b - a)
    for (const u of uids) this.heldExpunges.delete(u)
    this.removeMany(new Set(uids))
    return seqs
  }

  /** Adds a message this session itself appended or copied in. */
  addOwn(e: Entry): void {
    if (e.uid > this.maxUid) this.heldNew.push(e)
  }

  private push(e: Entry): void {
    if (this.count === this.uids.length) {
      const n = this.uids.length * 2
      const u = new Uint32Array(n)
      u.set(this.uids)
      const m = new Float64Array(n)
      m.set(this.modseqs)
      this.uids = u
      this.modseqs = m
    }
    this.uids[this.count] = e.uid
    this.modseqs[this.count] = e.modseq
    this.ids[this.count] = e.message_id
    this.count++
  }

  /** Drops the listed UIDs in one pass (an EXPUNGE of 100,000 messages stays linear). */
  private removeMany(gone: ReadonlySet<number>): void {
    if (gone.size === 0) return
    let w = 0
    for (let r = 0; r < this.count; r++) {
      const uid = this.uids[r] as number
      if (gone.has(uid)) continue
      this.uids[w] = uid
      this.modseqs[w] = this.modseqs[r] as number
      this.ids[w] = this.ids[r] as string
      w++
    }
    for (let i = w; i < this.count; i++) this.ids[i] = ''
    this.count = w
  }
}
