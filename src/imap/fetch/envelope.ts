// The FETCH ENVELOPE structure of a message (RFC 9051 7.5.2) and the small, forgiving RFC 5322
// address-list parser it needs. Owns how header values become envelope strings and how
// From/To/... become `((name adl mailbox host) ...)` lists.
//
// Invariants:
// - Never throws: any header text, however broken, yields an envelope.
// - Strings are the raw header values, unfolded (CRLF + WSP becomes the WSP) and trimmed;
//   RFC 2047 encoded words are left encoded (clients decode them). The first occurrence of a
//   field is used; a field that is absent is NIL, one that is present but empty is "".
// - Sender and Reply-To fall back to From when absent or empty (RFC 9051 7.5.2).
// - An address list with no addresses is NIL. Group syntax is kept: `g: a@b;` becomes
//   (NIL NIL "g" NIL) (addresses) (NIL NIL NIL NIL); an unterminated group is closed at the end.
// - Display names are unquoted and unescaped; with no phrase, a comment (`a@b (Name)`) is the
//   name. Local parts are re-quoted only when they are not a dot-atom.
// - An address with no domain has host MISSING_HOST, "MISSING_DOMAIN" as Dovecot writes it: a
//   NIL host would mean the start of a group (RFC 9051 7.5.2) and mislead clients.

import type { MimePart } from '../../mail/mime-tree.ts'
import { unfold } from '../../mail/mime-tree.ts'
import type { ImapValue } from '../protocol/values.ts'

/** The host written for an address that has no domain. */
export const MISSING_HOST: string | null = 'MISSING_DOMAIN'

export interface EnvelopeAddress {
  name: string | null
  adl: string | null
  mailbox: string | null
  host: string | null
}

/** The ENVELOPE of the message whose root part is `part` (the message itself, or an encapsulated one). */
export function envelopeOf(_raw: Buffer, part: MimePart): ImapValue {
  const first = new Map<string, string>()
  for (const f of part.headers) if (!first.has(f.lower)) first.set(f.lower, f.value)
  const text = (name: string): string | null => {
    const v = first.get(name)
    return v === undefined ? null : unfold(v)
  }
  const addresses = (name: string): ImapValue => {
    const v = first.get(name)
    return v === undefined ? null : addressListValue(parseAddressList(unfold(v)))
  }
  const from = addresses('from')
  const sender = addresses('sender')
  const replyTo = addresses('reply-to')
  return [
    text('date'),
    text('subject'),
    from,
    sender ?? from,
    replyTo ?? from,
    addresses('to'),
    addresses('cc'),
    addresses('bcc'),
    text('in-reply-to'),
    text('message-id'),
  ]
}

/** An address list as an envelope value: NIL when empty. */
export function addressListValue(list: EnvelopeAddress[]): ImapValue {
  if (!list.length) return null
  return list.map((a) => [a.name, a.adl, a.mailbox, a.host])
}

type Token =
  | { kind: 'word'; value: string; quoted: boolean; space: boolean }
  | { kind: 'special'; value: string; space: boolean }
  | { kind: 'comment'; value: string; space: boolean }

const SPECIALS = '<>@,;:.'

function tokenize(s: string): Token[] {
  const out: Token[] = []
  let i = 0
  let space = false
  while (i < s.length) {
    const c = s[i]!
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      space = true
      i++
    } else if (c === '(') {
      let depth = 0
      let v = ''
      while (i < s.length) {
        const d = s[i++]!
        if (d === '\\' && i < s.length) v += s[i++]
        else if (d === '(') {
          if (depth++ > 0) v += d
        } else if (d === ')') {
          if (--depth === 0) break
          v += d
        } else v += d
      }
      out.push({ kind: 'comment', value: v, space })
      space = true // a comment separates words like white space does
    } else if (c === '"') {
      i++
      let v = ''
      while (i < s.length) {
        const d = s[i++]!
        if (d === '"') break
        if (d === '\\' && i < s.length) v += s[i++]
        else v += d
      }
      out.push({ kind: 'word', value: v, quoted: true, space })
      space = false
    } else if (c === '[') {
      const close = s.indexOf(']', i)
      const stop = close < 0 ? s.length : close + 1
      out.push({ kind: 'word', value: s.slice(i, stop), quoted: false, space })
      i = stop
      space = false
    } else if (SPECIALS.includes(c)) {
      out.push({ kind: 'special', value: c, space })
      i++
      space = false
    } else {
      const from = i
      while (i < s.length && !' \t\r\n("['.includes(s[i]!) && !SPECIALS.includes(s[i]!)) i++
      out.push({ kind: 'word', value: s.slice(from, i), quoted: false, space })
      space = false
    }
  }
  return out
}

/** Parses an RFC 5322 address-list (obsolete forms and garbage tolerated). Never throws. */
export function parseAddressList(value: string): EnvelopeAddress[] {
  const toks = tokenize(value)
  const out: EnvelopeAddress[] = []
  let inGroup = false
  let item: Token[] = []
  let angle = false
  let sawAt = false
  const flush = (): void => {
    const a = mailbox(item)
    if (a) out.push(a)
    item = []
    angle = false
    sawAt = false
  }
  for (const t of toks) {
    if (t.kind === 'special') {
      if (t.value === '<') angle = true
      else if (t.value === '>') angle = false
      else if (!angle) {
        if (t.value === ',') {
          flush()
          continue
        }
        if (t.value === ';') {
          flush()
          if (inGroup) out.push({ name: null, adl: null, mailbox: null, host: null })
          inGroup = false
          continue
        }
        if (t.value === ':' && !inGroup && !sawAt) {
          out.push({ name: null, adl: null, mailbox: phrase(item), host: null })
          inGroup = true
          item = []
          continue
        }
      }
      if (t.value === '@') sawAt = true
    }
    item.push(t)
  }
  flush()
  if (inGroup) out.push({ name: null, adl: null, mailbox: null, host: null })
  return out
}

/** Words and dots joined as written: one space where white space or a comment separated them. */
function phrase(toks: Token[]): string {
  let out = ''
  for (const t of toks) {
    if (t.kind === 'comment') continue
    if (out && t.space) out += ' '
    out += t.value
  }
  return out
}

const DOT_ATOM = /^[^\s"(),.:;<>@[\\\]]+(?:\.[^\s"(),.:;<>@[\\\]]+)*$/

function mailbox(toks: Token[]): EnvelopeAddress | null {
  let lastComment: string | null = null
  for (const t of toks) if (t.kind === 'comment' && t.value.trim()) lastComment = t.value.trim()
  const open = toks.findIndex((t) => t.kind === 'special' && t.value === '<')
  let name: string | null
  let spec: Token[]
  let adl: string | null = null
  if (open >= 0) {
    name = phrase(toks.slice(0, open)) || lastComment
    let close = toks.findIndex((t, k) => k > open && t.kind === 'special' && t.value === '>')
    if (close < 0) close = toks.length
    spec = toks.slice(open + 1, close).filter((t) => t.kind !== 'comment')
    const first = spec[0]
    if (first && first.kind === 'special' && first.value === '@') {
      const colon = spec.findIndex((t) => t.kind === 'special' && t.value === ':')
      if (colon > 0) {
        adl = spec
          .slice(0, colon)
          .map((t) => t.value)
          .join('')
        spec = spec.slice(colon + 1)
      }
    }
  } else {
    name = lastComment
    spec = toks.filter((t) => t.kind !== 'comment' && !(t.kind === 'special' && t.value === '>'))
  }
  const at = spec.findIndex((t) => t.kind === 'special' && t.value === '@')
  const localToks = at < 0 ? spec : spec.slice(0, at)
  const domainToks = at < 0 ? [] : spec.slice(at + 1)
  const local = open >= 0 || at >= 0 ? localToks.map((t) => t.value).join('') : phrase(localToks) // a bare word list without '@': keep its spacing
  const quoted = localToks.some((t) => t.kind === 'word' && t.quoted)
  const domain = domainToks.map((t) => t.value).join('')
  if (!local && !domain) return null
  const box = quoted && !DOT_ATOM.test(local) ? `"${local.replace(/(["\\])/g, '\\$1')}"` : local
  return { name: name || null, adl, mailbox: box, host: domain || MISSING_HOST }
}
