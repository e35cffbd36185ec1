// Forwarding: mail accepted by the MX for an alias with outside targets, bounces arriving at
// the SRS addresses of mail we forwarded, and mail for domains we are the backup MX of, all
// leave through the outbound queue. This module owns how those queue items are made:
// - alias forwards: a Delivered-To trace (loop protection), an ARC set sealed with the alias
//   domain's DKIM key attesting to the results we found on arrival, the alias domain's DKIM
//   signature (enqueue), and the envelope sender rewritten by SRS (mail/srs.ts);
// - SRS bounces: sent back to the address the SRS address stands for;
// - backup MX relays: the original bytes and envelope (no SRS, no signature), to the domain's
//   real MX (deliver.ts routes backup domains to their MX, never locally).
// Invariants:
// - Forwards are staged before and recorded inside the inbound delivery's transaction
//   (stage, then record in the same group commit as the local copies), so the MX's 250 means
//   the forwards are durably queued; a failed transaction discards what was staged.
// - The per-alias hourly cap (rate_limits.forward_alias) is checked at RCPT (peek) and counted
//   in the delivery transaction; a count that no longer fits fails the transaction, and the
//   MX answers 451: never a silent drop. The org's sending caps are peeked at RCPT as well.
// - Suppressed outside targets are left out at RCPT; an alias whose only targets are all
//   suppressed is refused (550) rather than accepted and dropped.
// - A message received with REQUIRETLS (RFC 8689 4.1) is forwarded and relayed with it.
// - A forward or relay that fails for good (a 5xx from the target's MX, or the queue's
//   lifetime over) is bounced to the original envelope sender, the address its SRS form stands
//   for (as Postfix does): the queue item carries it as `dsn_to`, and notices.ts mails the
//   notice from <>. Mail that came with the null sender (itself a bounce) gets no `dsn_to`, so
//   its failure is dropped and never bounced or forwarded again: no bounce loops. An SRS
//   bounce we pass back (kind 'srs') has the null sender too.
// - The null sender stays null; a sender at a domain hosted here is kept (our SPF covers it);
//   any other sender is SRS-rewritten, or given the forward's signed return path when the SRS
//   form would not fit in 64 octets.

import type { Transaction } from 'kysely'
import { isValidAddress } from '../../mail/address.ts'
import { type AuthVerdict, arcSeal } from '../../mail/auth.ts'
import { headerFields, prependHeaders } from '../../mail/headers.ts'
import type { ParsedSummary } from '../../mail/parse.ts'
import { isSrsLocal, srsForward, srsReverse } from '../../mail/srs.ts'
import type { Database } from '../../store/schema.ts'
import { hostedDomain } from '../mailboxes/resolve.ts'
import type { OutboundContext } from './context.ts'
import {
  discardStaged,
  type EnqueueRequest,
  recordOutbound,
  type StagedOutbound,
  signingKeys,
  stageOutbound,
} from './enqueue.ts'
import { peekCapacity } from './limits.ts'
import { suppressedAmong } from './suppressions.ts'

/** Where one accepted recipient's mail is forwarded to. */
export interface ForwardTarget {
  /** An alias's outside targets, or a bounce at an SRS address going back to its sender. */
  kind: 'alias' | 'srs'
  org_id: string
  /** The forwarding domain: it signs, seals and appears in the SRS address. */
  domain_id: string
  domain: string
  alias_id: string | null
  /** The address the mail reached us at (the alias, or the SRS address); the Delivered-To trace. */
  via: string
  to: string[]
}

/** A recipient at a domain we are the backup MX of. */
export interface RelayTarget {
  org_id: string
  domain_id: string
  domain: string
  address: string
  notify: string[] | null
  orcpt: string | null
}

export class ForwardLimitError extends Error {
  override name = 'ForwardLimitError'
}

export type Screened =
  | { ok: true; target: ForwardTarget | null }
  | { ok: false; reason: 'forward_limit'; detail: string }

export interface ForwardInput {
  /** The message as filed locally: our Received and Authentication-Results on top. */
  message: Buffer
  mailFrom: string
  /** What the inbound checks found; null when they did not run (local delivery of queued mail). */
  verdict: AuthVerdict | null
  parsed: ParsedSummary
  forwards: readonly ForwardTarget[]
  relays: readonly RelayTarget[]
  /** The message arrived with REQUIRETLS (RFC 8689 4.1): its forwards and relays keep it. */
  requireTls?: boolean
}

export interface PreparedForward {
  staged: StagedOutbound
  /** The alias whose hourly count this forward takes. */
  alias_id: string | null
}

export interface Forwarding {
  /** At RCPT: leaves out suppressed targets (null when none is left) and checks the caps. */
  screen(f: ForwardTarget): Promise<Screened>
  /** At RCPT: null when `address` is not an SRS address at a domain hosted here, 'invalid' when its hash or age is wrong. */
  reverseSrs(address: string): Promise<ForwardTarget | 'invalid' | null>
  /** Whether a message already went through one of these aliases here (Delivered-To): a loop. */
  loops(raw: Buffer, forwards: readonly ForwardTarget[]): string | null
  /** Builds, signs and stages every forward and relay copy (no rows yet). */
  stage(input: ForwardInput): Promise<PreparedForward[]>
  /** Writes the queue rows inside the delivery transaction; throws ForwardLimitError over a cap. */
  record(tx: Transaction<Database>, prepared: readonly PreparedForward[]): Promise<string[]>
  discard(prepared: readonly PreparedForward[]): Promise<void>
  /** Tells the queue worker new work is due. */
  queued(): void
}

const lower = (s: string) => s.trim().toLowerCase()

/** Where the failure notice of a forward or relay goes: the original sender; none for <>. */
const bounceTo = (mailFrom: string): EnqueueRequest['dsn'] =>
  mailFrom === ''
    ? null
    : { ret: null, envid: null, smtputf8: /[\u0080-\u{10ffff}]/u.test(mailFrom), to: mailFrom }
const domainOf = (address: string) => lower(address.slice(address.lastIndexOf('@') + 1))

export function createForwarding(ctx: OutboundContext): Forwarding {
  const log = ctx.log.child({ mod: 'forward' })

  async function envelopeSender(mailFrom: string, domain: string, now: number): Promise<string | undefined> {
    if (mailFrom === '') return ''
    const own = await hostedDomain(ctx.store, domainOf(mailFrom))
    if (own && own.backup_mx !== 1) return mailFrom
    try {
      return srsForward(ctx.srsKey, mailFrom, domain, now) ?? undefined
    } catch {
      return undefined // not an address we can rewrite: the forward's own return path
    }
  }

  async function sealed(raw: Buffer, f: ForwardTarget, verdict: AuthVerdict | null, now: number) {
    if (!verdict?.arcAuthResults) return raw
    const keys = await signingKeys(ctx, { id: f.domain_id, name: f.domain })
    // RSA first: the receivers that evaluate ARC all verify RSA; Ed25519 support is spotty.
    const key = keys.find((k) => k.algorithm === 'rsa') ?? keys[0]
    if (!key) return raw
    try {
      const set = await arcSeal(raw, {
        key: { domain: key.domain, selector: key.selector, privateKey: key.privateKey },
        cv: verdict.arc,
        authResults: verdict.arcAuthResults,
        now,
      })
      if (set.length === 0) log.warn({ domain: f.domain }, 'ARC sealing made no set; forwarding unsealed')
      return set.length ? Buffer.concat([set, raw]) : raw
    } catch (err) {
      log.warn({ err, domain: f.domain }, 'ARC sealing failed; forwarding unsealed')
      return raw
    }
  }

  return {
    async screen(f) {
      if (f.kind !== 'alias' || !f.alias_id) return { ok: true, target: f }
      const suppressed = await suppressedAmong(ctx.store.db, f.org_id, f.to)
      const to = f.to.filter((a) => !suppressed.has(lower(a)))
      if (to.length === 0) return { ok: true, target: null }
      const mine = await ctx.limiter.peek(ctx.rules.forward_alias, f.alias_id, 1)
      if (!mine.allowed)
        return {
          ok: false,
          reason: 'forward_limit',
          detail: `${f.via} has forwarded ${mine.limit} messages in this window (rate_limits.forward_alias)`,
        }
      const org = await peekCapacity(ctx, f.org_id, to.length)
      if (!org.ok)
        return {
          ok: false,
          reason: 'forward_limit',
          detail: `the organisation is at its ${org.window}ly sending cap of ${org.cap} recipients`,
        }
      return { ok: true, target: { ...f, to } }
    },

    async reverseSrs(address) {
      const at = address.lastIndexOf('@')
      if (at <= 0 || !isSrsLocal(address.slice(0, at))) return null
      const d = await hostedDomain(ctx.store, domainOf(address))
      if (!d || d.backup_mx === 1) return null
      const r = srsReverse(ctx.srsKey, address, ctx.clock.now(), ctx.settings.srsMaxAgeDays)
      if (!r.ok || !isValidAddress(r.address)) {
        log.info({ rcpt: address, reason: r.ok ? 'malformed' : r.reason }, 'SRS address refused')
        return 'invalid'
      }
      return {
        kind: 'srs',
        org_id: d.org_id,
        domain_id: d.id,
        domain: domainOf(address),
        alias_id: null,
        via: lower(address),
        to: [r.address],
      }
    },

    loops(raw, forwards) {
      const seen = new Set(
        headerFields(raw)
          .filter((f) => f.name === 'delivered-to')
          .map((f) => lower(f.text.slice(f.text.indexOf(':') + 1))),
      )
      return forwards.find((f) => f.kind === 'alias' && seen.has(f.via))?.via ?? null
    },

    async stage(input) {
      const now = ctx.clock.now()
      const out: PreparedForward[] = []
      const hasFrom = headerFields(input.message).some((f) => f.name === 'from')
      const base = {
        mailbox_id: null,
        api_key_id: null,
        user_id: null,
        from_header: input.parsed.from?.address ?? '',
        subject: input.parsed.subject,
        message_id_header: input.parsed.message_id ?? '',
        tags: {},
        scheduled_at: null,
        sent_copy_mailbox: null,
        actor: 'smtp',
        require_tls: input.requireTls === true,
      } satisfies Partial<EnqueueRequest>
      try {
        for (const f of input.forwards) {
          const traced =
            f.kind === 'alias' ? prependHeaders(input.message, [`Delivered-To: ${f.via}`]) : input.message
          const raw = await sealed(traced, f, input.verdict, now)
          const mailFrom = await envelopeSender(input.mailFrom, f.domain, now)
          const staged = await stageOutbound(ctx, {
            ...base,
            org_id: f.org_id,
            // A message without From cannot carry a DKIM signature; it goes unsigned.
            domain: hasFrom ? { id: f.domain_id, name: f.domain } : null,
            origin: 'forward',
            raw,
            recipients: f.to.map((address) => ({ address, type: 'to' as const })),
            headers_json: { forwarded_for: f.via, kind: f.kind, original_mail_from: input.mailFrom },
            mail_from: mailFrom ?? (hasFrom ? undefined : ''),
            dsn: bounceTo(input.mailFrom),
          })
          out.push({ staged, alias_id: f.alias_id })
        }
        const groups = new Map<string, RelayTarget[]>()
        for (const r of input.relays) {
          const key = `${r.org_id} ${r.domain_id}`
          groups.set(key, [...(groups.get(key) ?? []), r])
        }
        for (const list of groups.values()) {
          const first = list[0] as RelayTarget
          const staged = await stageOutbound(ctx, {
            ...base,
            org_id: first.org_id,
            domain: null, // relayed as received: not ours to sign
            origin: 'backup_mx',
            raw: input.message,
            recipients: list.map((r) => ({
              address: r.address,
              type: 'to' as const,
              notify: r.notify,
              orcpt: r.orcpt,
            })),
            headers_json: { backup_mx_for: first.domain, original_mail_from: input.mailFrom },
            mail_from: input.mailFrom,
            dsn: bounceTo(input.mailFrom),
            // The org's suppression list is about its own sending, not mail it relays.
            ignoreSuppressions: true,
          })
          out.push({ staged, alias_id: null })
        }
      } catch (err) {
        await Promise.all(out.map((p) => discardStaged(ctx, p.staged)))
        throw err
      }
      return out
    },

    async record(tx, prepared) {
      const ids: string[] = []
      for (const p of prepared) {
        if (p.alias_id) {
          const d = await ctx.limiter.hit(ctx.rules.forward_alias, p.alias_id, 1, tx)
          if (!d.allowed) throw new ForwardLimitError(`the alias is over rate_limits.forward_alias`)
        }
        await recordOutbound(tx, ctx, p.staged)
        ids.push(p.staged.id)
      }
      return ids
    },

    async discard(prepared) {
      await Promise.all(prepared.map((p) => discardStaged(ctx, p.staged)))
    },

    queued() {
      ctx.wake?.()
    },
  }
}
