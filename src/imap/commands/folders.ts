// CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE (RFC 9051 6.3.4-8): the folder rules are
// the store's (services/mailstore/folders.ts); names arrive decoded from modified UTF-7.

import {
  createImapFolder,
  deleteImapFolder,
  renameImapFolder,
  subscribeImapFolder,
} from '../../services/mailstore/folders.ts'
import { AUTHENTICATED, type ImapCommand, ImapNo } from '../command.ts'

export const create: ImapCommand = {
  states: AUTHENTICATED,
  async run(s, call) {
    const r = call.args
    r.space()
    const name = r.mailbox(s.rev2)
    r.end()
    await createImapFolder(s.ctx.mail, s.ref, name)
    return undefined
  },
}

export const del: ImapCommand = {
  states: AUTHENTICATED,
  async run(s, call) {
    const r = call.args
    r.space()
    const name = r.mailbox(s.rev2)
    r.end()
    if (name === 'INBOX') throw new ImapNo('INBOX cannot be deleted.', 'CANNOT')
    await deleteImapFolder(s.ctx.mail, s.ref, name)
    // Deleting the selected folder ends the session, as with Dovecot: its UIDs are gone.
    if (s.selected && s.selected.folder.name === name) {
      s.reply(call.tag, 'OK', 'DELETE completed.')
      s.drop('The selected folder was deleted; reconnect.')
      s.logout()
      return { answered: true }
    }
    return undefined
  },
}

export const rename: ImapCommand = {
  states: AUTHENTICATED,
  async run(s, call) {
    const r = call.args
    r.space()
    const from = r.mailbox(s.rev2)
    r.space()
    const to = r.mailbox(s.rev2)
    r.end()
    if (from === 'INBOX')
      throw new ImapNo('Renaming INBOX is not supported: create a folder and move the mail.', 'CANNOT')
    await renameImapFolder(s.ctx.mail, s.ref, from, to.endsWith('/') ? to.slice(0, -1) : to)
    return undefined
  },
}

function makeSubscribe(on: boolean): ImapCommand {
  return {
    states: AUTHENTICATED,
    async run(s, call) {
      const r = call.args
      r.space()
      const name = r.mailbox(s.rev2)
      r.end()
      await subscribeImapFolder(s.ctx.mail, s.ref, name, on)
      return undefined
    },
  }
}

export const subscribe = makeSubscribe(true)
export const unsubscribe = makeSubscribe(false)
