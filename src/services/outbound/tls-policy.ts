// How each delivery target of one destination must be reached: which MX hosts may be tried and
// with what TLS, from the destination's MTA-STS policy (RFC 8461 5), the sending mailbox's
// `tls_enforce_out` and the message's own REQUIRETLS flag or `TLS-Required: No` field (RFC
// 8689); plus the wording of a failure under such a requirement, and the checks that a
// `testing` policy records without stopping delivery. deliver.ts asks once per group.
// Invariants:
// - MTA-STS `enforce`: only MX hosts matching the policy are tried, each with STARTTLS and a
//   certificate valid for the MX name (`require` + verify); when none matches, the group is
//   deferred (4.7.5) and never sent elsewhere. The queue's lifetime turns deferral into failure.
// - MTA-STS `testing`: every MX is tried as without a policy; a host outside the policy, a
//   session without TLS or a certificate that does not verify is recorded in the trace (kind
//   `mta_sts`, result ...), and the mail is delivered anyway. `none` (or no policy) changes nothing.
// - `tls_enforce_out` on the sending mailbox: every target (smart host included) needs STARTTLS
//   with a verified certificate, and REQUIRETLS (RFC 8689) is put on MAIL FROM when the server
//   offers it, so the next hops keep the requirement. A server not offering REQUIRETLS still
//   gets the mail: the mailbox asks for verified TLS to the next hop, not for RFC 8689's
//   end-to-end guarantee.
// - A REQUIRETLS message (`require_tls`, RFC 8689 4.2.1): every target needs STARTTLS with a
//   certificate valid for its name, and must list REQUIRETLS in its EHLO after TLS
//   (`mustOfferRequireTls`); the MAIL command carries REQUIRETLS. A host failing either is left
//   for the next MX; when no host qualifies the message is not sent to the domain and bounces
//   (550 5.7.30 when REQUIRETLS was missing, 550 5.7.10 when TLS could not be had), unless
//   some host could not be reached at all (then it is deferred and tried again). MX names are
//   validated with MTA-STS when the domain has a policy (4.2.1 step 2; `testing` counts too):
//   hosts outside it are never tried. Postern's resolver does not validate DNSSEC, so a domain
//   without a policy has its MX names taken as DNS gave them, with their certificates verified.
//   Choice: a REQUIRETLS bounce (null sender) uses REQUIRETLS where offered but is not
//   discarded when the next hop lacks it (RFC 8689 5).
// - `TLS-Required: No` (RFC 8689 3, 4.2.2) on a message without REQUIRETLS: MTA-STS is not
//   applied (not even looked up) and TLS is opportunistic, so a policy failure never blocks it.
//   Choice: the sending mailbox's tls_enforce_out wins over the field (the mailbox owner's
//   setting is policy of the sending system, which the message's author cannot lift), and then
//   MTA-STS is applied as usual. The field is ignored on a REQUIRETLS message (4.1).
// - Local delivery never comes here; MTA-STS is not applied through a smart host (the relay
//   talks to the MX, not us).
// - A failed lookup of the mailbox or the policy never throws out of planTls: the policy
//   module reports its problems, and a mailbox that cannot be read counts as enforcing.

import type { OutboundContext } from './context.ts'
import { type MtaStsLookup, mxMatches } from './mta-sts.ts'
import type { DeliveryTarget, SessionOptions, SmtpSession, TransportError } from './transport.ts'

export interface PlannedTarget {
  target: DeliveryTarget
  tls: SessionOptions['tls']
  verify: boolean
  /** Put REQUIRETLS on MAIL FROM when the server offers it (RFC 8689). */
  requireTls: boolean
  /** A REQUIRETLS message: a server not offering REQUIRETLS after TLS must not get it (RFC 8689 4.2.1). */
  mustOfferRequireTls: boolean
  /** Why verified TLS is required (starts the deferral reason), or null when TLS is opportunistic. */
  required: string | null
  /** The testing policy whose failures are recorded for this target, or null. */
  testing: { domain: string; policyId: string } | null
}

export type TlsPlan =
  | { kind: 'send'; targets: PlannedTarget[] }
  | { kind: 'defer'; code: number; enhanced: string; message: string }

export type TraceFn = (kind: string, detail: Record<string, unknown>) => void

export interface PlanInput {
  message: {
    org_id: string
    mailbox_id: string | null
    /** REQUIRETLS (RFC 8689) was asked for this message. */
    require_tls?: boolean
    /** '' for a notice (null reverse path). */
    mail_from?: string
  }
  /** The message carries `TLS-Required: No` (RFC 8689 3). */
  tlsRequiredNo?: boolean
  domain: string
  targets: readonly DeliveryTarget[]
  /** Set for the smart host: its configured TLS mode. */
  smartHost: { tls: SessionOptions['tls']; verify: boolean } | null
}

const ENFORCE_OUT = 'the sending mailbox requires verified TLS (tls_enforce_out)'
const REQUIRE_TLS = 'the message requires TLS (REQUIRETLS, RFC 8689)'

async function enforcesOut(ctx: Pick<OutboundContext, 'store'>, m: PlanInput['message']): Promise<boolean> {
  if (!m.mailbox_id) return false
  try {
    const row = await ctx.store.db
      .selectFrom('mailboxes')
      .select('tls_enforce_out')
      .where('id', '=', m.mailbox_id)
      .where('org_id', '=', m.org_id)
      .executeTakeFirst()
    return Number(row?.tls_enforce_out ?? 0) === 1
  } catch {
    return true // cannot tell: the stricter reading, a deferral at worst
  }
}

export async function planTls(
  ctx: Pick<OutboundContext, 'store' | 'mtaSts'>,
  input: PlanInput,
  trace: TraceFn,
): Promise<TlsPlan> {
  const enforceOut = await enforcesOut(ctx, input.message)
  if (enforceOut) trace('tls_policy', { require: 'verified', reason: ENFORCE_OUT })
  const requireTls = input.message.require_tls === true
  // RFC 8689 5: a bounce of a REQUIRETLS message is not discarded for want of REQUIRETLS.
  const must = requireTls && input.message.mail_from !== ''
  if (requireTls) trace('tls_policy', { require: 'requiretls', reason: REQUIRE_TLS, strict: must })
  const strict = enforceOut || requireTls
  const reason = [requireTls ? REQUIRE_TLS : null, enforceOut ? ENFORCE_OUT : null]
    .filter((x) => x !== null)
    .join(', and ')
  // RFC 8689 4.1: TLS-Required is ignored when REQUIRETLS was given; tls_enforce_out wins over it.
  const ignorePolicies = input.tlsRequiredNo === true && !strict
  if (input.tlsRequiredNo && strict)
    trace('tls_policy', { tls_required_no: 'ignored', reason: requireTls ? 'REQUIRETLS' : 'tls_enforce_out' })

  const strictTarget = (target: DeliveryTarget, tls: SessionOptions['tls']): PlannedTarget => ({
    target,
    tls,
    verify: true,
    requireTls: true,
    mustOfferRequireTls: must,
    required: reason,
    testing: null,
  })

  if (input.smartHost) {
    const s = input.smartHost
    const targets = input.targets.map((target) =>
      strict
        ? strictTarget(target, s.tls === 'implicit' ? 'implicit' : 'require')
        : {
            target,
            tls: s.tls,
            verify: s.verify,
            requireTls: false,
            mustOfferRequireTls: false,
            required: null,
            testing: null,
          },
    )
    return { kind: 'send', targets }
  }

  const base = (target: DeliveryTarget): PlannedTarget =>
    strict
      ? strictTarget(target, 'require')
      : {
          target,
          tls: 'starttls',
          verify: false,
          requireTls: false,
          mustOfferRequireTls: false,
          required: null,
          testing: null,
        }

  if (ignorePolicies) {
    // RFC 8689 4.2.2: the sender asked that MTA-STS (and DANE) be ignored for this message.
    trace('tls_policy', { tls_required_no: 'honoured', mta_sts: 'not applied' })
    return { kind: 'send', targets: input.targets.map(base) }
  }

  const sts = ctx.mtaSts ? await ctx.mtaSts.lookup(input.domain) : null
  if (sts) trace('mta_sts', lookupDetail(sts))
  const policy = sts?.policy ?? null

  if (!policy || policy.mode === 'none') return { kind: 'send', targets: input.targets.map(base) }

  const outside = input.targets.filter((t) => !mxMatches(policy, t.host))
  const outsideHosts = [...new Set(outside.map((t) => t.host))]
  if (policy.mode === 'testing' && !requireTls) {
    for (const host of outsideHosts)
      trace('mta_sts', { mode: 'testing', host, result: 'mx_not_in_policy', policy_mx: policy.mx })
    return {
      kind: 'send',
      targets: input.targets.map((t) => ({
        ...base(t),
        testing: { domain: input.domain, policyId: policy.id },
      })),
    }
  }

  // enforce (RFC 8461 5.1), or any policy for a REQUIRETLS message (RFC 8689 4.2.1 step 2):
  // hosts outside the policy are never tried.
  const allowed = input.targets.filter((t) => mxMatches(policy, t.host))
  if (outsideHosts.length)
    trace('mta_sts', {
      mode: policy.mode,
      result: 'mx_not_in_policy',
      skipped: outsideHosts,
      policy_mx: policy.mx,
    })
  if (allowed.length === 0) {
    const hosts = [...new Set(input.targets.map((t) => t.host))].join(', ')
    const text = `MTA-STS policy of ${input.domain} (${policy.mode}, id ${policy.id}) allows mx ${policy.mx.join(', ')}; none of its MX hosts matches (${hosts})`
    // RFC 8689 4.2.1: no MX qualifies for a REQUIRETLS message: not sent, bounced.
    if (must) return { kind: 'defer', code: 550, enhanced: '5.7.10', message: `${REQUIRE_TLS}; ${text}` }
    return { kind: 'defer', code: 451, enhanced: '4.7.5', message: text }
  }
  const why = `MTA-STS policy of ${input.domain} (${policy.mode}) requires a valid certificate for the MX host`
  return {
    kind: 'send',
    targets: allowed.map((t) => {
      const b = base(t)
      return { ...b, tls: 'require', verify: true, required: b.required ? `${why}, and ${b.required}` : why }
    }),
  }
}

function lookupDetail(l: MtaStsLookup): Record<string, unknown> {
  const d: Record<string, unknown> = { domain: l.domain, source: l.source }
  if (l.txtId) d.txt_id = l.txtId
  if (l.policy) {
    d.policy_id = l.policy.id
    d.mode = l.policy.mode
    d.mx = l.policy.mx
    d.expires_at = new Date(l.policy.expiresAt).toISOString()
  }
  if (l.problem) d.problem = l.problem
  return d
}

/**
 * The reply a failure to open a session to `p` stands for when verified TLS was required
 * (the message says which requirement and what happened), or null for the usual wording.
 */
export function requirementFailure(
  p: PlannedTarget,
  e: TransportError,
): { code: number; enhanced: string; message: string } | null {
  if (!p.required || e.phase !== 'tls') return null
  const notOffered = /does not offer STARTTLS/i.test(e.message)
  // RFC 8689 4.2.1: "Unable to establish TLS-protected SMTP session", for good.
  if (p.mustOfferRequireTls)
    return { code: 550, enhanced: '5.7.10', message: `${p.required}; ${p.target.host}: ${e.message}` }
  return {
    code: 451,
    enhanced: notOffered ? '4.7.4' : '4.7.5',
    message: `${p.required}; ${p.target.host}: ${e.message}`,
  }
}

/** The refusal for a host that did not list REQUIRETLS after TLS (RFC 8689 4.2.1: 5.7.30). */
export function requireTlsMissing(p: PlannedTarget): { code: number; enhanced: string; message: string } {
  return {
    code: 550,
    enhanced: '5.7.30',
    message: `REQUIRETLS needed: ${p.target.host} does not offer REQUIRETLS (RFC 8689), which this message requires`,
  }
}

/** After connecting under a testing policy: records what enforce would have refused (RFC 8461 5). */
export function recordTesting(p: PlannedTarget, session: SmtpSession, trace: TraceFn): void {
  if (!p.testing) return
  const base = {
    mode: 'testing',
    domain: p.testing.domain,
    policy_id: p.testing.policyId,
    host: p.target.host,
  }
  if (!session.tls) trace('mta_sts', { ...base, result: 'tls_not_negotiated' })
  else if (session.tls.verified === false)
    trace('mta_sts', { ...base, result: 'certificate_invalid', error: session.tls.verifyError ?? null })
}
