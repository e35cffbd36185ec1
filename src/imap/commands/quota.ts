// QUOTA (RFC 9208): one quota root, "", per mailbox, with the STORAGE resource in KiB (the
// mailbox quota and what its messages use). SETQUOTA is for administrators, over the API.
// A mailbox without a quota has no quota root.

import { folderByName } from '../../services/mailstore/folder-view.ts'
import { mailboxUsage } from '../../services/mailstore/status.ts'
import { AUTHENTICATED, type ImapCommand, ImapNo } from '../command.ts'
import { quoteMailbox } from '../protocol/encoder.ts'
import { atom } from '../protocol/values.ts'
import type { ImapSession } from '../session.ts'

async function writeQuota(s: ImapSession): Promise<boolean> {
  const u = await mailboxUsage(s.ctx.mail.store.db, s.ref)
  if (u.quota <= 0) return false
  s.untagged(atom('QUOTA'), '', [atom('STORAGE'), Math.ceil(u.used / 1024), Math.floor(u.quota / 1024)])
  return true
}

export const getquotaroot: ImapCommand = {
  states: AUTHENTICATED,
  async run(s, call) {
    const r = call.args
    r.space()
    const name = r.mailbox(s.rev2)
    r.end()
    const f = await folderByName(s.ctx.mail.store.db, s.ref, name)
    if (!f) throw new ImapNo(`No folder named ${name}.`, 'NONEXISTENT')
    const u = await mailboxUsage(s.ctx.mail.store.db, s.ref)
    if (u.quota > 0) {
      s.untagged(atom('QUOTAROOT'), quoteMailbox(f.name, s.rev2), '')
      await writeQuota(s)
    } else s.untagged(atom('QUOTAROOT'), quoteMailbox(f.name, s.rev2))
    return undefined
  },
}

export const getquota: ImapCommand = {
  states: AUTHENTICATED,
  async run(s, call) {
    const r = call.args
    r.space()
    const root = r.astring()
    r.end()
    if (root !== '' || !(await writeQuota(s))) throw new ImapNo(`No quota root "${root}".`, 'NONEXISTENT')
    return undefined
  },
}

export const setquota: ImapCommand = {
  states: AUTHENTICATED,
  async run() {
    throw new ImapNo('Quotas are set by an administrator (PATCH /v1/mailboxes/{id}).', 'NOPERM')
  },
}
