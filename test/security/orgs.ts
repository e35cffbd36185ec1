// Shared by the security tests: organisations fully populated through the API (owner session,
// admin and send keys, an invited user, a mailbox with an app password), people who claimed an
// invitation, and a reading of /v1/openapi.json (every operation, the scope it requires, a
// minimal body its schema accepts) so the tests cover each route without listing them.

import assert from 'node:assert/strict'
import { upload } from '../attachments/helpers.ts'
import { verifiedDomain } from '../domains/helpers.ts'
import { Api, type ApiResponse } from '../helpers/api.ts'
import type { TestServer } from '../helpers/server.ts'
import { deliver, textMail } from '../messages/fixtures.ts'
import { startReceiver } from '../webhooks/receiver.ts'

export const PASSWORD = 'correct-horse-battery-9'

/** Asserts the status, showing the request and the body when it differs. */
export function expectStatus<T>(res: ApiResponse<T>, status: number, what: string): ApiResponse<T> {
  assert.equal(res.status, status, `${what}: expected ${status}, got ${res.status}: ${res.text}`)
  return res
}

export interface Org {
  tag: string
  /** Signed in as the owner (session cookie). */
  api: Api
  orgId: string
  ownerId: string
  ownerEmail: string
  /** The owner's current session. */
  sessionId: string
  adminKey: string
  adminKeyId: string
  sendKey: string
  sendKeyId: string
  invitedUserId: string
  invitedEmail: string
  domainId: string
  domainName: string
  mailboxId: string
  mailboxAddress: string
  /** The mailbox-scoped key returned when the mailbox was made. */
  mailboxKey: string
  mailboxKeyId: string
  aliasId: string
  appPasswordId: string
  /** A message delivered to the mailbox, its thread, and a label (role-less folder) of the mailbox. */
  messageId: string
  threadId: string
  labelId: string
  /** A scheduled outbound email (an hour ahead, so it stays queued) and a suppression. */
  emailId: string
  suppressionId: string
  suppressedAddress: string
  /** An upload made with the mailbox key, and a draft of the mailbox carrying it. */
  attachmentId: string
  draftId: string
  /** The warm-up ramp of the alias (made by POST /v1/aliases/{id}/warmup-token) and its token. */
  warmupId: string
  warmupToken: string
  /** A verified webhook endpoint and a (test) delivery to it. */
  webhookId: string
  deliveryId: string
}

/**
 * A new organisation: the first one through POST /v1/setup, later ones through sign-up (the
 * server needs POSTERN_AUTH_SIGNUP=open). `tag` keeps names and addresses distinct.
 */
export async function createOrg(s: TestServer, tag: string, via: 'setup' | 'signup'): Promise<Org> {
  const api = new Api(s.url)
  const ownerEmail = `owner-${tag}@${tag}.example`
  const org_name = `Org ${tag.toUpperCase()}`
  const signedIn =
    via === 'setup'
      ? await api.post('/v1/setup', {
          setup_token: s.postern.setupToken,
          org_name,
          email: ownerEmail,
          password: PASSWORD,
          name: `Owner ${tag}`,
        })
      : await api.post('/v1/auth/signup', { email: ownerEmail, password: PASSWORD, org_name })
  expectStatus(signedIn, 201, `${via} of org ${tag}`)
  assert.ok(api.cookie, `${via} of org ${tag} set no session cookie`)
  const orgId: string = signedIn.body.org.id
  const ownerId: string = signedIn.body.user.id

  const admin = expectStatus(
    await api.post('/v1/api-keys', { name: `admin ${tag}`, scope: 'admin' }),
    201,
    'create admin key',
  ).body
  const send = expectStatus(
    await api.post('/v1/api-keys', { name: `send ${tag}`, scope: 'send' }),
    201,
    'create send key',
  ).body

  const invitedEmail = `invited-${tag}@${tag}.example`
  const invited = expectStatus(
    await api.post('/v1/users/invite', { email: invitedEmail, role: 'member' }),
    201,
    'invite a member',
  ).body

  const domainName = `${tag}.postern.test`
  // Verified (its records published in the test DNS), so the org may send from it.
  const domainId = (await verifiedDomain(api, s.dns, domainName)).id
  const created = expectStatus(
    await api.post('/v1/mailboxes', { domain: domainName, local_part: 'team', owner_user_id: ownerId }),
    201,
    'create a mailbox',
  ).body
  const mailboxId: string = created.mailbox.id
  const mailboxAddress: string = created.mailbox.address
  const alias = expectStatus(
    await api.post('/v1/aliases', { address: `sales@${domainName}`, targets: [mailboxAddress] }),
    201,
    'create an alias',
  ).body
  const appPassword = expectStatus(
    await api.post('/v1/me/app-passwords', { name: `phone ${tag}`, mailbox_id: mailboxId }),
    201,
    'create an app password',
  ).body

  const label = expectStatus(
    await api.post(`/v1/labels?mailbox=${mailboxId}`, { name: `label-${tag}` }),
    201,
    'create a label',
  ).body
  const messageId = await deliver(
    s,
    { org_id: orgId, mailbox_id: mailboxId, address: mailboxAddress },
    textMail({ subject: `Mail of org ${tag}`, to: mailboxAddress }),
  )
  const message = expectStatus(await api.get(`/v1/messages/${messageId}`), 200, 'read the message').body

  const email = expectStatus(
    await api.withKey(send.key).post('/v1/emails', {
      from: mailboxAddress,
      to: `someone@${tag}-partner.example`,
      subject: `Outbound of org ${tag}`,
      text: 'hello',
      scheduled_at: new Date(Date.now() + 3_600_000).toISOString(),
    }),
    202,
    'send an email',
  ).body
  const suppressedAddress = `blocked-${tag}@${tag}-partner.example`
  const suppression = expectStatus(
    await api.post('/v1/suppressions', { address: suppressedAddress }),
    201,
    'add a suppression',
  ).body

  const uploaded = await upload(s.url, created.api_key.key, [
    { name: `file-${tag}.txt`, bytes: Buffer.from(`a file of org ${tag}`), type: 'text/plain' },
  ])
  assert.equal(uploaded.status, 201, `upload an attachment: ${JSON.stringify(uploaded.body)}`)
  const draft = expectStatus(
    await api.withKey(created.api_key.key).post('/v1/drafts', {
      to: `someone@${tag}-partner.example`,
      subject: `Draft of org ${tag}`,
      text: 'not sent yet',
      attachments: [uploaded.body.id],
    }),
    201,
    'save a draft',
  ).body

  const warmup = expectStatus(
    await api.post(`/v1/aliases/${alias.id}/warmup-token`),
    201,
    'start a warm-up ramp for the alias',
  ).body

  // The receiver answers the challenge, then goes away: the test delivery stays in the log.
  const receiver = await startReceiver()
  const webhook = expectStatus(
    await api.post('/v1/webhooks', { url: receiver.url, description: `hook ${tag}` }),
    201,
    'add a webhook',
  ).body.webhook
  assert.equal(webhook.status, 'active')
  await receiver.close()
  const delivery = expectStatus(
    await api.post(`/v1/webhooks/${webhook.id}/test`),
    202,
    'test the webhook',
  ).body

  // The invitation mail Postern sent to the invited member (and the sign-up code) bounces
  // (its test domain has no MX) on the queue's time: wait for that here, so later counts
  // (analytics) move only with what a test does.
  await queueSettled(s, orgId)

  const sessions = expectStatus(await api.get('/v1/me/sessions'), 200, 'list sessions').body
  const current = (sessions.data as { id: string; current: boolean }[]).find((x) => x.current)
  assert.ok(current, `no current session in ${JSON.stringify(sessions)}`)

  return {
    tag,
    api,
    orgId,
    ownerId,
    ownerEmail,
    sessionId: current.id,
    adminKey: admin.key,
    adminKeyId: admin.id,
    sendKey: send.key,
    sendKeyId: send.id,
    invitedUserId: invited.id,
    invitedEmail,
    domainId,
    domainName,
    mailboxId,
    mailboxAddress,
    mailboxKey: created.api_key.key,
    mailboxKeyId: created.api_key.id,
    aliasId: alias.id,
    appPasswordId: appPassword.id,
    messageId,
    threadId: message.thread_id,
    labelId: label.id,
    emailId: email.id,
    suppressionId: suppression.id,
    suppressedAddress,
    attachmentId: uploaded.body.id,
    draftId: draft.id,
    warmupId: warmup.id,
    warmupToken: warmup.token,
    webhookId: webhook.id,
    deliveryId: delivery.id,
  }
}

/** Waits until none of the org's mail is on its way (scheduled mail stays scheduled). */
async function queueSettled(s: TestServer, orgId: string, ms = 30_000): Promise<void> {
  const until = Date.now() + ms
  for (;;) {
    const moving = await s.postern.store.db
      .selectFrom('outbound_messages')
      .select('id')
      .where('org_id', '=', orgId)
      .where('status', 'in', ['queued', 'sending'])
      .execute()
    if (moving.length === 0) return
    assert.ok(
      Date.now() < until,
      `org ${orgId}'s queue did not settle: ${moving.map((m) => m.id).join(', ')}`,
    )
    await new Promise((res) => setTimeout(res, 50))
  }
}

/** Invites `email` with `role` as `inviter`, claims the invitation: a signed-in client and the user id. */
export async function inviteAndClaim(
  s: TestServer,
  inviter: Api,
  email: string,
  role: 'admin' | 'member',
): Promise<{ api: Api; userId: string }> {
  const user = expectStatus(
    await inviter.post('/v1/users/invite', { email, role }),
    201,
    `invite ${email}`,
  ).body
  const mail = await s.postern.store.db
    .selectFrom('system_mail')
    .select('text')
    .where('kind', '=', 'invite')
    .where('to_address', '=', email)
    .executeTakeFirstOrThrow()
  const token = /pst_invite_[A-Za-z0-9_-]+/.exec(mail.text)?.[0]
  assert.ok(token, `no invitation token in ${mail.text}`)
  const api = new Api(s.url)
  expectStatus(await api.post('/v1/auth/claim', { token, password: PASSWORD }), 200, `claim ${email}`)
  assert.ok(api.cookie, 'claiming set no session cookie')
  return { api, userId: user.id }
}

// --- The OpenAPI document -------------------------------------------------------------------

export interface JsonSchema {
  type?: string | string[]
  const?: unknown
  enum?: unknown[]
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
  allOf?: JsonSchema[]
  properties?: Record<string, JsonSchema>
  required?: string[]
  minLength?: number
  minimum?: number
  minItems?: number
  items?: JsonSchema
  format?: string
}

interface OpenApiOperation {
  description?: string
  security?: unknown[]
  parameters?: { in: string; name: string; required?: boolean; schema?: JsonSchema }[]
  requestBody?: { required?: boolean; content?: Record<string, { schema?: JsonSchema }> }
}

export interface OpenApiDoc {
  paths: Record<string, Record<string, OpenApiOperation>>
}

export interface Operation {
  method: string
  /** The path template, e.g. /v1/users/{id}. */
  path: string
  /** The scope the route requires, or 'public'. */
  scope: string
  secured: boolean
  /** Names of the path parameters, in order. */
  params: string[]
  /** A minimal body the route's schema accepts, or undefined when it takes none. */
  body: unknown
}

const METHODS = new Set(['get', 'put', 'post', 'patch', 'delete'])

export async function fetchOperations(url: string): Promise<Operation[]> {
  const res = await fetch(`${url}/v1/openapi.json`)
  assert.equal(res.status, 200)
  const doc = (await res.json()) as OpenApiDoc
  const ops: Operation[] = []
  for (const [path, item] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.has(method)) continue
      const secured = Array.isArray(op.security) && op.security.length > 0
      const scope = /Requires scope `(\w+)`/.exec(op.description ?? '')?.[1]
      assert.equal(
        secured,
        scope !== undefined,
        `${method.toUpperCase()} ${path}: security and the "Requires scope" note must come together`,
      )
      const schema = op.requestBody?.content?.['application/json']?.schema
      ops.push({
        method: method.toUpperCase(),
        path,
        scope: scope ?? 'public',
        secured,
        params: [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string),
        body: schema ? sampleOf(schema) : undefined,
      })
    }
  assert.ok(ops.length > 0, 'the OpenAPI document lists no operations')
  return ops
}

/** Whether an API key can ever satisfy a route's scope (user and owner need a person). */
export const keyMayCall = (scope: string) => scope !== 'user' && scope !== 'owner'

/** A minimal value a JSON schema accepts: required properties only, shortest strings. */
export function sampleOf(schema: JsonSchema): unknown {
  if (schema.const !== undefined) return schema.const
  if (schema.enum) return schema.enum[0]
  const alt = schema.anyOf ?? schema.oneOf
  if (alt?.[0]) return sampleOf(alt[0])
  if (schema.allOf) {
    const parts = schema.allOf.map(sampleOf)
    return parts.every((p) => typeof p === 'object' && p !== null) ? Object.assign({}, ...parts) : parts[0]
  }
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {}
      for (const k of schema.required ?? []) out[k] = sampleOf(schema.properties?.[k] ?? {})
      return out
    }
    case 'array':
      return Array.from({ length: schema.minItems ?? 0 }, () => sampleOf(schema.items ?? {}))
    case 'string':
      if (schema.format === 'date-time') return new Date(Date.now() + 86_400_000).toISOString()
      if (schema.format === 'email') return 'someone@example.com'
      return 'x'.repeat(Math.max(schema.minLength ?? 1, 1))
    case 'integer':
    case 'number':
      return schema.minimum ?? 1
    case 'boolean':
      return false
    case 'null':
      return null
    default:
      return {}
  }
}

/** The path with each {param} replaced. */
export function fillPath(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const v = values[name]
    assert.ok(v !== undefined, `no value for {${name}} in ${template}`)
    return encodeURIComponent(v)
  })
}

/** Asserts an RFC 9457 problem with this status (and code). */
export function assertProblem(res: ApiResponse, status: number, code: string | null, what: string): void {
  assert.equal(
    res.status,
    status,
    `${what}: expected ${status}${code ? ` ${code}` : ''}, got ${res.status}: ${res.text}`,
  )
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, `${what}: content type`)
  assert.equal(res.body?.status, status, `${what}: problem status`)
  if (code) assert.equal(res.body?.code, code, `${what}: expected code ${code}: ${res.text}`)
}
