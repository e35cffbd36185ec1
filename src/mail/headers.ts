// Raw header-section tools for received mail, working on bytes so the body is never copied
// or re-encoded: find the end of the header section, count Received fields (loop protection),
// drop Authentication-Results fields that claim our authserv-id (RFC 8601 section 5), and
// prepend trace fields. Invariant: the body bytes are passed through untouched.

const CRLFCRLF = Buffer.from('\r\n\r\n')

/** Byte offset where the body starts (after the blank line), or the length when there is no body. */
export function headerEnd(raw: Buffer): number {
  if (raw.subarray(0, 2).toString('latin1') === '\r\n') return 2
  const i = raw.indexOf(CRLFCRLF)
  return i < 0 ? raw.length : i + 4
}

/** The header fields as [name, raw field text including folded lines and the final CRLF]. */
export function headerFields(raw: Buffer): { name: string; text: string }[] {
  const head = raw.subarray(0, headerEnd(raw)).toString('latin1')
  const fields: { name: string; text: string }[] = []
  for (const line of head.split(/(?<=\r\n)/)) {
    if (line === '\r\n') break
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length) {
      ;(fields.at(-1) as { text: string }).text += line // RFC 5322 2.2.3 folding
      continue
    }
    const colon = line.indexOf(':')
    fields.push({ name: colon > 0 ? line.slice(0, colon).trim().toLowerCase() : '', text: line })
  }
  return fields
}

export function countReceived(raw: Buffer): number {
  return headerFields(raw).filter((f) => f.name === 'received').length
}

/**
 * Removes Authentication-Results fields whose authserv-id is ours (RFC 8601 section 5: a
 * receiver must not let senders forge results that appear to be its own).
 */
export function stripOwnAuthResults(raw: Buffer, authservId: string): Buffer {
  const end = headerEnd(raw)
  const fields = headerFields(raw)
  const ours = authservId.toLowerCase()
  const kept = fields.filter((f) => {
    if (f.name !== 'authentication-results' && f.name !== 'arc-authentication-results') return true
    if (f.name === 'arc-authentication-results') return true // ARC sets are validated, not stripped
    const value = f.text
      .slice(f.text.indexOf(':') + 1)
      .replace(/\r\n[ \t]+/g, ' ')
      .trim()
    const id = value.split(/[;\s]/)[0]?.replace(/^"|"$/g, '').toLowerCase()
    return id !== ours
  })
  if (kept.length === fields.length) return raw
  const head = kept.map((f) => f.text).join('')
  const rest = raw.subarray(end === raw.length ? end : end - 2) // keep the blank line before the body
  return Buffer.concat([Buffer.from(head, 'latin1'), rest])
}

/** Prepends header fields (each a complete field without the trailing CRLF). */
export function prependHeaders(raw: Buffer, fields: string[]): Buffer {
  const text = fields
    .map((f) => f.replace(/\r?\n/g, '\r\n'))
    .map((f) => (f.endsWith('\r\n') ? f : `${f}\r\n`))
    .join('')
  return Buffer.concat([Buffer.from(text, 'utf8'), raw])
}

/** An RFC 5322 3.3 date-time in UTC: `Thu, 03 Dec 2026 09:13:45 +0000`. */
export function rfc5322Date(ms: number): string {
  return new Date(ms).toUTCString().replace(/GMT$/, '+0000')
}
