// Events and trace steps of outbound mail. Every state change of a message or recipient is an
// `email.<state>` event row (DESIGN.md: events are rows; webhooks and analytics read them)
// plus a change-bus note; the trace is the finer record of one message's delivery (DNS
// answers, connections, TLS, each SMTP reply) behind GET /v1/emails/{id}/trace.
// Invariants: neither carries a secret (no AUTH credentials, no message bodies); every event
// of a test message carries payload.test = true.

import type { ChangeBus } from '../../store/change-bus.ts'
import { newId } from '../../store/ids.ts'
import { notifyChange } from '../events/changes.ts'
import { writeEvent } from '../events/write.ts'
import type { Tx } from '../messages/context.ts'

export const EMAIL_EVENTS = [
  'queued',
  'sent',
  'delivered',
  'deferred',
  'bounced',
  'complained',
  'failed',
  'cancelled',
  'suppressed',
  'held',
  'delayed',
  'rescheduled',
] as const
export type EmailEvent = (typeof EMAIL_EVENTS)[number]

export async function emailEvent(
  tx: Tx,
  bus: ChangeBus,
  now: number,
  e: {
    org_id: string
    outbound_id: string
    type: EmailEvent
    actor?: string
    recipient?: string | null
    data?: Record<string, unknown>
    /** The message is test traffic (its `test` column): the payload says so (test-mode.ts). */
    test?: boolean | number
  },
): Promise<void> {
  const payload = {
    email_id: e.outbound_id,
    ...(e.recipient ? { recipient: e.recipient } : {}),
    ...e.data,
    ...(Number(e.test) === 1 || e.test === true ? { test: true } : {}),
  }
  await writeEvent(tx, now, {
    org_id: e.org_id,
    type: `email.${e.type}`,
    actor: e.actor ?? 'queue',
    ip: null,
    subject_id: e.outbound_id,
    payload,
  })
  // Only what makes work due wakes the queue workers of other processes.
  if (e.type === 'queued' || e.type === 'rescheduled')
    await notifyChange(bus, tx, 'queue.changed', e.org_id, { email_id: e.outbound_id, what: e.type })
}

export interface TraceRow {
  kind: string
  attempt: number
  at: number
  detail: Record<string, unknown>
}

export async function addTrace(
  tx: Tx,
  orgId: string,
  outboundId: string,
  rows: readonly TraceRow[],
): Promise<void> {
  if (rows.length === 0) return
  await tx
    .insertInto('outbound_trace')
    .values(
      rows.map((r) => ({
        // Ids are monotonic per millisecond (store/ids.ts), so rows sort in the order written.
        id: newId('trc', r.at),
        org_id: orgId,
        outbound_id: outboundId,
        attempt: r.attempt,
        kind: r.kind,
        detail: JSON.stringify(r.detail),
        at: r.at,
      })),
    )
    .execute()
}
