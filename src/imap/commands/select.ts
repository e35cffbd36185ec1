// SELECT and EXAMINE (RFC 9051 6.3.2-3, RFC 3501 6.3.1): opens a folder, read-write or read
// only, and reports FLAGS, EXISTS, RECENT, UNSEEN, UIDVALIDITY, UIDNEXT, PERMANENTFLAGS and
// HIGHESTMODSEQ (RFC 7162 3.1.2.1). A failed SELECT leaves the session authenticated with
// nothing selected (RFC 9051 6.3.2); closing one folder by selecting another says [CLOSED].
// The (CONDSTORE) parameter turns CONDSTORE on; (QRESYNC (uidvalidity modseq [known-uids]))
// (RFC 7162 3.2.5) adds what changed since that MODSEQ: VANISHED (EARLIER) for the UIDs
// expunged, then FETCH (UID FLAGS MODSEQ) for the messages changed or added.

import { folderKeywords, folderMessages } from '../../services/mailstore/folder-index.ts'
import { changesSince, flagsOf, folderByName, openFolder } from '../../services/mailstore/folder-view.ts'
import { AUTHENTICATED, type ImapCommand, ImapNo } from '../command.ts'
import { imapFlags } from '../flags.ts'
import { sharedSnapshot, shareSnapshot } from '../folder-snapshots.ts'
import { flagList, quoteMailbox } from '../protocol/encoder.ts'
import { ImapSyntaxError, inRanges, sequenceRanges } from '../protocol/parser.ts'
import type { SequenceSet } from '../protocol/types.ts'
import { atom } from '../protocol/values.ts'
import { SelectedFolder, type Snapshot, snapshotOf } from '../selected.ts'
import { uidSetText } from '../sequence.ts'
import type { ImapSession } from '../session.ts'

const SYSTEM = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft']

function makeSelect(readOnly: boolean): ImapCommand {
  return {
    states: AUTHENTICATED,
    async run(s, call) {
      const r = call.args
      r.space()
      const name = r.mailbox(s.rev2)
      let resync: { uidvalidity: number; modseq: number; known: SequenceSet | null } | null = null
      if (r.trySpace()) {
        r.openList()
        do {
          const p = r.keyword()
          if (p === 'CONDSTORE') s.condstore = true
          else if (p === 'QRESYNC') {
            if (!s.qresync) throw new ImapSyntaxError('QRESYNC is not enabled: send ENABLE QRESYNC first.')
            r.space()
            r.openList()
            const uidvalidity = r.nzNumber()
            r.space()
            const modseq = r.nzNumber64()
            let known: SequenceSet | null = null
            if (r.trySpace()) {
              if (r.peek() !== 0x28) known = r.sequenceSet()
              if (r.trySpace() || r.peek() === 0x28) {
                // The sequence-match data only helps servers without tombstones; ours keep them.
                r.openList()
                r.sequenceSet()
                r.space()
                r.sequenceSet()
                r.closeList()
              }
            }
            r.closeList()
            resync = { uidvalidity, modseq, known }
          } else throw new ImapSyntaxError(`Unknown SELECT parameter ${p}.`)
        } while (r.trySpace())
        r.closeList()
      }
      r.end()
      if (s.selected) {
        s.setSelected(null)
        s.status('OK', 'Previous mailbox closed.', 'CLOSED')
      }
      const db = s.ctx.mail.store.db
      const f = await folderByName(db, s.ref, name)
      if (!f) throw new ImapNo(`No folder named ${name}.`, 'NONEXISTENT')
      let shared: Snapshot | null = null
      const opened = await openFolder(db, s.ref, f.id, !readOnly, (info) => {
        shared = sharedSnapshot(info)
        return shared !== null
      })
      if (!opened) throw new ImapNo(`No folder named ${name}.`, 'NONEXISTENT')
      let snapshot = shared as Snapshot | null
      if (!snapshot || opened.entries) {
        snapshot = snapshotOf(opened.entries ?? [])
        shareSnapshot(opened.folder, snapshot)
      }
      const sel = new SelectedFolder(opened.folder, snapshot, opened.recentFrom, readOnly)
      for (const k of await folderKeywords(db, s.ref, opened.folder)) sel.keywords.add(k)
      writeFlags(s, sel)
      s.untagged(sel.exists, atom('EXISTS'))
      if (s.rev2) {
        // RFC 9051 6.3.2: a LIST response with the mailbox's canonical name; no RECENT or UNSEEN.
        s.untagged(atom('LIST'), [], '/', quoteMailbox(opened.folder.name, true))
      } else {
        s.untagged(sel.recent, atom('RECENT'))
        const unseen = await firstUnseen(s, sel)
        if (unseen) s.status('OK', `Message ${unseen} is the first unseen.`, `UNSEEN ${unseen}`)
      }
      s.status('OK', 'UIDs valid.', `UIDVALIDITY ${opened.folder.uidvalidity}`)
      s.status('OK', 'Predicted next UID.', `UIDNEXT ${opened.folder.uidnext}`)
      s.status('OK', 'Highest', `HIGHESTMODSEQ ${opened.folder.highestmodseq}`)
      s.setSelected(sel)
      if (resync && resync.uidvalidity === opened.folder.uidvalidity)
        await reportChanges(s, sel, resync.modseq, resync.known)
      return {
        code: readOnly ? 'READ-ONLY' : 'READ-WRITE',
        text: `${readOnly ? 'EXAMINE' : 'SELECT'} completed.`,
      }
    },
  }
}

/** FLAGS and PERMANENTFLAGS for the folder: system flags and the keywords announced so far. */
export function writeFlags(s: ImapSession, sel: SelectedFolder): void {
  const keywords = [...sel.keywords].sort()
  s.untagged(atom('FLAGS'), flagList([...SYSTEM, ...keywords]))
  s.status(
    'OK',
    sel.readOnly ? 'No permanent flags permitted.' : 'Flags permitted.',
    `PERMANENTFLAGS (${sel.readOnly ? '' : [...SYSTEM, ...keywords, '\\*'].join(' ')})`,
  )
}

async function firstUnseen(
  s: Parameters<ImapCommand['run']>[0],
  sel: SelectedFolder,
): Promise<number | null> {
  if (sel.exists === 0) return null
  const index = await folderMessages(s.ctx.mail.store.db, s.ref, sel.folder)
  for (let n = 1; n <= sel.exists; n++) if (!index.get(sel.uidAt(n))?.seen) return n
  return null
}

/**
 * What changed since `modseq` (QRESYNC resync, UID FETCH ... (CHANGEDSINCE n VANISHED)):
 * VANISHED (EARLIER) with the UIDs expunged, then FETCH (UID FLAGS MODSEQ) of each message
 * changed, limited to the UIDs in `known` when given.
 */
export async function reportChanges(
  s: ImapSession,
  sel: SelectedFolder,
  modseq: number,
  known: SequenceSet | null,
): Promise<void> {
  const changes = await changesSince(s.ctx.mail.store.db, s.ref, sel.folder.id, modseq)
  if (!changes) return
  const ranges = known ? sequenceRanges(known, Math.max(sel.maxUid, sel.folder.uidnext)) : null
  const vanished = changes.vanished.filter((u) => !ranges || inRanges(ranges, u))
  if (vanished.length) s.write(Buffer.from(`* VANISHED (EARLIER) ${uidSetText(vanished)}\r\n`))
  const changed = changes.changed.filter((e) => sel.seqOf(e.uid) > 0 && (!ranges || inRanges(ranges, e.uid)))
  const flags = await flagsOf(
    s.ctx.mail.store.db,
    s.ref.org_id,
    changed.map((e) => e.message_id),
  )
  for (const e of changed) {
    const seq = sel.seqOf(e.uid)
    const f = imapFlags(flags.get(e.message_id) ?? [], s.recent(sel, e.uid))
    s.untagged(seq, atom('FETCH'), [
      atom('UID'),
      e.uid,
      atom('FLAGS'),
      flagList(f),
      atom('MODSEQ'),
      [sel.modseqAt(seq)],
    ])
    if (seq % 200 === 0) await s.flush()
  }
}

export const select = makeSelect(false)
export const examine = makeSelect(true)
