// Inbound delivery: what the MX asks at RCPT (may this address receive mail here?) and at the
// end of DATA (authenticate, file and store the message). Protocol-free: it answers with
// reasons, and smtp/mx-handler.ts turns them into reply codes.
// Invariants:
// - deliverInbound resolves `ok` only after the raw bytes are durable in the blob store and
//   every mailbox's rows are committed (group commit), and every forward and backup-MX relay
//   is queued in that same transaction: that is what a 250 may promise.
// - One blob per org for all of that org's recipients; one message row per mailbox.
// - Only verified, active domains receive mail (resolveRecipient). Outside alias targets are
//   forwarded through the queue (outbound/forward.ts) when forwarding is wired in, else the
//   alias is refused; a domain we are the backup MX of takes any local part for relaying.
// - Mail our checks refused (DMARC reject) is refused for every recipient; mail they send to
//   Junk (DMARC quarantine) is filed locally but never forwarded. A message that already
//   went through one of the forwarding aliases (Delivered-To) is refused as a loop.

import type { Resolver } from '../../dns/resolver.ts'
import type { Logger } from '../../log/logger.ts'
import { verifyMessage } from '../../mail/auth.ts'
import { countReceived, prependHeaders, stripOwnAuthResults } from '../../mail/headers.ts'
import { parseMessage } from '../../mail/parse.ts'
import type { BlobStore } from '../../store/blobs/blob-store.ts'
import type { ChangeBus } from '../../store/change-bus.ts'
import type { Store } from '../../store/db.ts'
import { newId } from '../../store/ids.ts'
import type { Clock } from '../../time/clock.ts'
import { resolveRecipient } from '../mailboxes/resolve.ts'
import {
  type Forwarding,
  ForwardLimitError,
  type ForwardTarget,
  type RelayTarget,
} from '../outbound/forward.ts'
import { fileMessage } from './file-message.ts'
import type { GroupCommitter } from './group-commit.ts'

export interface DeliverySettings {
  hostname: string
  authservId: string
  verifyAuth: boolean
  dmarcReject: boolean
  dmarcQuarantineToJunk: boolean
  /** Lower-case domains whose ARC seals lift a failed DMARC policy (smtp.arc_trusted_sealers); empty by default. */
  arcTrustedSealers?: readonly string[]
  /** More Received fields than this is a loop (RFC 5321 6.3). */
  maxReceived: number
}

export interface DeliveryContext {
  store: Store
  clock: Clock
  blobs: BlobStore
  bus: ChangeBus
  resolver: Resolver
  log: Logger
  committer: GroupCommitter
  settings: DeliverySettings
  /** Forwarding through the outbound queue; set by main.ts once the queue exists (absent: outside alias targets are refused). */
  forwarding?: Forwarding
}

export interface LocalTarget {
  org_id: string
  mailbox_id: string
  address: string
}

export type RefusalReason =
  | 'invalid'
  | 'not_hosted'
  | 'unknown_recipient'
  | 'mailbox_disabled'
  | 'quota_full'
  | 'tls_required'
  | 'external_target'
  | 'forward_limit'
  | 'forward_suppressed'

export type RecipientCheck =
  | { ok: true; targets: LocalTarget[]; forwards: ForwardTarget[]; relays: RelayTarget[] }
  | { ok: false; reason: RefusalReason; detail: string }

const MAX_ALIAS_DEPTH = 5

/** Decides one RCPT: the local mailboxes it reaches and where it is forwarded, or why it is refused. */
export async function checkRecipient(
  ctx: { store: Store; forwarding?: Forwarding },
  address: string,
  session: { tls: boolean },
  sizeHint: number | null,
): Promise<RecipientCheck> {
  const targets: LocalTarget[] = []
  const relays: RelayTarget[] = []
  const external = new Map<string, ForwardTarget>()
  const problems: { reason: RefusalReason; detail: string }[] = []
  type Via = { org_id: string; alias_id: string; domain_id: string; via: string }
  const forwardTo = (via: Via, addr: string) => {
    const f = external.get(via.alias_id) ?? {
      kind: 'alias' as const,
      org_id: via.org_id,
      domain_id: via.domain_id,
      domain: via.via.slice(via.via.lastIndexOf('@') + 1),
      alias_id: via.alias_id,
      via: via.via,
      to: [],
    }
    if (!f.to.includes(addr)) f.to.push(addr)
    external.set(via.alias_id, f)
  }
  const visit = async (addr: string, depth: number, via: Via | null): Promise<void> => {
    const r = await resolveRecipient(ctx.store, addr)
    if (r.kind === 'none') {
      if (via && r.reason === 'not_hosted') forwardTo(via, addr)
      else problems.push({ reason: r.reason, detail: `${addr}: ${r.reason.replace('_', ' ')}` })
      return
    }
    if (r.kind === 'backup') {
      // Through an alias, an address at a backup-MX domain is as outside as any other.
      if (via) forwardTo(via, r.address)
      else
        relays.push({
          org_id: r.org_id,
          domain_id: r.domain_id,
          domain: r.domain,
          address: r.address,
          notify: null,
          orcpt: null,
        })
      return
    }
    if (r.kind === 'alias') {
      if (depth >= MAX_ALIAS_DEPTH) {
        problems.push({ reason: 'unknown_recipient', detail: `${addr}: aliases nest too deeply` })
        return
      }
      // A catch-all (`@domain`) forwards as the address it caught.
      const here = r.address.startsWith('@') ? addr.toLowerCase() : r.address
      const next = { org_id: r.org_id, alias_id: r.alias_id, domain_id: r.domain_id, via: here }
      for (const t of r.targets) await visit(t, depth + 1, next)
      return
    }
    if (!r.active)
      return void problems.push({ reason: 'mailbox_disabled', detail: `${r.address} is disabled` })
    if (r.tls_enforce_in && !session.tls)
      return void problems.push({
        reason: 'tls_required',
        detail: `${r.address} accepts mail only over TLS; use STARTTLS`,
      })
    // The quota as read by the resolving statement.
    if (r.quota_bytes > 0 && r.used_bytes + (sizeHint ?? 0) >= r.quota_bytes)
      return void problems.push({ reason: 'quota_full', detail: `${r.address} is over its quota` })
    if (!targets.some((t) => t.mailbox_id === r.mailbox_id))
      targets.push({ org_id: r.org_id, mailbox_id: r.mailbox_id, address: r.address })
  }
  await visit(address, 0, null)
  const forwards: ForwardTarget[] = []
  if (external.size) {
    // An alias reaching an outside target it cannot forward to is refused as a whole:
    // accepting it would silently drop part of the delivery.
    if (!ctx.forwarding)
      return {
        ok: false,
        reason: 'external_target',
        detail: `${address} forwards outside this server, and forwarding is not available here`,
      }
    let suppressedOnly = false
    for (const f of external.values()) {
      const s = await ctx.forwarding.screen(f)
      if (!s.ok) return { ok: false, reason: s.reason, detail: s.detail }
      if (s.target) forwards.push(s.target)
      else suppressedOnly = true
    }
    if (suppressedOnly && forwards.length === 0 && targets.length === 0)
      return {
        ok: false,
        reason: 'forward_suppressed',
        detail: `${address} forwards only to addresses that refused mail before (suppressed)`,
      }
  }
  if (targets.length === 0 && forwards.length === 0 && relays.length === 0)
    return { ok: false, ...(problems[0] ?? { reason: 'unknown_recipient', detail: `${address}: no target` }) }
  return { ok: true, targets, forwards, relays }
}

export interface InboundMessage {
  raw: Buffer
  mailFrom: string
  /** DSN parameters of MAIL FROM (RFC 3461 4.3, 4.4), kept for delivery status notifications. */
  dsn?: { ret: 'FULL' | 'HDRS' | null; envid: string | null }
  /** MAIL FROM carried REQUIRETLS (RFC 8689 4.1): what is forwarded or relayed keeps it. */
  requireTls?: boolean
  recipients: { address: string; notify: string[] | null; orcpt: string | null }[]
  targets: LocalTarget[]
  /** Outside targets of the accepted recipients (aliases, SRS bounces), forwarded through the queue. */
  forwards?: ForwardTarget[]
  /** Recipients at domains we are the backup MX of, queued on to their real MX. */
  relays?: RelayTarget[]
  session: { id: string; ip: string; helo: string | null; tls: { protocol: string; cipher: string } | null }
}

export type DeliveryOutcome =
  | {
      ok: true
      queue_id: string
      stored: { mailbox_id: string; message_id: string; folder: 'inbox' | 'junk' }[]
      /** Queue ids of the forwards and relays made. */
      queued: string[]
    }
  | {
      ok: false
      reason: 'loop' | 'dmarc_reject' | 'forward_loop' | 'forward_limit' | 'not_forwarded'
      detail: string
    }

const rfc5322Date = (ms: number) => new Date(ms).toUTCString().replace(/GMT$/, '+0000')

export async function deliverInbound(ctx: DeliveryContext, m: InboundMessage): Promise<DeliveryOutcome> {
  const s = ctx.settings
  const received = countReceived(m.raw)
  if (received > s.maxReceived)
    return { ok: false, reason: 'loop', detail: `${received} Received header fields: a mail loop` }
  const stripped = stripOwnAuthResults(m.raw, s.authservId)
  let forwards = m.forwards ?? []
  const relays = m.relays ?? []
  const forwarding = ctx.forwarding
  if ((forwards.length || relays.length) && !forwarding)
    throw new Error('forwarding targets given, but this delivery context has no forwarding')
  const looped = forwarding?.loops(stripped, forwards)
  if (looped) return { ok: false, reason: 'forward_loop', detail: `mail forwarding loop for ${looped}` }
  let authHeaders = ''
  let summary: string | null = null
  let verdict: Awaited<ReturnType<typeof verifyMessage>> | null = null
  let junk = false
  if (s.verifyAuth) {
    try {
      const v = await verifyMessage(stripped, {
        ip: m.session.ip,
        helo: m.session.helo,
        mailFrom: m.mailFrom,
        authservId: s.authservId,
        resolver: ctx.resolver,
      })
      authHeaders = v.headers
      summary = v.summary
      verdict = v
      // RFC 8617 7.2: a valid ARC chain last sealed by a trusted intermediary (a forwarder or
      // list that broke SPF/DKIM alignment) overrides the DMARC policy; recorded in the summary.
      const enforced = v.dmarcFailPolicy === 'reject' || v.dmarcFailPolicy === 'quarantine'
      const sealer = enforced && v.arc === 'pass' ? v.arcSealer : null
      const trusted = sealer !== null && (s.arcTrustedSealers ?? []).includes(sealer)
      if (trusted) {
        ctx.log.info({ cid: m.session.id, sealer }, 'DMARC policy not applied: trusted ARC sealer')
        summary = `${summary} (trusted sealer ${sealer}; dmarc policy ${v.dmarcFailPolicy} not applied)`
      } else if (v.dmarcFailPolicy === 'reject' && s.dmarcReject)
        return {
          ok: false,
          reason: 'dmarc_reject',
          detail: 'the message fails DMARC and its domain asks receivers to reject it',
        }
      junk = !trusted && v.dmarcFailPolicy === 'quarantine' && s.dmarcQuarantineToJunk
    } catch (err) {
      ctx.log.warn({ err, cid: m.session.id }, 'authentication checks failed; delivering without them')
      summary = 'temperror'
    }
  }
  const now = ctx.clock.now()
  const queueId = newId('msg', now).slice(4, 18)
  const forClause = m.recipients.length === 1 ? `\r\n\tfor <${m.recipients[0]?.address}>` : ''
  const receivedField =
    `Received: from ${m.session.helo ?? 'unknown'} ([${m.session.ip}])\r\n\tby ${s.hostname} (Postern) with ${m.session.tls ? 'ESMTPS' : 'ESMTP'} id ${queueId}` +
    `${m.session.tls ? `\r\n\t(using ${m.session.tls.protocol} with cipher ${m.session.tls.cipher})` : ''}${forClause};\r\n\t${rfc5322Date(now)}`
  const fields = [receivedField, ...(authHeaders ? [authHeaders.replace(/\r?\n$/, '')] : [])]
  const message = prependHeaders(stripped, fields)
  const parsed = await parseMessage(message)
  if (junk && forwards.length) {
    // What our checks send to Junk is kept here, never passed on to someone else's inbox.
    ctx.log.info(
      { cid: m.session.id, forwards: forwards.map((f) => f.via) },
      'not forwarding mail that fails DMARC (quarantine)',
    )
    forwards = []
    if (m.targets.length === 0 && relays.length === 0)
      return {
        ok: false,
        reason: 'not_forwarded',
        detail: 'the message fails DMARC and its domain asks for quarantine; it is not forwarded',
      }
  }
  const prepared =
    forwarding && (forwards.length || relays.length)
      ? await forwarding.stage({
          message,
          mailFrom: m.mailFrom,
          verdict,
          parsed,
          forwards,
          relays,
          requireTls: m.requireTls === true,
        })
      : []

  // The bytes first, fsynced per org; they become visible (rename, directory fsync) inside the
  // same group-commit transaction that records the rows, so one commit covers both.
  const orgs = [...new Set(m.targets.map((t) => t.org_id))]
  const staged = new Map(
    await Promise.all(orgs.map(async (org) => [org, await ctx.blobs.stage(org, message)] as const)),
  )
  const envelope = JSON.stringify({
    mail_from: m.mailFrom,
    ret: m.dsn?.ret ?? null,
    envid: m.dsn?.envid ?? null,
    recipients: m.recipients,
    helo: m.session.helo,
    client_ip: m.session.ip,
    tls: m.session.tls,
    session: m.session.id,
  })
  const fileDeps = { blobs: ctx.blobs, bus: ctx.bus, dialect: ctx.store.dialect }
  const stored = await ctx.committer
    .run(async (tx) => {
      const out: { mailbox_id: string; message_id: string; folder: 'inbox' | 'junk' }[] = []
      const blobs = new Map<string, { sha256: string; size: number }>()
      // Each org's blob row gets its references (one per mailbox) in the statement that records it.
      for (const [org, s] of staged) {
        const refs = m.targets.filter((t) => t.org_id === org).length
        blobs.set(org, await ctx.blobs.commitStaged(tx, s, refs))
      }
      for (const t of m.targets) {
        const blob = blobs.get(t.org_id) as { sha256: string; size: number }
        const role = junk ? 'junk' : 'inbox'
        const id = await fileMessage(tx, fileDeps, {
          org_id: t.org_id,
          mailbox_id: t.mailbox_id,
          role,
          blob,
          blob_ref_counted: true,
          parsed,
          now,
          auth_summary: summary,
          envelope,
          event: {
            type: 'email.received',
            actor: 'smtp',
            ip: m.session.ip,
            payload: {
              mailbox_id: t.mailbox_id,
              folder: role,
              from: parsed.from?.address ?? null,
              subject: parsed.subject.slice(0, 200),
              size: blob.size,
              auth: summary,
            },
          },
        })
        out.push({ mailbox_id: t.mailbox_id, message_id: id, folder: role })
      }
      const queued = forwarding && prepared.length ? await forwarding.record(tx, prepared) : []
      return { out, queued }
    })
    .catch(async (err) => {
      for (const s of staged.values()) await ctx.blobs.discard(s)
      if (forwarding) await forwarding.discard(prepared)
      if (err instanceof ForwardLimitError) return null
      throw err
    })
  if (!stored)
    return {
      ok: false,
      reason: 'forward_limit',
      detail: 'an alias of this message is over its hourly forwarding cap',
    }
  if (stored.queued.length) forwarding?.queued()
  return { ok: true, queue_id: queueId, stored: stored.out, queued: stored.queued }
}
