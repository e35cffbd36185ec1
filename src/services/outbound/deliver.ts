// One delivery attempt of one queued message: its due recipients grouped by destination
// domain; each group delivered locally (a domain hosted here), through the smart host, or to
// the domain's MX hosts in preference order; every outcome recorded as it is known.
// Invariants:
// - Outcomes of a group are committed as soon as that group's transaction ends, so a crash
//   later in the attempt never sends a recorded 250 again.
// - A temporary failure of one MX host moves on to the next; only when every host failed is
//   the group deferred. A 5xx to a recipient bounces that recipient only.
// - The SMTP client is given IP addresses, never names (destination.ts resolves them).
// - Which targets may be tried, and with what TLS, is tls-policy.ts's call (MTA-STS, the
//   sending mailbox's tls_enforce_out, the message's REQUIRETLS or TLS-Required: No); a group
//   it defers is never sent anywhere. A REQUIRETLS message is only handed to a host that
//   listed REQUIRETLS after TLS (RFC 8689 4.2.1); the others are left for the next MX, and
//   when every host refused for good the group bounces.

import { isIP } from 'node:net'
import { headerFields } from '../../mail/headers.ts'
import type { OutboundRecipient } from '../../store/schema.ts'
import {
  checkRecipient,
  deliverInbound,
  type RecipientCheck,
  type RefusalReason,
} from '../delivery/inbound.ts'
import { hostedDomain } from '../mailboxes/resolve.ts'
import type { OutboundContext } from './context.ts'
import { type DestinationResult, resolveDestination } from './destination.ts'
import type { TraceRow } from './events.ts'
import type { ConnectionPool } from './pool.ts'
import { planTls, recordTesting, requirementFailure, requireTlsMissing } from './tls-policy.ts'
import { type DeliveryTarget, type TraceStep, TransportError } from './transport.ts'

export interface Outcome {
  recipient: OutboundRecipient
  code: number
  enhanced: string | null
  message: string
  /** Who answered: an MX host name, 'local', or the smart host. */
  mta: string | null
  /** The answering server offered DSN, so it took the recipient's DSN request over (RFC 3461). */
  nextHopDsn?: boolean
}

export interface GroupResult {
  outcomes: Outcome[]
  trace: TraceRow[]
}

const reply = (code: number, enhanced: string, message: string) => ({ code, enhanced, message })

export async function deliverGroup(
  ctx: OutboundContext,
  pool: ConnectionPool,
  m: {
    id: string
    org_id: string
    mailbox_id: string | null
    mail_from: string
    attempt: number
    envid?: string | null
    ret?: 'FULL' | 'HDRS' | null
    /** REQUIRETLS (RFC 8689) was asked for this message. */
    require_tls?: boolean
  },
  domain: string,
  recipients: OutboundRecipient[],
  raw: Buffer,
): Promise<GroupResult> {
  const trace: TraceRow[] = []
  const step = (kind: string, detail: Record<string, unknown>) =>
    trace.push({ kind, attempt: m.attempt, at: ctx.clock.now(), detail })
  const all = (code: number, enhanced: string | null, message: string, mta: string | null): GroupResult => ({
    outcomes: recipients.map((recipient) => ({ recipient, code, enhanced, message, mta })),
    trace,
  })

  // A domain we are only the backup MX for goes to its real MX like any other.
  const hosted = await hostedDomain(ctx.store, domain)
  if (hosted && hosted.backup_mx !== 1)
    return { outcomes: await deliverLocally(ctx, m, recipients, raw, step), trace }

  let targets: DeliveryTarget[]
  let auth: { user: string; pass: string } | null = null
  let tls: 'starttls' | 'require' | 'implicit' | 'none' = 'starttls'
  let verify = false
  const smart = ctx.settings.smartHost
  if (smart) {
    // The relay's own addresses (A, then AAAA), never its MX; an IP literal is used as given.
    const none = () => [] as string[]
    const ips = isIP(smart.host)
      ? [smart.host]
      : [
          ...(await ctx.resolver.resolve4(smart.host).catch(none)),
          ...(await ctx.resolver.resolve6(smart.host).catch(none)),
        ]
    step('dns', { query: smart.host, type: 'smart_host', answers: ips })
    if (ips.length === 0) return all(451, '4.4.3', `smart host ${smart.host} does not resolve`, null)
    targets = ips.map((ip) => ({ domain, host: smart.host, ip, port: smart.port }))
    auth = ctx.settings.smartHostAuth
    tls = ctx.settings.smartHostTls
    verify = tls === 'require' || tls === 'implicit'
  } else {
    const { result: dest, cached } = await destinationFor(ctx, domain)
    for (const d of dest.dns) step('dns', cached ? { ...d, cached: true } : { ...d })
    if (dest.kind !== 'ok') {
      step('route', { result: dest.kind, reason: dest.reason, enhanced: dest.enhanced })
      return dest.kind === 'permanent'
        ? all(550, dest.enhanced, dest.reason, null)
        : all(451, dest.enhanced, dest.reason, null)
    }
    targets = dest.targets.map((t) => ({ domain, host: t.host, ip: t.ip, port: t.port }))
  }

  // MTA-STS and the mailbox's tls_enforce_out decide which targets may be tried, and how.
  const plan = await planTls(
    ctx,
    {
      message: m,
      domain,
      targets,
      smartHost: smart ? { tls, verify } : null,
      tlsRequiredNo: !m.require_tls && tlsRequiredNo(raw),
    },
    step,
  )
  if (plan.kind === 'defer') {
    const result = plan.code >= 500 ? 'refused' : 'deferred'
    step('route', { result, reason: plan.message, enhanced: plan.enhanced })
    return all(plan.code, plan.enhanced, plan.message, null)
  }

  const sink = (s: TraceStep) => trace.push({ kind: s.kind, attempt: m.attempt, at: s.at, detail: s.detail })
  let last = reply(451, '4.4.1', 'no mail server could be reached')
  let lastPermanent = false
  // RFC 8689 4.2.1: a REQUIRETLS message bounces only when every host refused it for good.
  let everyPermanent = true
  for (const planned of plan.targets) {
    const target = planned.target
    let lease: Awaited<ReturnType<ConnectionPool['acquire']>>
    try {
      lease = await pool.acquire(
        target,
        { helo: ctx.settings.helo, tls: planned.tls, verifyCertificate: planned.verify, auth },
        sink,
      )
    } catch (err) {
      const e = toTransportError(err)
      step('error', { host: target.host, ip: target.ip, phase: e.phase, message: e.message })
      last =
        requirementFailure(planned, e) ??
        reply(e.code ?? (e.temporary ? 451 : 550), e.enhanced ?? (e.temporary ? '4.4.1' : '5.4.4'), e.message)
      lastPermanent = !e.temporary
      if (planned.mustOfferRequireTls && last.code >= 500) lastPermanent = true
      if (!lastPermanent) everyPermanent = false
      // A server that refuses us outright at greeting/EHLO with 5xx speaks for the domain.
      if (!e.temporary && e.phase !== 'connect')
        return all(last.code, last.enhanced, last.message, target.host)
      continue
    }
    if (!lease.fresh) step('reuse', { host: target.host, ip: target.ip, tls: lease.session.tls })
    if (planned.mustOfferRequireTls && !lease.session.offers('REQUIRETLS')) {
      // RFC 8689 4.2.1 step 5: not this host; the session stays good for other mail.
      lease.release(true)
      last = requireTlsMissing(planned)
      lastPermanent = true
      step('tls_policy', { host: target.host, ip: target.ip, result: 'requiretls_not_offered' })
      continue
    }
    recordTesting(planned, lease.session, step)
    const outcomes: Outcome[] = []
    try {
      const size = ctx.settings.recipientsPerTransaction
      for (let i = 0; i < recipients.length; i += size) {
        const chunk = recipients.slice(i, i + size)
        const r = await lease.session.send({
          mailFrom: m.mail_from,
          recipients: chunk.map((x) => ({
            address: x.address,
            notify: x.dsn_notify
              ? (x.dsn_notify.split(',') as ('NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY')[])
              : null,
            orcpt: x.dsn_orcpt,
          })),
          message: raw,
          requireTls: planned.requireTls,
          envid: m.envid ?? null,
          ret: m.ret ?? null,
        })
        for (const [j, o] of r.recipients.entries())
          outcomes.push({
            recipient: chunk[j] as OutboundRecipient,
            code: o.code,
            enhanced: o.enhanced,
            message: o.message,
            mta: target.host,
            nextHopDsn: r.dsn,
          })
      }
      lease.release(true)
      return { outcomes, trace }
    } catch (err) {
      lease.release(false)
      const e = toTransportError(err)
      step('error', { host: target.host, ip: target.ip, phase: e.phase, message: e.message })
      // Recipients already answered in an earlier transaction keep their outcome; the rest
      // are deferred (the connection broke mid-transaction: never treat that as a refusal).
      const answered = new Set(outcomes.map((o) => o.recipient.id))
      const rest = recipients.filter((x) => !answered.has(x.id))
      return {
        outcomes: [
          ...outcomes,
          ...rest.map((recipient) => ({
            recipient,
            code: 451,
            enhanced: '4.4.2',
            message: `connection to ${target.host} lost: ${e.message}`,
            mta: target.host,
          })),
        ],
        trace,
      }
    }
  }
  if (plan.targets.some((p) => p.mustOfferRequireTls))
    return everyPermanent
      ? all(550, last.enhanced, last.message, null)
      : all(451, '4.4.1', `no mail server could be reached with REQUIRETLS; last: ${last.message}`, null)
  return lastPermanent
    ? all(550, last.enhanced, last.message, null)
    : all(last.code, last.enhanced, last.message, null)
}

/** How long a destination lookup is reused: a stream of mail to one domain asks DNS once a minute, not per message. */
const DESTINATION_TTL_MS = 60_000
const destinations = new WeakMap<object, Map<string, { at: number; result: DestinationResult }>>()

async function destinationFor(
  ctx: OutboundContext,
  domain: string,
): Promise<{ result: DestinationResult; cached: boolean }> {
  let cache = destinations.get(ctx)
  if (!cache) {
    cache = new Map()
    destinations.set(ctx, cache)
  }
  const now = ctx.clock.now()
  const hit = cache.get(domain)
  if (hit && now - hit.at < DESTINATION_TTL_MS) return { result: hit.result, cached: true }
  const result = await resolveDestination(domain, {
    resolver: ctx.resolver,
    allows: (ip) => ctx.allows(ip),
    localHosts: ctx.settings.localHosts,
    port: ctx.settings.mxPort,
  })
  // Temporary failures are asked again next time; answers (good or permanent) are kept a while.
  if (result.kind !== 'temporary') {
    if (cache.size > 10_000) cache.clear()
    cache.set(domain, { at: now, result })
  }
  return { result, cached: false }
}

/** The header section has `TLS-Required: No` (RFC 8689 3; the value is case-insensitive). */
export function tlsRequiredNo(raw: Buffer): boolean {
  return headerFields(raw).some(
    (f) => f.name === 'tls-required' && /^no$/i.test(f.text.slice(f.text.indexOf(':') + 1).trim()),
  )
}

function toTransportError(err: unknown): TransportError {
  if (err instanceof TransportError) return err
  return new TransportError((err as Error)?.message ?? String(err), { temporary: true, phase: 'connect' })
}

async function deliverLocally(
  ctx: OutboundContext,
  m: { id: string; mail_from: string; require_tls?: boolean },
  recipients: OutboundRecipient[],
  raw: Buffer,
  step: (kind: string, detail: Record<string, unknown>) => void,
): Promise<Outcome[]> {
  const outcomes: Outcome[] = []
  const accepted: { r: OutboundRecipient; check: Extract<RecipientCheck, { ok: true }> }[] = []
  for (const r of recipients) {
    const check = await checkRecipient(ctx.local, r.address, { tls: true }, raw.length)
    if (check.ok) accepted.push({ r, check })
    else {
      const [code, enhanced] = LOCAL_REFUSALS[check.reason] ?? ['550', '5.1.1']
      outcomes.push({ recipient: r, code: Number(code), enhanced, message: check.detail, mta: 'local' })
    }
  }
  if (accepted.length) {
    const targets = accepted.flatMap((a) => a.check.targets)
    const unique = [...new Map(targets.map((t) => [t.mailbox_id, t])).values()]
    // An alias here that forwards out: the forward is queued with the local copies.
    const forwards = [...new Map(accepted.flatMap((a) => a.check.forwards).map((f) => [f.via, f])).values()]
    try {
      const result = await deliverInbound(ctx.local, {
        raw,
        mailFrom: m.mail_from,
        recipients: accepted.map((a) => ({ address: a.r.address, notify: null, orcpt: null })),
        targets: unique,
        forwards,
        requireTls: m.require_tls === true,
        session: { id: m.id, ip: '127.0.0.1', helo: ctx.settings.hostname, tls: null },
      })
      for (const a of accepted)
        outcomes.push(
          result.ok
            ? {
                recipient: a.r,
                code: 250,
                enhanced: '2.0.0',
                message: `delivered locally (${result.queue_id})`,
                mta: 'local',
              }
            : result.reason === 'forward_limit'
              ? { recipient: a.r, code: 451, enhanced: '4.7.1', message: result.detail, mta: 'local' }
              : { recipient: a.r, code: 554, enhanced: '5.4.6', message: result.detail, mta: 'local' },
        )
    } catch (err) {
      for (const a of accepted)
        outcomes.push({
          recipient: a.r,
          code: 451,
          enhanced: '4.3.0',
          message: `local delivery failed: ${(err as Error).message}`,
          mta: 'local',
        })
    }
  }
  step('local', { delivered: outcomes.filter((o) => o.code < 300).map((o) => o.recipient.address) })
  return outcomes
}

/** The reply a local recipient's refusal stands for (the MX's replies, without the wording). */
const LOCAL_REFUSALS: Partial<Record<RefusalReason, [string, string]>> = {
  quota_full: ['452', '4.2.2'],
  mailbox_disabled: ['550', '5.2.1'],
  external_target: ['451', '4.3.0'],
  forward_limit: ['451', '4.7.1'],
}
