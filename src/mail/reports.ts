// Parsers for the reports remote systems send back about mail we sent: delivery status
// notifications (RFC 3464 bounces and delays) and abuse feedback reports (RFC 5965 ARF
// complaints). Each reduces a multipart/report to the fields the outbound side acts on.
// Invariants:
// - Never throws and never rejects: anything that is not a report of the asked kind, or
//   that cannot be read, is null. Only the report's own structure decides; nothing is
//   guessed from subjects or body text.
// - A report is a multipart/report whose report-type is delivery-status (or RFC 6533
//   global-delivery-status) for a DSN, feedback-report for ARF, holding the matching
//   machine-readable part. It is found at the top or inside other multiparts, never inside
//   an attached message (a forwarded bounce is not a bounce). A missing report-type is
//   taken from the machine-readable part present.
// - MIME is read here, not by mailparser: mailparser 3.9 folds message/delivery-status into
//   the text body unless asked not to, does not expose text/rfc822-headers by position, and
//   loses the part tree. The reader is bounded (MAX_DEPTH levels, MAX_PARTS parts) and
//   takes CRLF or LF line ends, folded fields, base64 and quoted-printable parts.
// - Values come back unfolded with runs of white space collapsed, type prefixes (`rfc822;`,
//   `dns;`, `smtp;`) and angle brackets around addresses removed, UTF-8 when they are valid
//   UTF-8 and Latin-1 otherwise. Addresses are not xtext-decoded (RFC 3461 4.2 xtext would
//   turn `user+AB@x` into another address); they are given as the reporter wrote them.
// - Missing optional fields are null (or empty lists), never invented, with one exception:
//   a recipient without a known Action takes 'failed' from a 5.x.x Status and 'delayed'
//   from a 4.x.x one.
// - originalHeaders are the returned message's header fields as written: names as written,
//   values unfolded and trimmed, RFC 2047 encoded-words left encoded.

const MAX_DEPTH = 8
const MAX_PARTS = 200
const MAX_FIELDS = 500
const MAX_VALUE = 4000

export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded'

export interface DsnRecipient {
  /** Final-Recipient without its type (falls back to Original-Recipient when absent). */
  finalRecipient: string
  originalRecipient: string | null
  action: DsnAction | null
  /** The RFC 3463 status code, like '5.1.1'. */
  status: string | null
  /** Diagnostic-Code without its type: for `smtp;` the remote server's reply. */
  diagnosticCode: string | null
  /** Remote-MTA without its type and comments: the server that gave the diagnostic. */
  remoteMta: string | null
}

export interface Dsn {
  reportingMta: string | null
  /** Original-Envelope-Id: the ENVID we gave (RFC 3461). */
  envelopeId: string | null
  recipients: DsnRecipient[]
  /** Message-ID of the returned message or headers (Gmail's X-Original-Message-ID otherwise). */
  originalMessageId: string | null
}

export interface HeaderField {
  name: string
  value: string
}

export interface Arf {
  /** Lower case: abuse, fraud, virus, other, not-spam, auth-failure... */
  feedbackType: string | null
  userAgent: string | null
  version: string | null
  /** Original-Mail-From without angle brackets; '' for the null reverse path. */
  originalMailFrom: string | null
  originalRcptTo: string[]
  arrivalDate: string | null
  reportingMta: string | null
  sourceIp: string | null
  originalMessageId: string | null
  originalHeaders: HeaderField[]
}

// ---- a small MIME reader ----

interface Part {
  headers: HeaderField[]
  /** Lower-case type/subtype; text/plain when absent or unreadable. */
  type: string
  params: Map<string, string>
  /** The decoded body as a Latin-1 string (one character per byte), LF line ends. */
  body: string
  children: Part[]
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** A Latin-1 string of raw bytes as text: UTF-8 when it is valid UTF-8, else Latin-1. */
function text(latin1: string): string {
  if (!/[\x80-\xff]/.test(latin1)) return latin1
  try {
    return utf8.decode(Buffer.from(latin1, 'latin1'))
  } catch {
    return latin1
  }
}

const lf = (s: string): string => s.replace(/\r\n?/g, '\n')

/** Splits an entity into its header section and body at the first empty line. */
function splitEntity(entity: string): { head: string; body: string } {
  if (entity.startsWith('\n')) return { head: '', body: entity.slice(1) }
  const i = entity.indexOf('\n\n')
  return i < 0 ? { head: entity, body: '' } : { head: entity.slice(0, i), body: entity.slice(i + 2) }
}

/** Header fields (or DSN fields, which share the syntax), unfolded, values raw Latin-1. */
function fields(head: string): HeaderField[] {
  const out: HeaderField[] = []
  let current: HeaderField | null = null
  for (const line of head.split('\n')) {
    if (/^[ \t]/.test(line)) {
      if (current && current.value.length < MAX_VALUE) current.value += line.slice(0, MAX_VALUE)
      continue
    }
    current = null
    const colon = line.indexOf(':')
    if (colon <= 0) continue // not a field (an mbox From_ line, garbage): skipped
    const name = line.slice(0, colon).trim()
    if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name) || out.length >= MAX_FIELDS) continue
    current = { name, value: line.slice(colon + 1, colon + 1 + MAX_VALUE) }
    out.push(current)
  }
  return out
}

const clean = (v: string): string => text(v).replace(/\s+/g, ' ').trim()

function get(list: readonly HeaderField[], name: string): string | null {
  const f = list.find((h) => h.name.toLowerCase() === name)
  return f ? clean(f.value) : null
}

function getAll(list: readonly HeaderField[], name: string): string[] {
  return list.filter((h) => h.name.toLowerCase() === name).map((h) => clean(h.value))
}

/** Content-Type into its lower-case type and parameters (quoted strings, RFC 2231 names). */
function contentType(value: string | null): { type: string; params: Map<string, string> } {
  const params = new Map<string, string>()
  if (!value) return { type: 'text/plain', params }
  const semi = value.indexOf(';')
  const type = (semi < 0 ? value : value.slice(0, semi))
    .replace(/\([^()]*\)/g, '')
    .trim()
    .toLowerCase()
  const re = /;\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g
  for (const m of value.slice(Math.max(semi, 0)).matchAll(re)) {
    let name = (m[1] as string).toLowerCase()
    let v = (m[2] as string).trim()
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1')
    if (name.endsWith('*')) {
      // RFC 2231 extended value: charset'language'percent-encoded (continuations are not used here).
      name = name.replace(/\*(0\*?)?$/, '')
      const q = /^[^']*'[^']*'(.*)$/.exec(v)
      if (q)
        v = (q[1] as string).replace(/%([0-9a-f]{2})/gi, (_, h: string) =>
          String.fromCharCode(parseInt(h, 16)),
        )
    }
    if (!params.has(name)) params.set(name, v)
  }
  return { type: /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type) ? type : 'text/plain', params }
}

/** Drops trailing spaces and tabs (String.trimEnd would also take U+00A0, a Latin-1 byte here). */
function trimBlanks(s: string): string {
  let end = s.length
  while (end > 0 && (s[end - 1] === ' ' || s[end - 1] === '\t')) end--
  return s.slice(0, end)
}

function decodeQuotedPrintable(s: string): string {
  return s
    .split('\n')
    .map(trimBlanks)
    .join('\n')
    .replace(/=\n/g, '')
    .replace(/=([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
}

function decodeBody(body: string, encoding: string | null): string {
  const e = (encoding ?? '').toLowerCase()
  if (e === 'base64')
    return lf(Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('latin1'))
  if (e === 'quoted-printable') return decodeQuotedPrintable(body)
  return body
}

/** The bodies between the boundary lines of a multipart body (preamble and epilogue dropped). */
function splitMultipart(body: string, boundary: string): string[] {
  const open = `--${boundary}`
  const close = `${open}--`
  const parts: string[] = []
  let current: string[] | null = null
  for (const line of body.split('\n')) {
    const l = line.startsWith('--') ? trimBlanks(line) : ''
    if (l === open || l === close) {
      if (current) parts.push(current.join('\n'))
      current = l === open ? [] : null
      if (l === close) break
      continue
    }
    current?.push(line)
  }
  if (current) parts.push(current.join('\n')) // no closing line: take what came
  return parts
}

function parsePart(entity: string, depth: number, budget: { parts: number }): Part {
  budget.parts++
  const { head, body } = splitEntity(entity)
  const headers = fields(head)
  const { type, params } = contentType(get(headers, 'content-type'))
  const part: Part = { headers, type, params, body: '', children: [] }
  const boundary = params.get('boundary')
  if (type.startsWith('multipart/') && boundary && depth < MAX_DEPTH) {
    for (const child of splitMultipart(body, boundary)) {
      if (budget.parts >= MAX_PARTS) break
      part.children.push(parsePart(child, depth + 1, budget))
    }
    return part
  }
  part.body = decodeBody(body, get(headers, 'content-transfer-encoding'))
  return part
}

function parseMime(raw: Buffer): Part {
  return parsePart(lf(raw.toString('latin1')), 0, { parts: 0 })
}

/** The first multipart/report in the tree (multiparts only, not attached messages) with a machine part of `types`. */
function findReport(
  root: Part,
  reportTypes: readonly string[],
  machineTypes: readonly string[],
): { report: Part; machine: Part } | null {
  const queue = [root]
  for (let p = queue.shift(); p; p = queue.shift()) {
    if (p.type === 'multipart/report') {
      const rt = p.params.get('report-type')?.toLowerCase()
      const machine = p.children.find((c) => machineTypes.includes(c.type))
      if (machine && (rt === undefined || reportTypes.includes(rt))) return { report: p, machine }
    }
    if (p.type.startsWith('multipart/')) queue.push(...p.children)
  }
  return null
}

const RETURNED_MESSAGE = ['message/rfc822', 'message/global']
const RETURNED_HEADERS = ['text/rfc822-headers', 'message/global-headers', 'message/rfc822-headers']

/** Header fields of the returned message (or returned headers) in a report, if any. */
function returnedHeaders(report: Part): HeaderField[] | null {
  const queue = [...report.children]
  for (let p = queue.shift(); p; p = queue.shift()) {
    // Leading empty lines are skipped: some reporters leave one after the part's own header.
    if (RETURNED_MESSAGE.includes(p.type) || RETURNED_HEADERS.includes(p.type)) {
      return fields(splitEntity(p.body.replace(/^\n+/, '')).head)
    }
    if (p.type.startsWith('multipart/')) queue.push(...p.children)
  }
  return null
}

function messageId(value: string | null): string | null {
  if (!value) return null
  return /<[^<>\s]+>/.exec(value)?.[0] ?? (value || null)
}

/** The groups of fields of a DSN or ARF body, separated by empty lines. */
function fieldGroups(body: string): HeaderField[][] {
  return body
    .split(/\n[ \t]*\n/)
    .map(fields)
    .filter((g) => g.length > 0)
}

/** `type; value` to value, comments removed; null when empty. */
function typed(value: string | null): string | null {
  if (value === null) return null
  const v = value.replace(/^[a-z0-9-]+\s*;\s*/i, '').trim()
  return v || null
}

const noComments = (v: string | null): string | null =>
  v === null
    ? null
    : v
        .replace(/\([^()]*\)/g, '')
        .replace(/\s+/g, ' ')
        .trim() || null

/** An address field: type, comments and angle brackets removed. */
function address(value: string | null): string | null {
  const v = noComments(typed(value))
  return v === null ? null : v.replace(/^<(.*)>$/, '$1').trim() || null
}

/** An MTA name field: type and comments removed, no trailing dot. */
function mta(value: string | null): string | null {
  const v = noComments(typed(value))
  return v === null ? null : v.replace(/\.$/, '') || null
}

const ACTIONS: readonly DsnAction[] = ['failed', 'delayed', 'delivered', 'relayed', 'expanded']

function dsnRecipient(group: readonly HeaderField[]): DsnRecipient | null {
  const original = address(get(group, 'original-recipient'))
  const final = address(get(group, 'final-recipient')) ?? original
  if (final === null) return null
  const m = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(get(group, 'status') ?? '')
  const status = m ? `${m[1]}.${Number(m[2])}.${Number(m[3])}` : null
  const word = (get(group, 'action') ?? '').split(/[\s(;]/)[0]?.toLowerCase() ?? ''
  let action = ACTIONS.find((a) => a === word) ?? null
  if (action === null && status) action = status[0] === '5' ? 'failed' : status[0] === '4' ? 'delayed' : null
  return {
    finalRecipient: final,
    originalRecipient: original,
    action,
    status,
    diagnosticCode: typed(get(group, 'diagnostic-code')),
    remoteMta: mta(get(group, 'remote-mta')),
  }
}

/** An RFC 3464 delivery status notification, or null when `raw` is not one. */
export async function parseDsn(raw: Buffer): Promise<Dsn | null> {
  try {
    if (!Buffer.isBuffer(raw)) return null
    const found = findReport(
      parseMime(raw),
      ['delivery-status', 'global-delivery-status'],
      ['message/delivery-status', 'message/global-delivery-status'],
    )
    if (!found) return null
    const groups = fieldGroups(found.machine.body)
    const perMessage = groups[0] ?? []
    const recipients: DsnRecipient[] = []
    for (const g of groups) {
      const r = dsnRecipient(g)
      if (r) recipients.push(r)
    }
    const returned = returnedHeaders(found.report)
    return {
      reportingMta: mta(get(perMessage, 'reporting-mta')),
      envelopeId: get(perMessage, 'original-envelope-id') || null,
      recipients,
      originalMessageId:
        messageId(returned ? get(returned, 'message-id') : null) ??
        messageId(get(perMessage, 'x-original-message-id')),
    }
  } catch {
    return null
  }
}

/** An RFC 5965 abuse feedback report, or null when `raw` is not one. */
export async function parseArf(raw: Buffer): Promise<Arf | null> {
  try {
    if (!Buffer.isBuffer(raw)) return null
    const found = findReport(parseMime(raw), ['feedback-report'], ['message/feedback-report'])
    if (!found) return null
    const report = fieldGroups(found.machine.body).flat()
    const returned = returnedHeaders(found.report) ?? []
    const mailFrom = get(report, 'original-mail-from')
    return {
      feedbackType:
        get(report, 'feedback-type')
          ?.split(/[\s;(]/)[0]
          ?.toLowerCase() || null,
      userAgent: get(report, 'user-agent') || null,
      version: get(report, 'version') || null,
      originalMailFrom: mailFrom === null ? null : (address(mailFrom) ?? ''),
      originalRcptTo: getAll(report, 'original-rcpt-to')
        .map((v) => address(v))
        .filter((v): v is string => v !== null),
      arrivalDate: get(report, 'arrival-date') || get(report, 'received-date') || null,
      reportingMta: mta(get(report, 'reporting-mta')),
      sourceIp: noComments(get(report, 'source-ip')),
      originalMessageId: messageId(get(returned, 'message-id')),
      originalHeaders: returned.map((f) => ({ name: f.name, value: text(f.value).trim() })),
    }
  } catch {
    return null
  }
}
