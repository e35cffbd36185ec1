// APPEND (RFC 9051 6.3.12) with APPENDUID (RFC 4315) and APPENDLIMIT (RFC 7889): the message
// literal is streamed to a staged blob as it arrives (never held whole in memory), then filed
// into the folder in one transaction. The folder and the size are checked when the literal
// is announced, before a synchronizing client sends a byte: NO [TRYCREATE] for a missing
// folder, NO [TOOBIG] past the limit.

import { appendMessage, discardUpload, stageUpload } from '../../services/mailstore/append.ts'
import { folderByName } from '../../services/mailstore/folder-view.ts'
import { AUTHENTICATED, type ImapCommand, ImapNo } from '../command.ts'
import { ImapSyntaxError } from '../protocol/parser.ts'
import { uidSetText } from '../sequence.ts'
import { checkFlags } from './store.ts'

export const append: ImapCommand = {
  states: AUTHENTICATED,
  async run() {
    throw new ImapSyntaxError('APPEND needs the message as a literal.')
  },
  async literal(s, call, announced) {
    const r = call.args
    let name: string
    let flags: string[] = []
    let date: Date | null = null
    try {
      r.space()
      name = r.mailbox(s.rev2)
      r.space()
      if (r.peek() === 0x28) {
        flags = r.flagList()
        r.space()
      }
      if (r.peek() === 0x22) {
        date = r.dateTime()
        r.space()
      }
    } catch (err) {
      // The mailbox name itself may be a literal: that one is read as usual.
      if (r.pos >= announced.at) return null
      throw err
    }
    if (r.pos !== announced.at) throw new ImapSyntaxError('Expected the message literal.')
    if (announced.size > s.ctx.settings.max_message_bytes)
      throw new ImapNo(
        `The message is larger than the limit of ${s.ctx.settings.max_message_bytes} bytes.`,
        'TOOBIG',
      )
    if (announced.size === 0) throw new ImapNo('An empty message cannot be appended.', 'CANNOT')
    checkFlags(flags)
    const folder = await folderByName(s.ctx.mail.store.db, s.ref, name)
    if (!folder) throw new ImapNo(`No folder named ${name}.`, 'TRYCREATE')
    return {
      async take(literal, rest) {
        async function* pieces() {
          for (;;) {
            const piece = await literal.next()
            if (!piece) return
            yield piece
          }
        }
        const staged = await stageUpload(s.ctx.mail, s.ref, pieces())
        let tail: Awaited<ReturnType<typeof rest>>
        try {
          tail = await rest()
          if (!tail) throw new Error('connection closed')
          tail.end()
        } catch (err) {
          await discardUpload(s.ctx.mail, staged).catch(() => {})
          throw err
        }
        const result = await appendMessage(s.ctx.mail, s.ref, folder.id, {
          staged,
          flags,
          internaldate: date ? date.getTime() : null,
        })
        return {
          code: `APPENDUID ${result.uidvalidity} ${uidSetText([result.uid])}`,
          text: 'APPEND completed.',
        }
      },
    }
  },
}
