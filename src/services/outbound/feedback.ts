// Reports about mail we sent, arriving at its signed return path: delivery status
// notifications (RFC 3464; late bounces and delay notices) and complaint reports (ARF,
// RFC 5965). The return path names the message; the report names the recipient. Failed
// recipients become `bounced` (hard bounces are suppressed), complaints suppress the address
// and raise `email.complained`.
// Invariants:
// - Only a return path with a valid signature for a message that exists is accepted at RCPT;
//   anything else at `bounces+...` is refused, so nobody can fake reports for other messages.
// - A report never causes mail to be sent to anyone else (no backscatter): it changes state
//   and raises events. The one mail it may lead to is the notice a mail client asked for
//   (NOTIFY, dsn-policy.ts), marked here and mailed by notices.ts to that client's own
//   envelope sender: a next hop that offers DSN reports to our return path, and the report
//   is passed on from there.
// - A report that parses as neither is accepted and dropped (logged): an auto-reply to a
//   return path is not an error of the sender.

import { parseArf, parseDsn } from '../../mail/reports.ts'
import { isReturnPathLocal, parseReturnPath } from '../../mail/return-path.ts'
import type { OutboundContext } from './context.ts'
import { wantsNotice } from './dsn-policy.ts'
import { emailEvent } from './events.ts'
import { suppress } from './suppressions.ts'
import { bounceRecipient } from './worker.ts'

export interface ReturnPathTarget {
  outbound_id: string
  org_id: string
}

/** Null when `address` is not a return path of ours; `false` when it looks like one but is not valid. */
export async function checkReturnPath(
  ctx: Pick<OutboundContext, 'store' | 'returnPathKey'>,
  address: string,
): Promise<ReturnPathTarget | false | null> {
  const at = address.lastIndexOf('@')
  if (at < 0 || !isReturnPathLocal(address.slice(0, at))) return null
  const parsed = parseReturnPath(ctx.returnPathKey, address)
  if (!parsed) return false
  const m = await ctx.store.db
    .selectFrom('outbound_messages')
    .innerJoin('domains', 'domains.id', 'outbound_messages.domain_id')
    .select(['outbound_messages.id', 'outbound_messages.org_id'])
    .where('outbound_messages.id', '=', parsed.outboundId)
    .where('domains.name', '=', parsed.domain)
    .executeTakeFirst()
  return m ? { outbound_id: m.id, org_id: m.org_id } : false
}

const lower = (s: string | null | undefined) => (s ?? '').trim().toLowerCase()

export interface ReportOutcome {
  kind: 'dsn' | 'arf' | 'other'
  /** Recipients whose state or suppression changed. */
  matched: number
}

/** Applies a report that arrived at the return paths of `targets`; durable when it resolves. */
export async function handleReport(
  ctx: Pick<OutboundContext, 'store' | 'clock' | 'bus' | 'committer' | 'log'>,
  targets: readonly ReturnPathTarget[],
  raw: Buffer,
): Promise<ReportOutcome> {
  const dsn = await parseDsn(raw)
  const arf = dsn ? null : await parseArf(raw)
  if (!dsn && !arf) {
    ctx.log.info(
      { emails: targets.map((t) => t.outbound_id) },
      'mail at a return path that is not a report; dropped',
    )
    return { kind: 'other', matched: 0 }
  }
  const now = ctx.clock.now()
  let matched = 0
  await ctx.committer.run(async (tx) => {
    for (const t of targets) {
      const rows = await tx
        .selectFrom('outbound_recipients')
        .selectAll()
        .where('outbound_id', '=', t.outbound_id)
        .where('org_id', '=', t.org_id)
        .execute()
      const find = (addr: string | null) => rows.find((r) => lower(r.address) === lower(addr))
      const m = { id: t.outbound_id, org_id: t.org_id }
      const owner = await tx
        .selectFrom('outbound_messages')
        .select('dsn_to')
        .where('id', '=', t.outbound_id)
        .where('org_id', '=', t.org_id)
        .executeTakeFirst()
      const notices = Boolean(owner?.dsn_to)
      if (dsn) {
        for (const d of dsn.recipients) {
          const r = find(d.originalRecipient) ?? find(d.finalRecipient)
          if (!r) continue
          const status = d.status ?? ''
          const code = status.startsWith('5') ? 550 : status.startsWith('4') ? 451 : 250
          const message =
            d.diagnosticCode ?? `reported by ${dsn.reportingMta ?? 'a remote server'}: ${d.action ?? status}`
          if (d.action === 'failed' && r.state !== 'bounced') {
            await bounceRecipient(ctx, tx, m, r, {
              code: code >= 500 ? code : 550,
              enhanced: /^\d\.\d{1,3}\.\d{1,3}$/.test(status) ? status : null,
              message,
              now,
              remote_mta: d.remoteMta ?? dsn.reportingMta,
              source: 'dsn',
              notice: notices && wantsNotice(r.dsn_notify, 'failure'),
            })
            matched++
          } else if (
            (d.action === 'delivered' || d.action === 'relayed' || d.action === 'expanded') &&
            notices &&
            wantsNotice(r.dsn_notify, 'success')
          ) {
            // The next hop's success report, asked for with the NOTIFY we relayed: passed on.
            await tx
              .updateTable('outbound_recipients')
              .set({
                dsn_pending: d.action === 'relayed' ? 'relayed' : 'delivered',
                last_enhanced_code: /^2\.\d{1,3}\.\d{1,3}$/.test(status) ? status : r.last_enhanced_code,
                last_response: message.slice(0, 1000),
                remote_mta: d.remoteMta ?? dsn.reportingMta ?? r.remote_mta,
                updated_at: now,
              })
              .where('id', '=', r.id)
              .where('org_id', '=', t.org_id)
              .execute()
            matched++
          } else if (d.action === 'delayed') {
            if (notices && !Number(r.dsn_delay_sent) && wantsNotice(r.dsn_notify, 'delay'))
              await tx
                .updateTable('outbound_recipients')
                .set({ dsn_pending: 'delayed', dsn_delay_sent: 1, updated_at: now })
                .where('id', '=', r.id)
                .where('org_id', '=', t.org_id)
                .execute()
            await emailEvent(tx, ctx.bus, now, {
              org_id: t.org_id,
              outbound_id: t.outbound_id,
              type: 'delayed',
              recipient: r.address,
              data: {
                source: 'dsn',
                status,
                response: message.slice(0, 300),
                reporting_mta: dsn.reportingMta,
              },
            })
            matched++
          }
        }
      } else if (arf) {
        const named = arf.originalRcptTo.map((a) => find(a)).filter((r) => r !== undefined)
        const who = named.length ? named : rows.length === 1 ? rows : []
        for (const r of who) {
          await emailEvent(tx, ctx.bus, now, {
            org_id: t.org_id,
            outbound_id: t.outbound_id,
            type: 'complained',
            recipient: r.address,
            data: {
              feedback_type: arf.feedbackType,
              user_agent: arf.userAgent,
              reporting_mta: arf.reportingMta,
              source_ip: arf.sourceIp,
            },
          })
          await suppress(tx, now, {
            org_id: t.org_id,
            address: r.address,
            reason: 'complaint',
            detail: `${arf.feedbackType ?? 'abuse'} report from ${arf.reportingMta ?? arf.userAgent ?? 'a mailbox provider'}`,
            outbound_id: t.outbound_id,
          })
          matched++
        }
      }
    }
  })
  return { kind: dsn ? 'dsn' : 'arf', matched }
}
