// SELECT and EXAMINE (RFC 9051 6.3.2-3, RFC 3501 6.3.1): opens a folder, read-write or read
// only, and reports FLAGS, EXISTS, RECENT, UNSEEN, UIDVALIDITY, UIDNEXT, PERMANENTFLAGS. A failed
// SELECT leaves the session authenticated with nothing selected (RFC 9051 6.3.2).

import { flagsOf, folderByName, folderKeywords, openFolder } from '../../services/mailstore/folder-view.ts'
import { AUTHENTICATED, type ImapCommand, ImapNo } from '../command.ts'
import { flagList } from '../protocol/encoder.ts'
import { atom } from '../protocol/values.ts'
import { SelectedFolder } from '../selected.ts'

const SYSTEM = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft']

function makeSelect(readOnly: boolean): ImapCommand {
  return {
    states: AUTHENTICATED,
    async run(s, call) {
      const r = call.args
      r.space()
      const name = r.mailbox()
      r.end()
      if (s.selected) s.setSelected(null)
      const db = s.ctx.mail.store.db
      const f = await folderByName(db, s.ref, name)
      if (!f) throw new ImapNo(`No folder named ${name}.`, 'NONEXISTENT')
      const opened = await openFolder(db, s.ref, f.id, !readOnly)
      if (!opened) throw new ImapNo(`No folder named ${name}.`, 'NONEXISTENT')
      const sel = new SelectedFolder(opened.folder, opened.entries, opened.recentFrom, readOnly)
      const keywords = await folderKeywords(db, s.ref, f.id)
      s.untagged(atom('FLAGS'), flagList([...SYSTEM, ...keywords]))
      s.status(
        'OK',
        readOnly ? 'No permanent flags permitted.' : 'Flags permitted.',
        `PERMANENTFLAGS (${readOnly ? '' : [...SYSTEM, ...keywords, '\\*'].join(' ')})`,
      )
      s.untagged(sel.exists, atom('EXISTS'))
      s.untagged(sel.recent, atom('RECENT'))
      const unseen = await firstUnseen(s, sel)
      if (unseen) s.status('OK', `Message ${unseen} is the first unseen.`, `UNSEEN ${unseen}`)
      s.status('OK', 'UIDs valid.', `UIDVALIDITY ${opened.folder.uidvalidity}`)
      s.status('OK', 'Predicted next UID.', `UIDNEXT ${opened.folder.uidnext}`)
      s.setSelected(sel)
      return {
        code: readOnly ? 'READ-ONLY' : 'READ-WRITE',
        text: `${readOnly ? 'EXAMINE' : 'SELECT'} completed.`,
      }
    },
  }
}

async function firstUnseen(
  s: Parameters<ImapCommand['run']>[0],
  sel: SelectedFolder,
): Promise<number | null> {
  const db = s.ctx.mail.store.db
  for (let start = 1; start <= sel.exists; start += 500) {
    const seqs: number[] = []
    for (let n = start; n < start + 500 && n <= sel.exists; n++) seqs.push(n)
    const flags = await flagsOf(
      db,
      s.ref.org_id,
      seqs.map((n) => sel.messageIdAt(n)),
    )
    for (const n of seqs) if (!(flags.get(sel.messageIdAt(n)) ?? []).includes('\\Seen')) return n
  }
  return null
}

export const select = makeSelect(false)
export const examine = makeSelect(true)
