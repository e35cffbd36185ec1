// Putting a composed message into the outbound queue: DKIM-sign it with its domain's active
// keys, give it its signed return path, store the bytes, and write the queue rows (message,
// one row per recipient, events) in one group-commit transaction. The API, system mail and
// forwarding all enqueue through here. Inbound forwarding needs the queue rows in the same
// transaction as its local deliveries, so the two halves are also exported: stageOutbound
// (signing, blob staged; no rows) and recordOutbound (the rows, inside a caller's transaction).
// Invariants:
// - When enqueue resolves, the signed bytes and every row are durable; a crash afterwards
//   loses nothing, and the worker will deliver it. A staged message that is not recorded is
//   discarded by whoever staged it (discardStaged).
// - Suppressed recipients are recorded with state `suppressed` and never reach the worker.
// - Test mail (r.test) is signed, stored and filed exactly as live mail; only its row's flag
//   and its events' payload.test differ, and the worker simulates its delivery.
// - A copy for the sender's Sent folder, when asked for and the mailbox's save_sent_copy is on,
//   is filed in the same transaction.

import { createPrivateKey } from 'node:crypto'
import type { Transaction } from 'kysely'
import { type DkimKey, dkimSign } from '../../mail/dkim-sign.ts'
import { parseMessage } from '../../mail/parse.ts'
import { makeReturnPath } from '../../mail/return-path.ts'
import { newId } from '../../store/ids.ts'
import type { Database } from '../../store/schema.ts'
import { fileMessage } from '../delivery/file-message.ts'
import { dkimSigningKeys } from '../domains/dkim.ts'
import type { OutboundContext } from './context.ts'
import { wantsNotice } from './dsn-policy.ts'
import { emailEvent } from './events.ts'
import { suppressedAmong } from './suppressions.ts'

export interface EnqueueRecipient {
  address: string
  type: 'to' | 'cc' | 'bcc'
  notify?: string[] | null
  orcpt?: string | null
}

export interface EnqueueRequest {
  org_id: string
  /** The verified domain the message is sent from (signing and return path); null for unsigned system mail. */
  domain: { id: string; name: string } | null
  mailbox_id: string | null
  api_key_id: string | null
  user_id: string | null
  origin: 'api' | 'batch' | 'system' | 'submission' | 'forward' | 'backup_mx'
  from_header: string
  subject: string
  /** Composed, unsigned, CRLF. */
  raw: Buffer
  message_id_header: string
  recipients: readonly EnqueueRecipient[]
  tags: Record<string, string>
  /** Epoch ms; null sends now. */
  scheduled_at: number | null
  /** For the API view: to, cc, bcc, reply_to as given. */
  headers_json: Record<string, unknown>
  /** File a copy in this mailbox's Sent folder (unless the mailbox's save_sent_copy is off). */
  sent_copy_mailbox: string | null
  /** What the Sent copy holds when it differs from what is sent (a tracked message's untracked form). */
  sent_copy_raw?: Buffer
  /**
   * Runs in the enqueue transaction after the rows are written, with whether a Sent copy was
   * filed (a sent draft leaves Drafts in the same commit) and the new email id (tracking rows
   * point at it); throwing undoes the whole enqueue.
   */
  alsoInTransaction?: (
    tx: Transaction<Database>,
    now: number,
    filedSentCopy: boolean,
    emailId: string,
  ) => Promise<void>
  system_mail_id?: string | null
  /** Envelope sender to use instead of a signed return path (a forward's SRS address, a backup MX's original sender, <>). */
  mail_from?: string
  actor: string
  /** Skip the suppression list (system mail: codes and resets must reach people). */
  ignoreSuppressions?: boolean
  /** A mail client's DSN request (RFC 3461) and SMTPUTF8 flag; notices are mailed to `to`. */
  dsn?: { ret: 'FULL' | 'HDRS' | null; envid: string | null; smtputf8: boolean; to: string } | null
  /** Sent with a test key: stored like live mail, delivery simulated (test-mode.ts). */
  test?: boolean
  /** REQUIRETLS (RFC 8689): only verified TLS to next hops offering REQUIRETLS (tls-policy.ts). */
  require_tls?: boolean
}

export interface Enqueued {
  id: string
  /** failed when every recipient was suppressed. */
  status: 'queued' | 'scheduled' | 'failed'
  suppressed: string[]
}

const KEY_TTL_MS = 60_000
const keyCache = new WeakMap<object, Map<string, { at: number; keys: DkimKey[] }>>()

/** The active signing keys of a domain, unsealed once a minute at most. */
export async function signingKeys(
  ctx: OutboundContext,
  domain: { id: string; name: string },
): Promise<DkimKey[]> {
  let cache = keyCache.get(ctx)
  if (!cache) {
    cache = new Map()
    keyCache.set(ctx, cache)
  }
  const now = ctx.clock.now()
  const hit = cache.get(domain.id)
  if (hit && now - hit.at < KEY_TTL_MS) return hit.keys
  const rows = await dkimSigningKeys(ctx.store.db, ctx.keyEncryptionKey, domain.id)
  const keys = rows.map((k) => ({
    domain: domain.name,
    selector: k.selector,
    algorithm: k.algorithm,
    // Parsed once per minute, not per message.
    privateKey: createPrivateKey(k.privatePem),
  }))
  cache.set(domain.id, { at: now, keys })
  return keys
}

/** A message signed and its bytes staged, waiting for recordOutbound in some transaction. */
export interface StagedOutbound {
  id: string
  request: EnqueueRequest
  now: number
  mailFrom: string
  staged: Awaited<ReturnType<OutboundContext['blobs']['stage']>>
  parsedCopy: Awaited<ReturnType<typeof parseMessage>> | null
  /** The Sent copy's own bytes, when they differ from the message's (sent_copy_raw). */
  copyStaged: Awaited<ReturnType<OutboundContext['blobs']['stage']>> | null
  due: number
  scheduled: boolean
  expiresAt: number
}

/** Signs the message and stages its bytes (fsynced, not yet visible); writes no rows. */
export async function stageOutbound(ctx: OutboundContext, r: EnqueueRequest): Promise<StagedOutbound> {
  const now = ctx.clock.now()
  const id = newId('eml', now)
  const signed = r.domain ? await dkimSign(r.raw, await signingKeys(ctx, r.domain), now) : r.raw
  const mailFrom = r.mail_from ?? (r.domain ? makeReturnPath(ctx.returnPathKey, id, r.domain.name) : '')
  const staged = await ctx.blobs.stage(r.org_id, signed)
  const copyRaw = r.sent_copy_mailbox ? (r.sent_copy_raw ?? signed) : null
  const parsedCopy = copyRaw ? await parseMessage(copyRaw) : null
  const copyStaged =
    r.sent_copy_mailbox && r.sent_copy_raw ? await ctx.blobs.stage(r.org_id, r.sent_copy_raw) : null
  const due = r.scheduled_at !== null && r.scheduled_at > now ? r.scheduled_at : now
  return {
    id,
    request: r,
    now,
    mailFrom,
    staged,
    parsedCopy,
    copyStaged,
    due,
    scheduled: due > now,
    expiresAt: due + ctx.settings.lifetimeMs,
  }
}

/** Forgets a staged message that will not be recorded (its transaction failed). */
export async function discardStaged(ctx: OutboundContext, s: StagedOutbound): Promise<void> {
  await ctx.blobs.discard(s.staged)
  if (s.copyStaged) await ctx.blobs.discard(s.copyStaged)
}

export async function enqueue(ctx: OutboundContext, r: EnqueueRequest): Promise<Enqueued> {
  const s = await stageOutbound(ctx, r)
  const result = await ctx.committer
    .run((tx) => recordOutbound(tx, ctx, s))
    .catch(async (err) => {
      await discardStaged(ctx, s)
      throw err
    })
  return { id: s.id, status: result.status, suppressed: result.suppressed }
}

/** The queue rows of a staged message, written in the caller's transaction. */
export async function recordOutbound(
  tx: Transaction<Database>,
  ctx: OutboundContext,
  s: StagedOutbound,
): Promise<Omit<Enqueued, 'id'>> {
  const { id, request: r, now, mailFrom, staged, parsedCopy, due, scheduled, expiresAt } = s
  const blob = await ctx.blobs.commitStaged(tx, staged)
  // An unfiled copy's blob stays unreferenced, and the blob collector removes it.
  const copyBlob = s.copyStaged ? await ctx.blobs.commitStaged(tx, s.copyStaged) : blob
  const suppressed = r.ignoreSuppressions
    ? new Set<string>()
    : await suppressedAmong(
        tx,
        r.org_id,
        r.recipients.map((x) => x.address),
      )
  const live = r.recipients.filter((x) => !suppressed.has(x.address.toLowerCase()))
  const status: Enqueued['status'] = live.length === 0 ? 'failed' : scheduled ? 'scheduled' : 'queued'
  await tx
    .insertInto('outbound_messages')
    .values({
      id,
      org_id: r.org_id,
      domain_id: r.domain?.id ?? null,
      mailbox_id: r.mailbox_id,
      api_key_id: r.api_key_id,
      user_id: r.user_id,
      mail_from: mailFrom,
      from_header: r.from_header,
      subject: r.subject.slice(0, 998),
      blob_sha256: blob.sha256,
      size: blob.size,
      status,
      idempotency_key: null,
      idempotency_hash: null,
      tags: JSON.stringify(r.tags),
      scheduled_at: scheduled ? due : null,
      next_attempt_at: live.length ? due : null,
      attempts: 0,
      lease_owner: null,
      lease_until: null,
      origin: r.origin,
      message_id_header: r.message_id_header,
      headers_json: JSON.stringify(r.headers_json),
      first_attempt_at: null,
      finished_at: live.length ? null : now,
      expires_at: expiresAt,
      delay_notified: 0,
      held_reason: null,
      system_mail_id: r.system_mail_id ?? null,
      dsn_ret: r.dsn?.ret ?? null,
      dsn_envid: r.dsn?.envid ?? null,
      smtputf8: r.dsn?.smtputf8 ? 1 : 0,
      dsn_to: r.dsn?.to ?? null,
      test: r.test ? 1 : 0,
      require_tls: r.require_tls ? 1 : 0,
      created_at: now,
      updated_at: now,
    })
    .execute()
  await ctx.blobs.addRef(tx, r.org_id, blob.sha256)
  await tx
    .insertInto('outbound_recipients')
    .values(
      r.recipients.map((x) => {
        const sup = suppressed.has(x.address.toLowerCase())
        return {
          id: newId('rcp', now),
          org_id: r.org_id,
          outbound_id: id,
          address: x.address,
          domain: (x.address.split('@').pop() as string).toLowerCase(),
          state: sup ? ('suppressed' as const) : ('queued' as const),
          attempts: 0,
          next_attempt_at: sup ? null : due,
          last_code: null,
          last_enhanced_code: null,
          last_response: sup ? 'the address is on the suppression list' : null,
          dsn_notify: x.notify?.join(',') ?? null,
          dsn_orcpt: x.orcpt ?? null,
          // A mail client's suppressed recipient is a failure it hears about (notices.ts).
          dsn_pending: sup && r.dsn && wantsNotice(x.notify?.join(',') ?? null, 'failure') ? 'failed' : null,
          type: x.type,
          delivered_at: null,
          remote_mta: null,
          created_at: now,
          updated_at: now,
        }
      }),
    )
    .execute()
  await emailEvent(tx, ctx.bus, now, {
    org_id: r.org_id,
    outbound_id: id,
    type: 'queued',
    actor: r.actor,
    test: r.test === true,
    data: {
      from: r.from_header,
      subject: r.subject.slice(0, 200),
      recipients: live.length,
      scheduled_at: scheduled ? new Date(due).toISOString() : null,
    },
  })
  for (const address of suppressed)
    await emailEvent(tx, ctx.bus, now, {
      org_id: r.org_id,
      outbound_id: id,
      type: 'suppressed',
      actor: r.actor,
      test: r.test === true,
      recipient: address,
    })
  const copy =
    r.sent_copy_mailbox && parsedCopy
      ? await tx
          .selectFrom('mailboxes')
          .select('save_sent_copy')
          .where('id', '=', r.sent_copy_mailbox)
          .where('org_id', '=', r.org_id)
          .executeTakeFirst()
      : undefined
  const fileCopy = copy !== undefined && Number(copy.save_sent_copy) === 1
  if (fileCopy && r.sent_copy_mailbox && parsedCopy)
    await fileMessage(
      tx,
      { blobs: ctx.blobs, bus: ctx.bus, dialect: ctx.store.dialect },
      {
        org_id: r.org_id,
        mailbox_id: r.sent_copy_mailbox,
        role: 'sent',
        blob: copyBlob,
        parsed: parsedCopy,
        now,
        auth_summary: null,
        envelope: null,
        keywords: ['\\Seen'],
        event: {
          type: 'email.filed',
          actor: r.actor,
          ip: null,
          payload: {
            mailbox_id: r.sent_copy_mailbox,
            folder: 'sent',
            email_id: id,
            ...(r.test ? { test: true } : {}),
          },
        },
      },
    )
  await r.alsoInTransaction?.(tx, now, fileCopy, id)
  return { status, suppressed: [...suppressed] }
}
