// Webhook endpoints of an org (scope admin): create, list, read, update, delete, verify,
// resend the verification challenge, rotate the secret.
// Invariants:
// - Every query is scoped by the caller's org; another org's id is WEBHOOK_NOT_FOUND.
// - An endpoint gets traffic only while `active`, which it becomes only by answering a
//   challenge (verification.ts): on creation, after a URL change and after re-enabling.
// - The secret is shown once, on create and on rotate; it is stored sealed. After a rotation
//   the previous secret keeps signing (a second signature) for webhooks.secret_grace_hours.
// - A URL whose host is an IP literal the connect guard refuses is refused here (422); host
//   names are checked at each delivery, on the addresses they resolve to.

import { isIP } from 'node:net'
import { newId } from '../../store/ids.ts'
import type { Webhook } from '../../store/schema.ts'
import type { Principal } from '../accounts/principal.ts'
import { ServiceError } from '../errors.ts'
import { typesOf } from '../events/list.ts'
import { writeEvent } from '../events/write.ts'
import { decodeCursor, olderThan, type Page, pageOf, pageSize } from '../messages/cursor.ts'
import type { WebhooksContext } from './context.ts'
import { parseFilter } from './outbox.ts'
import { newSecret, sealSecret } from './signing.ts'
import { type ChallengeResult, challengeHash, newChallenge, sameHash, sendChallenge } from './verification.ts'

export interface WebhookView {
  id: string
  url: string
  description: string
  event_types: string[]
  status: Webhook['status']
  verified_at: string | null
  /** While set, the previous secret still signs (a second signature). */
  old_secret_until: string | null
  failing_since: string | null
  consecutive_failures: number
  disabled_at: string | null
  disabled_reason: string | null
  created_at: string
  updated_at: string
}

export interface WebhookWithSecret {
  webhook: WebhookView
  /** Shown once. */
  secret: string
  verification: ChallengeResult
}

export interface VerifyResult {
  webhook: WebhookView
  verification: ChallengeResult
}

const iso = (t: number | null) => (t === null ? null : new Date(Number(t)).toISOString())

export function webhookView(w: Webhook): WebhookView {
  return {
    id: w.id,
    url: w.url,
    description: w.description,
    event_types: parseFilter(w.event_types),
    status: w.status,
    verified_at: iso(w.verified_at),
    old_secret_until: iso(w.old_secret_until),
    failing_since: iso(w.failing_since),
    consecutive_failures: Number(w.consecutive_failures),
    disabled_at: iso(w.disabled_at),
    disabled_reason: w.disabled_reason,
    created_at: iso(w.created_at) as string,
    updated_at: iso(w.updated_at) as string,
  }
}

const actorOf = (p: Principal) => p.key_id ?? p.user_id

const invalid = (field: string, message: string, code: string) =>
  new ServiceError('invalid', code, message, { details: [{ field: `body.${field}`, message }] })

/** Checks a webhook URL: http(s), no credentials, and an IP literal host only if the guard allows it. */
export function checkUrl(ctx: Pick<WebhooksContext, 'allows'>, raw: string): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw invalid('url', 'is not an absolute URL', 'INVALID_WEBHOOK_URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalid('url', 'must be an http or https URL', 'INVALID_WEBHOOK_URL')
  if (url.username || url.password)
    throw invalid('url', 'must not carry a user name or password', 'INVALID_WEBHOOK_URL')
  url.hash = ''
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (isIP(host) && !ctx.allows(host))
    throw invalid(
      'url',
      `${host} is a private, loopback, link-local or reserved address not listed in net.connect_allow`,
      'WEBHOOK_URL_REFUSED',
    )
  return url.toString()
}

function checkTypes(types: readonly string[] | undefined): string[] {
  if (!types) return []
  const out: string[] = []
  for (const t of types) {
    try {
      typesOf(t, 'event_types')
    } catch {
      throw invalid('event_types', `names no event type: '${t}'`, 'INVALID_EVENT_TYPE')
    }
    if (!out.includes(t)) out.push(t)
  }
  return out
}

async function findWebhook(ctx: WebhooksContext, p: Principal, id: string): Promise<Webhook> {
  const w = await ctx.store.db
    .selectFrom('webhooks')
    .selectAll()
    .where('org_id', '=', p.org_id)
    .where('id', '=', id)
    .executeTakeFirst()
  if (!w) throw new ServiceError('not_found', 'WEBHOOK_NOT_FOUND', `No webhook ${id} in this organisation.`)
  return w
}

/** Mints a challenge for `hook` (pending), sends it, and activates the endpoint if it was echoed. */
async function challenge(ctx: WebhooksContext, p: Principal, hook: Webhook): Promise<VerifyResult> {
  const now = ctx.clock.now()
  const code = newChallenge()
  await ctx.store.db
    .updateTable('webhooks')
    .set({ challenge_hash: challengeHash(code), challenge_expires_at: now + ctx.settings.challengeMs })
    .where('id', '=', hook.id)
    .execute()
  const verification = await sendChallenge(ctx, hook, code)
  if (verification.ok) await activate(ctx, p, hook.id, 'challenge echoed')
  return { webhook: webhookView(await findWebhook(ctx, p, hook.id)), verification }
}

async function activate(ctx: WebhooksContext, p: Principal, id: string, how: string): Promise<void> {
  const now = ctx.clock.now()
  await ctx.store.db.transaction().execute(async (tx) => {
    const r = await tx
      .updateTable('webhooks')
      .set({
        status: 'active',
        verified_at: now,
        challenge_hash: null,
        challenge_expires_at: null,
        failing_since: null,
        consecutive_failures: 0,
        disabled_at: null,
        disabled_reason: null,
        updated_at: now,
      })
      .where('id', '=', id)
      .where('org_id', '=', p.org_id)
      .where('status', '=', 'pending')
      .executeTakeFirst()
    if (Number(r.numUpdatedRows) === 0) return
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'webhook.verified',
      actor: actorOf(p),
      ip: null,
      subject_id: id,
      payload: { webhook_id: id, how },
    })
  })
}

export interface CreateWebhookInput {
  url: string
  event_types?: string[]
  description?: string
}

export async function createWebhook(
  ctx: WebhooksContext,
  p: Principal,
  input: CreateWebhookInput,
): Promise<WebhookWithSecret> {
  const url = checkUrl(ctx, input.url)
  const types = checkTypes(input.event_types)
  const now = ctx.clock.now()
  const id = newId('whk', now)
  const secret = newSecret()
  await ctx.store.db.transaction().execute(async (tx) => {
    await tx
      .insertInto('webhooks')
      .values({
        id,
        org_id: p.org_id,
        url,
        description: input.description ?? '',
        event_types: JSON.stringify(types),
        status: 'pending',
        secret_enc: sealSecret(ctx.keyEncryptionKey, id, secret),
        old_secret_enc: null,
        old_secret_until: null,
        challenge_hash: null,
        challenge_expires_at: null,
        verified_at: null,
        failing_since: null,
        disabled_at: null,
        disabled_reason: null,
        created_at: now,
        updated_at: now,
      })
      .execute()
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'webhook.created',
      actor: actorOf(p),
      ip: null,
      subject_id: id,
      payload: { webhook_id: id, url, event_types: types },
    })
  })
  const r = await challenge(ctx, p, await findWebhook(ctx, p, id))
  return { webhook: r.webhook, secret, verification: r.verification }
}

export async function listWebhooks(
  ctx: WebhooksContext,
  p: Principal,
  q: { limit?: number; cursor?: string },
): Promise<Page<WebhookView>> {
  const after = decodeCursor(q.cursor)
  const limit = pageSize(q.limit)
  let query = ctx.store.db.selectFrom('webhooks').selectAll().where('org_id', '=', p.org_id)
  if (after) query = query.where(olderThan(after, 'created_at', 'id'))
  const rows = await query
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute()
  const { page, next_cursor } = pageOf(rows, limit)
  return {
    data: page.map(webhookView),
    next_cursor,
  }
}

export async function getWebhook(ctx: WebhooksContext, p: Principal, id: string): Promise<WebhookView> {
  return webhookView(await findWebhook(ctx, p, id))
}

export interface UpdateWebhookInput {
  url?: string
  event_types?: string[]
  description?: string
  /** false disables the endpoint; true re-enables it (pending until it answers a new challenge). */
  enabled?: boolean
}

export async function updateWebhook(
  ctx: WebhooksContext,
  p: Principal,
  id: string,
  input: UpdateWebhookInput,
): Promise<VerifyResult | { webhook: WebhookView; verification: null }> {
  const hook = await findWebhook(ctx, p, id)
  const now = ctx.clock.now()
  const url = input.url === undefined ? hook.url : checkUrl(ctx, input.url)
  const set: Partial<Webhook> = { updated_at: now }
  if (input.url !== undefined) set.url = url
  if (input.event_types !== undefined) set.event_types = JSON.stringify(checkTypes(input.event_types))
  if (input.description !== undefined) set.description = input.description
  let rechallenge = false
  if (input.enabled === false && hook.status !== 'disabled') {
    Object.assign(set, { status: 'disabled', disabled_at: now, disabled_reason: 'disabled by an admin' })
  } else if (input.enabled === true && hook.status === 'disabled') {
    Object.assign(set, { status: 'pending', disabled_at: null, disabled_reason: null })
    rechallenge = true
  }
  if (url !== hook.url && (set.status ?? hook.status) !== 'disabled') {
    set.status = 'pending'
    rechallenge = true
  }
  await ctx.store.db.transaction().execute(async (tx) => {
    await tx.updateTable('webhooks').set(set).where('id', '=', id).where('org_id', '=', p.org_id).execute()
    const disabled = set.status === 'disabled'
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: disabled ? 'webhook.disabled' : 'webhook.updated',
      actor: actorOf(p),
      ip: null,
      subject_id: id,
      payload: disabled
        ? { webhook_id: id, reason: 'disabled by an admin' }
        : { webhook_id: id, fields: Object.keys(input), status: set.status ?? hook.status },
    })
  })
  const fresh = await findWebhook(ctx, p, id)
  if (rechallenge) return challenge(ctx, p, fresh)
  return { webhook: webhookView(fresh), verification: null }
}

export async function deleteWebhook(ctx: WebhooksContext, p: Principal, id: string): Promise<void> {
  await findWebhook(ctx, p, id)
  const now = ctx.clock.now()
  await ctx.store.db.transaction().execute(async (tx) => {
    await tx
      .deleteFrom('webhook_attempts')
      .where('delivery_id', 'in', (eb) =>
        eb
          .selectFrom('webhook_deliveries')
          .select('id')
          .where('webhook_id', '=', id)
          .where('org_id', '=', p.org_id),
      )
      .execute()
    await tx
      .deleteFrom('webhook_deliveries')
      .where('webhook_id', '=', id)
      .where('org_id', '=', p.org_id)
      .execute()
    await tx.deleteFrom('webhooks').where('id', '=', id).where('org_id', '=', p.org_id).execute()
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'webhook.deleted',
      actor: actorOf(p),
      ip: null,
      subject_id: id,
      payload: { webhook_id: id },
    })
  })
}

/**
 * Verifies an endpoint: with `challenge`, accepts the outstanding challenge the receiver was
 * sent (pending endpoints); without, sends a challenge now and accepts an inline echo.
 */
export async function verifyWebhook(
  ctx: WebhooksContext,
  p: Principal,
  id: string,
  input: { challenge?: string },
): Promise<VerifyResult> {
  const hook = await findWebhook(ctx, p, id)
  if (hook.status === 'disabled')
    throw new ServiceError(
      'conflict',
      'WEBHOOK_DISABLED',
      'The webhook is disabled; enable it first (PATCH enabled).',
    )
  if (input.challenge === undefined) return challenge(ctx, p, hook)
  const now = ctx.clock.now()
  const valid =
    hook.status === 'pending' &&
    hook.challenge_hash !== null &&
    hook.challenge_expires_at !== null &&
    Number(hook.challenge_expires_at) > now &&
    sameHash(hook.challenge_hash, challengeHash(input.challenge))
  if (!valid)
    throw new ServiceError(
      'invalid',
      'INVALID_CHALLENGE',
      'That is not the outstanding challenge of this webhook (or it expired): resend the verification.',
      { details: [{ field: 'body.challenge', message: 'does not match' }] },
    )
  await activate(ctx, p, id, 'challenge posted back')
  return {
    webhook: webhookView(await findWebhook(ctx, p, id)),
    verification: { ok: true, status_code: null, error: null },
  }
}

/** Sends a fresh challenge to a pending endpoint (the previous one stops being valid). */
export async function resendVerification(
  ctx: WebhooksContext,
  p: Principal,
  id: string,
): Promise<VerifyResult> {
  const hook = await findWebhook(ctx, p, id)
  if (hook.status !== 'pending')
    throw new ServiceError(
      'conflict',
      hook.status === 'active' ? 'WEBHOOK_ALREADY_VERIFIED' : 'WEBHOOK_DISABLED',
      hook.status === 'active'
        ? 'The webhook is already verified.'
        : 'The webhook is disabled; enable it first (PATCH enabled).',
    )
  return challenge(ctx, p, hook)
}

export async function rotateSecret(
  ctx: WebhooksContext,
  p: Principal,
  id: string,
): Promise<{ webhook: WebhookView; secret: string }> {
  const hook = await findWebhook(ctx, p, id)
  const now = ctx.clock.now()
  const secret = newSecret()
  const until = now + ctx.settings.secretGraceMs
  await ctx.store.db.transaction().execute(async (tx) => {
    await tx
      .updateTable('webhooks')
      .set({
        secret_enc: sealSecret(ctx.keyEncryptionKey, id, secret),
        old_secret_enc: ctx.settings.secretGraceMs > 0 ? hook.secret_enc : null,
        old_secret_until: ctx.settings.secretGraceMs > 0 ? until : null,
        updated_at: now,
      })
      .where('id', '=', id)
      .where('org_id', '=', p.org_id)
      .execute()
    await writeEvent(tx, now, {
      org_id: p.org_id,
      type: 'webhook.secret_rotated',
      actor: actorOf(p),
      ip: null,
      subject_id: id,
      payload: { webhook_id: id, old_secret_until: new Date(until).toISOString() },
    })
  })
  return { webhook: webhookView(await findWebhook(ctx, p, id)), secret }
}

export { findWebhook }
