// LIST and LSUB (RFC 3501 6.3.8-9, RFC 9051 6.3.9) with CHILDREN (RFC 3348) and SPECIAL-USE
// (RFC 6154) attributes. Folders are a flat list of "/"-delimited names in the store; a level
// that exists only as the parent of others is listed as \Noselect. Names go out in modified
// UTF-7; patterns use `*` (anything) and `%` (anything but the delimiter).

import { type FolderInfo, listFolders } from '../../services/mailstore/folder-view.ts'
import { folderStatus } from '../../services/mailstore/status.ts'
import { AUTHENTICATED, type ImapCommand } from '../command.ts'
import { quoteMailbox } from '../protocol/encoder.ts'
import { type ArgReader, ImapSyntaxError } from '../protocol/parser.ts'
import { atom, type ImapValue } from '../protocol/values.ts'
import type { ImapSession } from '../session.ts'

const SPECIAL: Record<string, string> = {
  sent: '\\Sent',
  drafts: '\\Drafts',
  junk: '\\Junk',
  trash: '\\Trash',
  archive: '\\Archive',
}

/** A matcher for an IMAP list pattern (case-sensitive, INBOX aside). */
export function patternMatcher(pattern: string): (name: string) => boolean {
  let re = '^'
  for (const ch of pattern) {
    if (ch === '*') re += '.*'
    else if (ch === '%') re += '[^/]*'
    else re += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }
  const rx = new RegExp(`${re}$`, 's')
  const inboxRx = /^inbox/i.test(pattern) ? new RegExp(`${re.replace(/^\^inbox/i, '^INBOX')}$`, 's') : null
  return (name) => rx.test(name) || (name === 'INBOX' && inboxRx !== null && inboxRx.test(name))
}

interface Listed {
  name: string
  folder: FolderInfo | null
  hasChildren: boolean
}

/** Every folder and every implied parent level, sorted. */
function tree(folders: FolderInfo[]): Listed[] {
  const byName = new Map<string, Listed>()
  for (const f of folders) byName.set(f.name, { name: f.name, folder: f, hasChildren: false })
  for (const f of folders) {
    const levels = f.name.split('/')
    for (let i = 1; i < levels.length; i++) {
      const parent = levels.slice(0, i).join('/')
      const p = byName.get(parent) ?? { name: parent, folder: null, hasChildren: false }
      p.hasChildren = true
      byName.set(parent, p)
    }
  }
  return [...byName.values()].sort((a, b) =>
    a.name === 'INBOX' ? -1 : b.name === 'INBOX' ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  )
}

interface ListOptions {
  /** LIST-EXTENDED (RFC 5258) was used: implied parents are \NonExistent. */
  extended: boolean
  subscribedOnly: boolean
  recursive: boolean
  specialOnly: boolean
  returnSubscribed: boolean
  /** LIST-STATUS (RFC 5819): STATUS items to answer for each selectable folder. */
  status: string[] | null
}

const STATUS_ITEMS = new Set([
  'MESSAGES',
  'UIDNEXT',
  'UIDVALIDITY',
  'UNSEEN',
  'DELETED',
  'SIZE',
  'HIGHESTMODSEQ',
])

function atoms(r: ArgReader): string[] {
  const out: string[] = []
  r.openList()
  if (r.tryByte(0x29)) return out
  do out.push(r.keyword())
  while (r.trySpace())
  r.closeList()
  return out
}

function join(reference: string, pattern: string): string {
  if (!reference) return pattern
  if (pattern.startsWith('/')) return pattern
  return reference.endsWith('/') ? reference + pattern : `${reference}/${pattern}`
}

function makeList(verb: 'LIST' | 'LSUB'): ImapCommand {
  return {
    states: AUTHENTICATED,
    async run(s, call) {
      const r = call.args
      r.space()
      const o: ListOptions = {
        extended: false,
        subscribedOnly: verb === 'LSUB',
        recursive: false,
        specialOnly: false,
        returnSubscribed: false,
        status: null,
      }
      if (verb === 'LIST' && r.peek() === 0x28) {
        o.extended = true
        for (const opt of atoms(r)) {
          if (opt === 'SUBSCRIBED') o.subscribedOnly = true
          else if (opt === 'RECURSIVEMATCH') o.recursive = true
          else if (opt === 'SPECIAL-USE') o.specialOnly = true
          else if (opt !== 'REMOTE') throw new ImapSyntaxError(`Unknown LIST selection option ${opt}.`)
        }
        if (o.recursive && !o.subscribedOnly)
          throw new ImapSyntaxError('RECURSIVEMATCH needs another selection option.')
        r.space()
      }
      const reference = r.mailbox(s.rev2)
      r.space()
      const patterns: string[] = []
      if (verb === 'LIST' && r.peek() === 0x28) {
        o.extended = true
        r.openList()
        do patterns.push(r.listMailbox(s.rev2))
        while (r.trySpace())
        r.closeList()
      } else patterns.push(r.listMailbox(s.rev2))
      if (verb === 'LIST' && r.trySpace()) {
        if (!r.tryKeyword('RETURN')) throw new ImapSyntaxError('Expected RETURN (...) after the pattern.')
        o.extended = true
        r.space()
        r.openList()
        if (!r.tryByte(0x29)) {
          do {
            const opt = r.keyword()
            if (opt === 'SUBSCRIBED') o.returnSubscribed = true
            else if (opt === 'STATUS') {
              r.space()
              o.status = atoms(r)
              for (const i of o.status)
                if (!STATUS_ITEMS.has(i)) throw new ImapSyntaxError(`Unknown STATUS item ${i}.`)
            } else if (opt !== 'CHILDREN' && opt !== 'SPECIAL-USE')
              throw new ImapSyntaxError(`Unknown LIST return option ${opt}.`)
          } while (r.trySpace())
          r.closeList()
        }
      }
      r.end()
      const pattern = patterns[0] as string
      if (patterns.length === 1 && pattern === '') {
        s.untagged(atom(verb), [atom('\\Noselect')], '/', '')
        return undefined
      }
      if (verb === 'LIST' && (o.extended || o.status)) {
        await listExtended(s, reference, patterns, o)
        return undefined
      }
      const match = patternMatcher(join(reference, pattern))
      const all = tree(await listFolders(s.ctx.mail.store.db, s.ref))
      const subscribedNames = new Set(all.filter((l) => l.folder?.subscribed).map((l) => l.name))
      for (const l of all) {
        const attrs: string[] = []
        if (verb === 'LSUB') {
          if (!subscribedNames.has(l.name)) {
            // A %-match stopping at an unsubscribed parent of subscribed folders (RFC 3501 6.3.9).
            const hasSubscribedChild = [...subscribedNames].some((n) => n.startsWith(`${l.name}/`))
            if (!(hasSubscribedChild && pattern.endsWith('%') && match(l.name))) continue
            attrs.push('\\Noselect')
          }
        } else {
          if (!l.folder) attrs.push('\\Noselect')
          attrs.push(l.hasChildren ? '\\HasChildren' : '\\HasNoChildren')
          const special = l.folder?.role ? SPECIAL[l.folder.role] : undefined
          if (special) attrs.push(special)
        }
        if (!match(l.name)) continue
        s.untagged(atom(verb), attrs.map(atom), '/', quoteMailbox(l.name, s.rev2))
      }
      return undefined
    },
  }
}

/** LIST with LIST-EXTENDED / LIST-STATUS options (RFC 5258, 5819, 6154). */
async function listExtended(
  s: ImapSession,
  reference: string,
  patterns: string[],
  o: ListOptions,
): Promise<void> {
  const matchers = patterns.map((p) => patternMatcher(join(reference, p)))
  const match = (name: string) => matchers.some((m) => m(name))
  const db = s.ctx.mail.store.db
  const all = tree(await listFolders(db, s.ref))
  const subscribed = new Set(all.filter((l) => l.folder?.subscribed).map((l) => l.name))
  for (const l of all) {
    if (!match(l.name)) continue
    const special = l.folder?.role ? SPECIAL[l.folder.role] : undefined
    const childSubscribed = [...subscribed].some((n) => n.startsWith(`${l.name}/`))
    if (o.subscribedOnly && !subscribed.has(l.name) && !(o.recursive && childSubscribed)) continue
    if (o.specialOnly && !special) continue
    const attrs: string[] = []
    if (!l.folder) attrs.push('\\NonExistent')
    attrs.push(l.hasChildren ? '\\HasChildren' : '\\HasNoChildren')
    if (special) attrs.push(special)
    if ((o.subscribedOnly || o.returnSubscribed) && subscribed.has(l.name)) attrs.push('\\Subscribed')
    const extra: ImapValue[] = []
    if (o.recursive && childSubscribed) extra.push(['CHILDINFO', ['SUBSCRIBED']])
    s.untagged(atom('LIST'), attrs.map(atom), '/', quoteMailbox(l.name, s.rev2), ...extra)
    if (o.status && l.folder) {
      const st = await folderStatus(db, s.ref, l.folder)
      const values: Record<string, number> = {
        MESSAGES: st.messages,
        UIDNEXT: st.uidnext,
        UIDVALIDITY: st.uidvalidity,
        UNSEEN: st.unseen,
        DELETED: st.deleted,
        SIZE: st.size,
        HIGHESTMODSEQ: st.highestmodseq,
      }
      s.untagged(
        atom('STATUS'),
        quoteMailbox(l.name, s.rev2),
        o.status.flatMap((i) => [atom(i), values[i] as number]),
      )
    }
  }
}

export const list = makeList('LIST')
export const lsub = makeList('LSUB')
