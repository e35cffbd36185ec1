// FETCH BODYSTRUCTURE and BODY (RFC 9051 7.5.2, grammar `body` in section 9) written as the
// exact bytes of the parenthesised structure. Bytes rather than an ImapValue because a
// multipart's bodies are concatenated with no space between them (`1*body SP media-subtype`),
// which the list encoder cannot express; the caller splices the result in as an atom.
//
// Invariants:
// - Sizes are end - bodyStart of the raw bytes, and line counts are MimePart.lines: exactly
//   what a client counts in the BODY[n] bytes (sectionBytes), the line break before a boundary
//   excluded.
// - Strings are quoted when they are 7-bit, without NUL/CR/LF and at most 4096 octets
//   (`\` and `"` escaped), otherwise literals `{n}\r\n` of their UTF-8 bytes. NIL for absent.
// - Case: type, subtype, parameter names, disposition type and encoding are written uppercase,
//   as in RFC 9051's examples and as Cyrus does (Dovecot echoes the message's own case; all are
//   case-insensitive, RFC 2045 5.1). Parameter values are written as they appear in the message.
// - text/* without a charset gets ("CHARSET" "us-ascii") first (RFC 2045 5.2 default).
// - Extension data is always written in full: md5 dsp lang loc for a single part, params dsp
//   lang loc for a multipart. Languages are always a parenthesised list.
// - Fallbacks that keep the grammar valid: an opaque multipart (no boundary, or no delimiter
//   line, or beyond the limits) is written as a basic body of its own type, whose part 1 is its
//   body; a message/rfc822 or message/global part whose message was not parsed (non-identity
//   encoding, or beyond the limits) is written as "APPLICATION" "OCTET-STREAM", as Dovecot does,
//   since MESSAGE/RFC822 would require an envelope and a body.
// - Recursion is bounded by the tree's depth (MAX_MIME_DEPTH).

import type { MimePart } from '../../mail/mime-tree.ts'
import { isMultipart } from '../../mail/mime-tree.ts'
import type { ImapValue } from '../protocol/values.ts'
import { envelopeOf } from './envelope.ts'

/** Longest string written as a quoted string; longer ones are literals. */
export const MAX_QUOTED = 4096

/** The complete encoded structure, from '(' to ')'. */
export function bodyStructureOf(raw: Buffer, root: MimePart, extensible: boolean): Buffer {
  const out: Buffer[] = []
  writeBody(out, raw, root, extensible)
  return Buffer.concat(out)
}

/** The structure as an atom for the response encoder (latin1, so every byte survives as is). */
export function bodyStructureAtom(raw: Buffer, root: MimePart, extensible: boolean): { atom: string } {
  return { atom: bodyStructureOf(raw, root, extensible).toString('latin1') }
}

/** Encodes an ImapValue with the same rules as this file's strings (used for the envelope). */
export function encodeValue(v: ImapValue): Buffer {
  const out: Buffer[] = []
  writeValue(out, v)
  return Buffer.concat(out)
}

function ascii(out: Buffer[], s: string): void {
  out.push(Buffer.from(s, 'latin1'))
}

function writeString(out: Buffer[], s: string): void {
  const bytes = Buffer.from(s, 'utf8')
  let quotable = bytes.length <= MAX_QUOTED
  for (let i = 0; quotable && i < bytes.length; i++) {
    const b = bytes[i]!
    if (b === 0 || b === 0x0a || b === 0x0d || b >= 0x80) quotable = false
  }
  if (quotable) ascii(out, `"${s.replace(/(["\\])/g, '\\$1')}"`)
  else {
    ascii(out, `{${bytes.length}}\r\n`)
    out.push(bytes)
  }
}

function writeNString(out: Buffer[], s: string | null): void {
  if (s === null) ascii(out, 'NIL')
  else writeString(out, s)
}

function writeValue(out: Buffer[], v: ImapValue): void {
  if (v === null) ascii(out, 'NIL')
  else if (typeof v === 'number') ascii(out, String(v))
  else if (typeof v === 'string') writeString(out, v)
  else if (Array.isArray(v)) {
    ascii(out, '(')
    v.forEach((item, i) => {
      if (i) ascii(out, ' ')
      writeValue(out, item)
    })
    ascii(out, ')')
  } else if ('atom' in v) ascii(out, v.atom)
  else {
    ascii(out, `${v.binary ? '~' : ''}{${v.literal.length}}\r\n`)
    out.push(v.literal)
  }
}

function writeParams(out: Buffer[], params: Array<[string, string]>, defaultCharset: boolean): void {
  const list: Array<[string, string]> = params.map(([k, v]) => [k.toUpperCase(), v])
  if (defaultCharset && !params.some(([k]) => k === 'charset' || k === 'charset*'))
    list.unshift(['CHARSET', 'us-ascii'])
  if (!list.length) {
    ascii(out, 'NIL')
    return
  }
  ascii(out, '(')
  list.forEach(([k, v], i) => {
    if (i) ascii(out, ' ')
    writeString(out, k)
    ascii(out, ' ')
    writeString(out, v)
  })
  ascii(out, ')')
}

/** body-fld-dsp SP body-fld-lang SP body-fld-loc, shared by both kinds of body. */
function writeCommonExtension(out: Buffer[], part: MimePart): void {
  ascii(out, ' ')
  if (part.disposition) {
    ascii(out, '(')
    writeString(out, part.disposition.type.toUpperCase())
    ascii(out, ' ')
    writeParams(out, part.disposition.params, false)
    ascii(out, ')')
  } else ascii(out, 'NIL')
  ascii(out, ' ')
  if (part.language) {
    ascii(out, '(')
    part.language.forEach((l, i) => {
      if (i) ascii(out, ' ')
      writeString(out, l)
    })
    ascii(out, ')')
  } else ascii(out, 'NIL')
  ascii(out, ' ')
  writeNString(out, part.location)
}

function writeBody(out: Buffer[], raw: Buffer, part: MimePart, extensible: boolean): void {
  ascii(out, '(')
  if (isMultipart(part)) {
    for (const child of part.children) writeBody(out, raw, child, extensible)
    ascii(out, ' ')
    writeString(out, part.subtype.toUpperCase())
    if (extensible) {
      ascii(out, ' ')
      writeParams(out, part.params, false)
      writeCommonExtension(out, part)
    }
    ascii(out, ')')
    return
  }
  const isMessage = part.type === 'message' && (part.subtype === 'rfc822' || part.subtype === 'global')
  const message = isMessage ? part.message : null
  const text = part.type === 'text'
  if (isMessage && !message) ascii(out, '"APPLICATION" "OCTET-STREAM"')
  else {
    writeString(out, part.type.toUpperCase())
    ascii(out, ' ')
    writeString(out, part.subtype.toUpperCase())
  }
  ascii(out, ' ')
  writeParams(out, part.params, text)
  ascii(out, ' ')
  writeNString(out, part.id)
  ascii(out, ' ')
  writeNString(out, part.description)
  ascii(out, ' ')
  writeString(out, part.encoding)
  ascii(out, ` ${part.end - part.bodyStart}`)
  if (message) {
    ascii(out, ' ')
    writeValue(out, envelopeOf(raw, message))
    ascii(out, ' ')
    writeBody(out, raw, message, extensible)
    ascii(out, ` ${part.lines}`)
  } else if (text) ascii(out, ` ${part.lines}`)
  if (extensible) {
    ascii(out, ' ')
    writeNString(out, part.md5)
    writeCommonExtension(out, part)
  }
  ascii(out, ')')
}
