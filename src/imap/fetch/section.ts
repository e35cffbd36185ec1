// The bytes of FETCH BODY[section]<partial> (RFC 9051 6.4.5): which slice of the raw message a
// section spec names. Owns section addressing on top of mail/mime-tree.ts's part numbering.
//
// Invariants:
// - Bytes are the message's own, never re-encoded: HEADER, TEXT, MIME and part bodies are
//   subarrays of `raw`; only HEADER.FIELDS[.NOT] builds a new Buffer (the chosen whole fields,
//   each with its own line break, then a CRLF blank line). A field that ends at the end of the
//   data without a line break gets a CRLF so the result is still a header block.
// - `n` is the part's body, `n.MIME` the part's own header block. HEADER, HEADER.FIELDS[.NOT]
//   and TEXT apply to the message itself (no part) or to a message/rfc822 part (its
//   encapsulated message); on any other part they are empty.
// - A part that does not exist, and any section that does not apply (`MIME` with no part),
//   yields an empty Buffer: the caller answers with an empty string, as Dovecot and Cyrus do,
//   rather than failing the FETCH.
// - HEADER of a message whose header never ends in a blank line is the whole message, as is.

import type { MimePart } from '../../mail/mime-tree.ts'
import { bodyOf, headerBlock, partAt } from '../../mail/mime-tree.ts'
import type { Section } from '../protocol/types.ts'

const EMPTY = Buffer.alloc(0)
const CRLF = Buffer.from('\r\n', 'latin1')

/** Exactly what BODY[section] returns for this message. */
export function sectionBytes(raw: Buffer, root: MimePart, section: Section): Buffer {
  let message: MimePart | null
  if (section.part.length === 0) {
    if (section.text === undefined) return raw
    if (section.text === 'MIME') return EMPTY
    message = root
  } else {
    const part = partAt(root, section.part)
    if (!part) return EMPTY
    if (section.text === undefined) return bodyOf(raw, part)
    if (section.text === 'MIME') return headerBlock(raw, part)
    message = part.message
    if (!message) return EMPTY
  }
  switch (section.text) {
    case 'HEADER':
      return headerBlock(raw, message)
    case 'TEXT':
      return bodyOf(raw, message)
    case 'HEADER.FIELDS':
      return headerFields(raw, message, section.fields ?? [], true)
    case 'HEADER.FIELDS.NOT':
      return headerFields(raw, message, section.fields ?? [], false)
  }
  return EMPTY
}

/** The chosen fields of a message's header, in message order, followed by a blank line. */
function headerFields(raw: Buffer, message: MimePart, fields: string[], keep: boolean): Buffer {
  const names = new Set(fields.map((f) => f.toLowerCase()))
  const out: Buffer[] = []
  for (const f of message.headers) {
    if (names.has(f.lower) !== keep) continue
    out.push(raw.subarray(f.start, f.end))
    if (raw[f.end - 1] !== 0x0a) out.push(CRLF)
  }
  out.push(CRLF)
  return Buffer.concat(out)
}

/** BODY[...]<start.length>: the slice, empty when start is at or past the end. */
export function partialOf(bytes: Buffer, start: number, length: number): Buffer {
  if (start >= bytes.length || length <= 0) return EMPTY
  return bytes.subarray(start, start + length)
}
