// One parse per received message (mailparser), reduced to what Postern stores: addresses,
// subject, dates, threading ids, a bounded body text for search and preview, and the
// attachment list. Limits keep absurd MIME from costing more than a bounded amount: the
// parse is skipped (the message is still stored raw and listed) when the message is too
// deep, has too many parts, or the parser fails.

import type { AddressObject } from 'mailparser'
import { loadMailparser } from './mailparser.ts'

export interface AddressInfo {
  name: string
  address: string
}

export interface AttachmentInfo {
  index: number
  filename: string | null
  content_type: string
  size: number
  content_id: string | null
  disposition: string | null
}

export interface ParsedSummary {
  subject: string
  from: AddressInfo | null
  to: AddressInfo[]
  cc: AddressInfo[]
  reply_to: AddressInfo[]
  date: number | null
  message_id: string | null
  in_reply_to: string | null
  references: string[]
  /** Plain text for search (bounded). */
  text: string
  /** The first ~200 characters of text, whitespace collapsed. */
  preview: string
  attachments: AttachmentInfo[]
  /** Why the parse was skipped or partial, when it was. */
  problem: string | null
}

const MAX_TEXT = 100_000
const MAX_PARTS = 500
const MAX_DEPTH = 30

function addresses(a: AddressObject | AddressObject[] | undefined): AddressInfo[] {
  const list = Array.isArray(a) ? a : a ? [a] : []
  const out: AddressInfo[] = []
  const walk = (
    values: { name?: string; address?: string; group?: { name?: string; address?: string }[] }[],
  ) => {
    for (const v of values) {
      if (v.group) walk(v.group)
      else if (v.address) out.push({ name: v.name ?? '', address: v.address.toLowerCase() })
    }
  }
  for (const o of list) walk(o.value)
  return out.slice(0, 500)
}

/** Counts MIME parts and nesting depth from boundaries in the raw text (cheap, before parsing). */
function mimeShape(raw: Buffer): { parts: number; depth: number } {
  const text = raw.toString('latin1')
  const boundaries = new Set<string>()
  for (const m of text.matchAll(/boundary\s*=\s*"?([^";\r\n]{1,100})"?/gi)) boundaries.add(m[1] as string)
  let parts = 0
  for (const b of boundaries) parts += text.split(`--${b}`).length - 1
  return { parts, depth: boundaries.size }
}

export async function parseMessage(raw: Buffer): Promise<ParsedSummary> {
  const empty: ParsedSummary = {
    subject: '',
    from: null,
    to: [],
    cc: [],
    reply_to: [],
    date: null,
    message_id: null,
    in_reply_to: null,
    references: [],
    text: '',
    preview: '',
    attachments: [],
    problem: null,
  }
  const shape = mimeShape(raw)
  if (shape.parts > MAX_PARTS || shape.depth > MAX_DEPTH)
    return { ...empty, problem: `MIME too complex (${shape.parts} parts, ${shape.depth} levels); stored raw` }
  try {
    const { simpleParser } = await loadMailparser()
    const p = await simpleParser(raw, {
      skipHtmlToText: false,
      skipTextToHtml: true,
      skipImageLinks: true,
      maxHtmlLengthToParse: 2_000_000,
    })
    const text = (p.text ?? '').slice(0, MAX_TEXT)
    const refs = typeof p.references === 'string' ? [p.references] : (p.references ?? [])
    return {
      subject: (p.subject ?? '').slice(0, 998),
      from: addresses(p.from)[0] ?? null,
      to: addresses(p.to),
      cc: addresses(p.cc),
      reply_to: addresses(p.replyTo),
      date: p.date && !Number.isNaN(p.date.getTime()) ? p.date.getTime() : null,
      message_id: p.messageId?.slice(0, 998) ?? null,
      in_reply_to: p.inReplyTo?.slice(0, 998) ?? null,
      references: refs.slice(0, 100),
      text,
      preview: text.replace(/\s+/g, ' ').trim().slice(0, 200),
      attachments: p.attachments.map((a, index) => ({
        index,
        filename: a.filename ?? null,
        content_type: a.contentType,
        size: a.size,
        content_id: a.cid ?? null,
        disposition: a.contentDisposition ?? null,
      })),
      problem: null,
    }
  } catch (err) {
    return { ...empty, problem: `unparseable MIME (${(err as Error).message}); stored raw` }
  }
}

/** The subject used to group a thread: no Re:/Fwd:/[list] prefixes, case and spaces folded. */
export function normaliseSubject(subject: string): string {
  let s = subject.normalize('NFKC').trim()
  for (;;) {
    const next = s.replace(/^\s*((re|fw|fwd|aw|sv|antw|wg|tr|rv|r)(\[\d+\])?\s*:|\[[^\]]{1,40}\])\s*/i, '')
    if (next === s) break
    s = next
  }
  return s.replace(/\s+/g, ' ').toLowerCase().slice(0, 300)
}
