// The selected folder's list against a plain array model: removals, arrivals, MODSEQ changes
// and compaction, over a shared base, keep sequence numbers, UIDs and lookups right.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SelectedFolder, snapshotOf } from '../../src/imap/selected.ts'
import type { Entry, FolderInfo } from '../../src/services/mailstore/folder-view.ts'

const folder = (n: number): FolderInfo => ({
  id: 'fld_1',
  name: 'INBOX',
  role: 'inbox',
  subscribed: true,
  uidvalidity: 1,
  uidnext: n + 1,
  highestmodseq: n,
  recent_uid: n + 1,
})

function check(sel: SelectedFolder, model: Entry[]) {
  assert.equal(sel.exists, model.length)
  assert.equal(sel.maxUid, model.at(-1)?.uid ?? 0)
  for (let i = 0; i < model.length; i++) {
    const e = model[i] as Entry
    assert.equal(sel.uidAt(i + 1), e.uid)
    assert.equal(sel.messageIdAt(i + 1), e.message_id)
    assert.equal(sel.modseqAt(i + 1), e.modseq, `modseq of uid ${e.uid} at ${i + 1} of ${model.length}`)
    assert.equal(sel.seqOf(e.uid), i + 1)
  }
  const walked: number[] = []
  sel.forEachListed((seq, uid) => {
    assert.equal(seq, walked.length + 1)
    walked.push(uid)
  })
  assert.deepEqual(
    walked,
    model.map((e) => e.uid),
  )
}

describe('selected folder list', () => {
  it('matches a plain model through random removals, arrivals and flag changes', () => {
    let seed = 7
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const initial: Entry[] = Array.from({ length: 3000 }, (_, i) => ({
      uid: i * 2 + 1,
      modseq: i + 1,
      message_id: `m${i}`,
    }))
    const base = snapshotOf(initial)
    const sel = new SelectedFolder(folder(6000), base, 6001, false)
    const other = new SelectedFolder(folder(6000), base, 6001, false)
    let model = initial.map((e) => ({ ...e }))
    let nextUid = 7000
    let modseq = 10_000
    for (let round = 0; round < 60; round++) {
      const gone = new Set<number>()
      for (let k = rand(80); k > 0 && model.length; k--) gone.add((model[rand(model.length)] as Entry).uid)
      const changed: Entry[] = []
      for (let k = rand(20); k > 0 && model.length; k--) {
        const e = model[rand(model.length)] as Entry
        if (!gone.has(e.uid)) changed.push({ ...e, modseq: ++modseq })
      }
      const added: Entry[] = []
      for (let k = rand(120); k > 0; k--)
        added.push({ uid: nextUid++, modseq: ++modseq, message_id: `n${nextUid}` })
      sel.absorb({
        folder: { ...folder(0), highestmodseq: modseq },
        changed: [...changed, ...added],
        vanished: [...gone],
      })
      const u = sel.takeUpdates(true)
      assert.equal(u.expunged.length, gone.size)
      for (const c of changed) {
        const m = model.find((x) => x.uid === c.uid)
        if (m) m.modseq = c.modseq
      }
      model = model.filter((e) => !gone.has(e.uid)).concat(added)
      check(sel, model)
      const range = sel.seqsInUidRange(100, 900)
      const want = model.map((e, i) => [e.uid, i + 1] as const).filter(([uid]) => uid >= 100 && uid <= 900)
      assert.deepEqual(range, want.length ? [want[0]?.[1], want.at(-1)?.[1]] : null)
    }
    check(other, initial) // the shared base was never touched
  })
})
