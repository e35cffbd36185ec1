// Shared steps of the mail-reading tests: an org with mailboxes the owner can read, messages
// stored through the real delivery service (deliverInbound: blob, row, thread, INBOX
// membership, full-text index, used bytes), and message sources (plain, multipart with HTML
// and attachments, absurd MIME).

import assert from 'node:assert/strict'
import { deliverInbound, type LocalTarget } from '../../src/services/delivery/inbound.ts'
import { manualClock } from '../../src/time/clock.ts'
import { setupOwner } from '../accounts/helpers.ts'
import type { Api } from '../helpers/api.ts'
import type { Dialect } from '../helpers/dialects.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'

export interface TestMailbox {
  id: string
  address: string
  /** The mailbox-scoped key returned at creation. */
  key: string
  target: LocalTarget
}

export interface MailOrg {
  api: Api
  orgId: string
  ownerId: string
  domain: string
  /** A mailbox owned by the owner (so the owner's session reads it). */
  mailbox(local: string, opts?: { owned?: boolean }): Promise<TestMailbox>
}

/** A server with a manual clock (so received_at orders messages), fast delivery (no SPF/DKIM). */
export async function startMailServer(dialect: Dialect, env: Record<string, string> = {}) {
  const clock = manualClock(Date.UTC(2026, 2, 1, 12))
  const s = await startTestServer(dialect, { clock, env: { POSTERN_SMTP_VERIFY_AUTH: 'false', ...env } })
  return { s, clock }
}

export async function mailOrg(s: TestServer, domain = 'mail.example'): Promise<MailOrg> {
  const api = await setupOwner(s)
  const me = (await api.get('/v1/me')).body
  const d = await api.post('/v1/domains', { name: domain, max_mailboxes: 50 })
  assert.equal(d.status, 201, d.text)
  return {
    api,
    orgId: me.org_id,
    ownerId: me.id,
    domain,
    mailbox: (local, opts = {}) => createMailbox(s, api, domain, local, (opts.owned ?? true) ? me.id : null),
  }
}

export async function createMailbox(
  s: TestServer,
  api: Api,
  domain: string,
  local: string,
  ownerUserId: string | null,
): Promise<TestMailbox> {
  // owner_user_id is left out rather than sent as null: with coerceTypes, ajv turns a null
  // for the schema's string|null union into "" (a foreign-key failure, 500).
  const r = await api.post('/v1/mailboxes', {
    domain,
    local_part: local,
    ...(ownerUserId ? { owner_user_id: ownerUserId } : {}),
  })
  assert.equal(r.status, 201, r.text)
  const row = await s.postern.store.db
    .selectFrom('mailboxes')
    .select(['id', 'org_id', 'address'])
    .where('id', '=', r.body.mailbox.id)
    .executeTakeFirstOrThrow()
  return {
    id: row.id,
    address: row.address,
    key: r.body.api_key.key,
    target: { org_id: row.org_id, mailbox_id: row.id, address: row.address },
  }
}

/** Stores a message for the mailbox the way the MX does; returns the message id. */
export async function deliver(
  s: TestServer,
  to: LocalTarget | TestMailbox,
  raw: string | Buffer,
  mailFrom = 'sender@outside.example',
): Promise<string> {
  const target = 'target' in to ? to.target : to
  const r = await deliverInbound(s.postern.delivery, {
    raw: typeof raw === 'string' ? Buffer.from(raw) : raw,
    mailFrom,
    recipients: [{ address: target.address, notify: null, orcpt: null }],
    targets: [target],
    session: { id: 'test', ip: '127.0.0.1', helo: 'client.outside.example', tls: null },
  })
  assert.ok(r.ok, `delivery failed: ${JSON.stringify(r)}`)
  const stored = r.stored[0]
  assert.ok(stored)
  return stored.message_id
}

let counter = 0

export interface MailSpec {
  from?: string
  fromName?: string
  to?: string
  cc?: string
  subject?: string
  body?: string
  date?: string
  messageId?: string
  inReplyTo?: string
  references?: string
  headers?: string[]
}

/** A plain text message. */
export function textMail(o: MailSpec = {}): string {
  const id = o.messageId ?? `<m${++counter}.${Date.now()}@outside.example>`
  return [
    `From: ${o.fromName ?? 'Sender'} <${o.from ?? 'sender@outside.example'}>`,
    `To: <${o.to ?? 'someone@mail.example'}>`,
    ...(o.cc ? [`Cc: ${o.cc}`] : []),
    `Subject: ${o.subject ?? 'Hello'}`,
    `Date: ${o.date ?? 'Sun, 01 Mar 2026 10:00:00 +0000'}`,
    `Message-ID: ${id}`,
    ...(o.inReplyTo ? [`In-Reply-To: ${o.inReplyTo}`] : []),
    ...(o.references ? [`References: ${o.references}`] : []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    ...(o.headers ?? []),
    '',
    o.body ?? 'Hello there.\r\nThis is the body.',
    '',
  ].join('\r\n')
}

export const PDF_BYTES = Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n', 'latin1')
export const PNG_BYTES = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489',
  'hex',
)

/** multipart/mixed: text and HTML alternatives, a PDF with a UTF-8 name, an inline image. */
export function richMail(o: MailSpec = {}): string {
  const wrap = (b: Buffer) => (b.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n')
  return [
    `From: ${o.fromName ?? 'Ann Example'} <${o.from ?? 'ann@outside.example'}>`,
    `To: Bob <${o.to ?? 'bob@mail.example'}>, carl@outside.example`,
    'Cc: "Dana D." <dana@outside.example>',
    'Reply-To: replies@outside.example',
    `Subject: ${o.subject ?? '=?UTF-8?Q?R=C3=A9sum=C3=A9_attached?='}`,
    `Date: ${o.date ?? 'Mon, 02 Mar 2026 09:30:00 +0000'}`,
    `Message-ID: ${o.messageId ?? '<rich@outside.example>'}`,
    'X-Custom: folded',
    '\tvalue',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="outer"',
    '',
    '--outer',
    'Content-Type: multipart/alternative; boundary="alt"',
    '',
    '--alt',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'Caf=C3=A9 plans for Tuesday.',
    '--alt',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<p>Café plans for <b>Tuesday</b>.<img src="cid:logo@x"><script>alert(1)</script></p>',
    '--alt--',
    '--outer',
    'Content-Type: application/pdf; name="=?UTF-8?Q?r=C3=A9sum=C3=A9.pdf?="',
    "Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
    'Content-Transfer-Encoding: base64',
    '',
    wrap(PDF_BYTES),
    '--outer',
    'Content-Type: image/png',
    'Content-ID: <logo@x>',
    'Content-Disposition: inline; filename="logo.png"',
    'Content-Transfer-Encoding: base64',
    '',
    wrap(PNG_BYTES),
    '--outer--',
    '',
  ].join('\r\n')
}

/** A multipart message with `parts` leaf parts (absurd beyond the read parser's limit). */
export function manyPartsMail(parts: number, subject = 'Many parts'): string {
  const lines = [
    'From: <spammer@outside.example>',
    `Subject: ${subject}`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="p"',
    '',
  ]
  for (let i = 0; i < parts; i++) lines.push('--p', 'Content-Type: text/plain', '', `part ${i}`)
  lines.push('--p--', '')
  return lines.join('\r\n')
}
