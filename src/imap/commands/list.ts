// LIST and LSUB (RFC 3501 6.3.8-9, RFC 9051 6.3.9) with CHILDREN (RFC 3348) and SPECIAL-USE
// (RFC 6154) attributes. Folders are a flat list of "/"-delimited names in the store; a level
// that exists only as the parent of others is listed as \Noselect. Names go out in modified
// UTF-7; patterns use `*` (anything) and `%` (anything but the delimiter).

import { type FolderInfo, listFolders } from '../../services/mailstore/folder-view.ts'
import { AUTHENTICATED, type ImapCommand } from '../command.ts'
import { quoteMailbox } from '../protocol/encoder.ts'
import { type ArgReader, ImapSyntaxError } from '../protocol/parser.ts'
import { atom } from '../protocol/values.ts'

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

/** Reads a parenthesised list of atoms (options), nested lists included. */
function skipList(r: ArgReader): void {
  r.openList()
  if (r.tryByte(0x29)) return
  do {
    if (r.peek() === 0x28) skipList(r)
    else r.atom()
  } while (r.trySpace())
  r.closeList()
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
      // LIST-EXTENDED selection options (RFC 5258) some clients send after seeing SPECIAL-USE:
      // read and ignored; RETURN (SPECIAL-USE CHILDREN) is what every answer already carries.
      if (verb === 'LIST' && r.peek() === 0x28) {
        skipList(r)
        r.space()
      }
      const reference = r.mailbox()
      r.space()
      const pattern = r.listMailbox()
      if (verb === 'LIST' && r.trySpace()) {
        if (!r.tryKeyword('RETURN')) throw new ImapSyntaxError('Expected RETURN (...) after the pattern.')
        r.space()
        skipList(r)
      }
      r.end()
      if (pattern === '') {
        s.untagged(atom(verb), [atom('\\Noselect')], '/', '')
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
        s.untagged(atom(verb), attrs.map(atom), '/', quoteMailbox(l.name))
      }
      return undefined
    },
  }
}

export const list = makeList('LIST')
export const lsub = makeList('LSUB')
