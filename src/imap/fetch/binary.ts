// BINARY[part] (RFC 3516): a part's body with its Content-Transfer-Encoding undone, so a
// client fetches an attachment's bytes without decoding base64 itself. BINARY[] is the whole
// message as stored. An encoding we cannot undo is an error the caller turns into
// NO [UNKNOWN-CTE]; a multipart part has no single content and is refused the same way.

import { bodyOf, isMultipart, type MimePart, partAt } from '../../mail/mime-tree.ts'

export class UnknownCteError extends Error {}

export function binaryContent(raw: Buffer, root: MimePart, part: number[]): Buffer {
  if (part.length === 0) return raw
  const p = partAt(root, part)
  if (!p) return Buffer.alloc(0)
  if (isMultipart(p))
    throw new UnknownCteError('A multipart part has no content of its own; fetch its parts.')
  const body = bodyOf(raw, p)
  switch (p.encoding) {
    case '7BIT':
    case '8BIT':
    case 'BINARY':
      return body
    case 'BASE64':
      return Buffer.from(body.toString('latin1').replace(/[^A-Za-z0-9+/]/g, ''), 'base64')
    case 'QUOTED-PRINTABLE':
      return decodeQuotedPrintable(body)
    default:
      throw new UnknownCteError(`The part's Content-Transfer-Encoding ${p.encoding} is unknown.`)
  }
}

/** RFC 2045 6.7: soft line breaks removed, =XX decoded, line ends kept as CRLF. */
export function decodeQuotedPrintable(body: Buffer): Buffer {
  const out = Buffer.alloc(body.length)
  let w = 0
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as number
    if (c !== 0x3d) {
      out[w++] = c
      continue
    }
    // "=" then CRLF / LF: a soft line break; "=" then two hex digits: one byte.
    if (body[i + 1] === 0x0d && body[i + 2] === 0x0a) {
      i += 2
      continue
    }
    if (body[i + 1] === 0x0a) {
      i += 1
      continue
    }
    const hex = body.subarray(i + 1, i + 3).toString('latin1')
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      out[w++] = Number.parseInt(hex, 16)
      i += 2
    } else out[w++] = c // a stray "=" is kept, as RFC 2045 suggests for robustness
  }
  return out.subarray(0, w)
}
