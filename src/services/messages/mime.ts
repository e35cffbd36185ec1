// Parsing a stored message for reading (GET /v1/messages/{id} and attachment downloads), with
// limits so that a hostile message cannot hang or exhaust a request:
// - at most MAX_PARTS MIME nodes and MAX_HEAD_BYTES of headers per node (mailparser's splitter
//   enforces both and fails the parse);
// - HTML longer than MAX_HTML_TO_TEXT is not converted to text;
// - the parse gets PARSE_TIMEOUT_MS; past it the input is cut off;
// - messages above MAX_PARSE_BYTES are not MIME-parsed.
// When a limit is hit or the parse fails, the message is "flattened": its top-level headers are
// read by a tolerant scanner here, it has no bodies or attachments, and `warning` says why.
// The raw bytes always stay downloadable. HTML is returned as stored (cid: links kept); the web
// UI sanitises it.
// Attachment indexes are positions in mailparser's attachment list, as in the list delivery
// stores (mail/parse.ts uses the same parser and the same attachment-relevant options).

import { Readable } from 'node:stream'
import type { SimpleParserOptions } from 'mailparser'
import { loadMailparser } from '../../mail/mailparser.ts'

/** Above delivery's own limit (500 parts by boundary count), so whatever it parsed parses here. */
export const MAX_PARTS = 1_000
export const MAX_HEAD_BYTES = 256 * 1024
export const MAX_HTML_TO_TEXT = 2 * 1024 * 1024
export const PARSE_TIMEOUT_MS = 5_000
export const MAX_PARSE_BYTES = 64 * 1024 * 1024
const MAX_HEADERS = 1_000

/** The mailparser options of every read parse (the splitter limits are not in its types). */
const READ_PARSE_OPTIONS: SimpleParserOptions & { maxChildNodes: number; maxHeadSize: number } = {
  skipHtmlToText: false,
  skipImageLinks: true,
  skipTextToHtml: true,
  skipTextLinks: true,
  keepCidLinks: true,
  maxHtmlLengthToParse: MAX_HTML_TO_TEXT,
  maxChildNodes: MAX_PARTS,
  maxHeadSize: MAX_HEAD_BYTES,
}

export interface HeaderField {
  name: string
  /** Unfolded, as in the message (RFC 2047 encoded words are not decoded). */
  value: string
}

export interface AttachmentPart {
  index: number
  filename: string | null
  content_type: string
  size: number
  content_id: string | null
  disposition: string | null
  content: Buffer
}

export interface ReadableMessage {
  headers: HeaderField[]
  text: string | null
  html: string | null
  attachments: AttachmentPart[]
  /** Why the message was flattened (null when the MIME parse succeeded). */
  warning: string | null
}

const unfold = (v: string) => v.replace(/\r?\n[ \t]+/g, ' ').trim()

/** Top-level header fields read from the raw bytes, tolerating anything (the flattened view). */
export function scanHeaders(raw: Buffer): HeaderField[] {
  const limit = Math.min(raw.length, MAX_HEAD_BYTES)
  let head = raw.subarray(0, limit).toString('latin1')
  const end = head.search(/\r?\n\r?\n/)
  if (end >= 0) head = head.slice(0, end)
  const out: HeaderField[] = []
  for (const line of head.split(/\r?\n(?![ \t])/)) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim()
    if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) continue
    // Header bytes are usually ASCII; read UTF-8 (RFC 6532) where it decodes.
    const value = Buffer.from(unfold(line.slice(colon + 1)), 'latin1').toString('utf8')
    out.push({ name, value })
    if (out.length >= MAX_HEADERS) break
  }
  return out
}

function* slices(raw: Buffer) {
  for (let i = 0; i < raw.length; i += 64 * 1024) yield raw.subarray(i, i + 64 * 1024)
}

const flattened = (raw: Buffer, warning: string): ReadableMessage => ({
  headers: scanHeaders(raw),
  text: null,
  html: null,
  attachments: [],
  warning,
})

/** Parses raw message bytes for reading, within the limits above; never throws on bad input. */
export async function parseForReading(raw: Buffer): Promise<ReadableMessage> {
  if (raw.length > MAX_PARSE_BYTES)
    return flattened(raw, `The message is larger than ${MAX_PARSE_BYTES} bytes; download it raw.`)
  const { simpleParser } = await loadMailparser()
  const input = Readable.from(slices(raw), { objectMode: false })
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), PARSE_TIMEOUT_MS)
  })
  try {
    const r = await Promise.race([simpleParser(input, READ_PARSE_OPTIONS), timeout])
    if (r === 'timeout') {
      input.destroy(new Error('parse time limit reached'))
      return flattened(raw, 'The message took too long to parse; download it raw.')
    }
    const headers = (r.headerLines ?? [])
      .filter((h) => h.key !== '')
      .slice(0, MAX_HEADERS)
      .map((h) => {
        const colon = h.line.indexOf(':')
        return { name: h.line.slice(0, colon).trim(), value: unfold(h.line.slice(colon + 1)) }
      })
      .filter((h) => h.name !== '')
    return {
      headers: headers.length > 0 ? headers : scanHeaders(raw),
      text: r.text ?? null,
      html: typeof r.html === 'string' ? r.html : null,
      attachments: (r.attachments ?? []).map((a, index) => ({
        index,
        filename: a.filename ?? null,
        content_type: a.contentType || 'application/octet-stream',
        size: a.size,
        content_id: a.cid ?? null,
        disposition: a.contentDisposition ?? null,
        content: a.content,
      })),
      warning: null,
    }
  } catch (err) {
    const why = /child nodes/i.test((err as Error).message)
      ? `The message has more than ${MAX_PARTS} MIME parts`
      : /head/i.test((err as Error).message)
        ? 'A MIME part has more header bytes than allowed'
        : 'The MIME structure could not be parsed'
    return flattened(raw, `${why}; download it raw.`)
  } finally {
    clearTimeout(timer)
  }
}
