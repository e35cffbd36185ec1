// THREAD and UID THREAD (RFC 5256) with the REFERENCES algorithm (src/imap/thread.ts).

import { threadFields } from '../../services/mailstore/folder-view.ts'
import { type ImapCommand, ImapNo, SELECTED } from '../command.ts'
import { ImapSyntaxError } from '../protocol/parser.ts'
import { readProgram, searchSelected } from '../search.ts'
import { type ThreadInput, threadReferences } from '../thread.ts'

export const thread: ImapCommand = {
  states: SELECTED,
  uidForm: true,
  expungeOk: (call) => call.uid,
  async run(s, call) {
    const r = call.args
    const sel = s.selected
    if (!sel) throw new ImapNo('No folder selected.')
    r.space()
    const algorithm = r.keyword()
    if (algorithm !== 'REFERENCES')
      throw new ImapSyntaxError(`Unknown threading algorithm ${algorithm}; this server offers REFERENCES.`)
    r.space()
    const key = readProgram(r, true)
    const seqs = await searchSelected(s, sel, key)
    const fields = await threadFields(
      s.ctx.mail.store.db,
      s.ref.org_id,
      seqs.map((n) => sel.messageIdAt(n)),
    )
    const input: ThreadInput[] = []
    for (const n of seqs) {
      const f = fields.get(sel.messageIdAt(n))
      if (!f) continue
      input.push({
        n: call.uid ? sel.uidAt(n) : n,
        messageId: f.message_id_header,
        inReplyTo: f.in_reply_to,
        references: f.references,
        subject: f.subject,
        date: f.date,
      })
    }
    const text = threadReferences(input)
    s.write(Buffer.from(`* THREAD${text ? ' ' : ''}${text}\r\n`))
    return undefined
  },
}
