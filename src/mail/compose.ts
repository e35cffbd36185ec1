// Composition of outgoing messages: the API's fields in, RFC 5322 bytes out (CRLF), through
// nodemailer's MailComposer. Owns the header-injection rules for everything a caller may
// put in a header.
// Invariants:
// - No caller text reaches a header with a CR or LF in it: `checkHeaderValue` refuses them
//   before composition (the composer would encode them, but a refusal is the honest answer).
// - Attachments are given as bytes only; the composer never reads a path or fetches a URL.
// - Bcc never appears in the composed header of mail that is sent (only a stored draft keeps it).
// - Custom headers cannot replace the fields Postern owns (From, To, Date, Message-ID, MIME
//   structure, trace and authentication fields).

import type MailComposerClass from 'nodemailer/lib/mail-composer'

export interface ComposeAddress {
  name?: string | null
  address: string
}

export interface ComposeAttachment {
  filename: string
  content: Buffer
  contentType?: string | null
  /** Content-ID for inline images referenced as cid: in the HTML. */
  cid?: string | null
}

export interface ComposeInput {
  from: ComposeAddress
  to: readonly ComposeAddress[]
  cc?: readonly ComposeAddress[]
  bcc?: readonly ComposeAddress[]
  replyTo?: readonly ComposeAddress[]
  subject: string
  text?: string | null
  html?: string | null
  attachments?: readonly ComposeAttachment[]
  /** Extra header fields, checked with `checkCustomHeader`. */
  headers?: Readonly<Record<string, string>>
  /** Without angle brackets: `<id>@<domain>`. */
  messageId: string
  date: Date
  inReplyTo?: string | null
  references?: readonly string[]
  /** Keep the Bcc field (a draft stored for its author; never for mail that is sent). */
  keepBcc?: boolean
}

/** Fields a caller may not set through custom headers. */
const RESERVED = new Set([
  'from',
  'sender',
  'to',
  'cc',
  'bcc',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'content-disposition',
  'dkim-signature',
  'arc-seal',
  'arc-message-signature',
  'arc-authentication-results',
  'authentication-results',
  'received',
  'return-path',
  'delivered-to',
])

const FIELD_NAME = /^[!-9;-~]{1,76}$/ // RFC 5322 ftext: printable US-ASCII except colon

export class ComposeError extends Error {
  readonly field: string
  constructor(field: string, message: string) {
    super(message)
    this.name = 'ComposeError'
    this.field = field
  }
}

/** Throws ComposeError when a value bound for a header holds CR, LF or NUL. */
export function checkHeaderValue(field: string, value: string): void {
  if (/[\r\n\0]/.test(value))
    throw new ComposeError(field, `${field} must not contain line breaks (CR or LF) or NUL characters`)
}

/** Throws ComposeError for a custom header a caller may not send. */
export function checkCustomHeader(name: string, value: string): void {
  if (!FIELD_NAME.test(name))
    throw new ComposeError(`headers.${name}`, `'${name}' is not a valid header field name`)
  if (RESERVED.has(name.toLowerCase()))
    throw new ComposeError(
      `headers.${name}`,
      `${name} is set by Postern and cannot be given as a custom header`,
    )
  checkHeaderValue(`headers.${name}`, value)
  if (value.length > 998) throw new ComposeError(`headers.${name}`, `the value of ${name} is too long`)
}

// Loaded on the first composition, not at start.
let composerModule: Promise<{ default: typeof MailComposerClass }> | null = null
const loadComposer = () => {
  composerModule ??= import('nodemailer/lib/mail-composer')
  return composerModule
}

const addr = (a: ComposeAddress) => ({ name: a.name ?? '', address: a.address })

/** Composes the message; the result has CRLF line ends and no Bcc field (unless keepBcc). */
export async function composeMessage(m: ComposeInput): Promise<Buffer> {
  checkHeaderValue('subject', m.subject)
  for (const [field, list] of [
    ['from', [m.from]],
    ['to', m.to],
    ['cc', m.cc ?? []],
    ['bcc', m.bcc ?? []],
    ['reply_to', m.replyTo ?? []],
  ] as const)
    for (const a of list) {
      checkHeaderValue(field, a.address)
      if (a.name) checkHeaderValue(field, a.name)
    }
  for (const [name, value] of Object.entries(m.headers ?? {})) checkCustomHeader(name, value)
  const { default: MailComposer } = await loadComposer()
  const composer = new MailComposer({
    from: addr(m.from),
    to: m.to.map(addr),
    ...(m.keepBcc && m.bcc?.length ? { bcc: m.bcc.map(addr) } : {}),
    ...(m.cc?.length ? { cc: m.cc.map(addr) } : {}),
    ...(m.replyTo?.length ? { replyTo: m.replyTo.map(addr) } : {}),
    subject: m.subject,
    ...(m.text != null ? { text: m.text } : {}),
    ...(m.html != null ? { html: m.html } : {}),
    attachments: (m.attachments ?? []).map((a) => ({
      filename: a.filename,
      content: a.content,
      ...(a.contentType ? { contentType: a.contentType } : {}),
      ...(a.cid ? { cid: a.cid } : {}),
    })),
    headers: { ...(m.headers ?? {}) },
    messageId: `<${m.messageId}>`,
    date: m.date,
    ...(m.inReplyTo ? { inReplyTo: m.inReplyTo } : {}),
    ...(m.references?.length ? { references: [...m.references] } : {}),
    disableFileAccess: true,
    disableUrlAccess: true,
  })
  const node = composer.compile()
  node.keepBcc = m.keepBcc === true
  const raw: Buffer = await node.build()
  // The composer writes CRLF already; normalise any bare LF a caller's text might smuggle in.
  return toCrlf(raw)
}

/** Bare LF and bare CR become CRLF (SMTP requires CRLF; bare ones enable smuggling). */
export function toCrlf(raw: Buffer): Buffer {
  if (!raw.includes(0x0a) && !raw.includes(0x0d)) return raw
  const s = raw.toString('latin1')
  if (!/\r(?!\n)|(?<!\r)\n/.test(s)) return raw
  return Buffer.from(s.replace(/\r\n|\r|\n/g, '\r\n'), 'latin1')
}
