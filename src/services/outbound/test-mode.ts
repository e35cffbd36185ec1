// Test mode: what the queue does with mail sent with a test key (`pst_test_...`). The message
// was composed, DKIM-signed, stored and (when asked) filed in Sent exactly as live mail; here
// its delivery is simulated instead of attempted, so integrators see the events a real send
// raises and can test their webhook handling end to end.
//
// Magic recipients, on the reserved domain `postern.test` (RFC 6761 reserves `.test`: a live
// send there can never reach anyone). The local part picks the outcome; a `+tag` after it is
// ignored, so `bounced+order-17@postern.test` also bounces:
//   delivered@   250 2.0.0, email.delivered
//   bounced@     550 5.1.1, email.bounced (hard)
//   complained@  250 2.0.0, email.delivered, then email.complained (as an ARF report would)
//   deferred@    451 4.7.1 on the first attempt (email.deferred, retried on the normal
//                schedule), 250 2.0.0 on the next (email.delivered)
// Every other recipient, on any domain, is simulated as delivered.
//
// Invariants:
// - Nothing here opens a connection: test mail never reaches the network or a local mailbox.
// - Test traffic counts against no cap (org caps, warm-up ramps), suppresses no address, and
//   every event it raises carries payload.test = true (analytics skip those).

import type { OutboundRecipient } from '../../store/schema.ts'
import type { Outcome } from './deliver.ts'
import type { TraceRow } from './events.ts'

export const TEST_DOMAIN = 'postern.test'
/** What the simulated outcomes name as the answering server. */
export const SIMULATOR_MTA = 'simulator.postern.test'

export type SimulatedKind = 'delivered' | 'bounced' | 'complained' | 'deferred'

/** The magic outcome an address asks for (anything that is not magic is delivered). */
export function magicOutcome(address: string): SimulatedKind {
  const at = address.lastIndexOf('@')
  if (at < 0 || address.slice(at + 1).toLowerCase() !== TEST_DOMAIN) return 'delivered'
  const local = (address.slice(0, at).split('+')[0] as string).toLowerCase()
  return local === 'bounced' || local === 'complained' || local === 'deferred' ? local : 'delivered'
}

export interface SimulatedOutcome extends Outcome {
  /** Raise email.complained after the delivery (the complained@ recipient). */
  complaint?: boolean
}

/** The outcomes a real attempt at these recipients would have had, with a trace of the simulation. */
export function simulateDelivery(
  recipients: readonly OutboundRecipient[],
  attempt: number,
  now: number,
): { outcomes: SimulatedOutcome[]; trace: TraceRow[] } {
  const outcomes = recipients.map((recipient): SimulatedOutcome => {
    const kind = magicOutcome(recipient.address)
    const base = { recipient, mta: SIMULATOR_MTA }
    if (kind === 'bounced')
      return {
        ...base,
        code: 550,
        enhanced: '5.1.1',
        message: `5.1.1 <${recipient.address}>: Recipient address rejected: User unknown (test mode, simulated)`,
      }
    if (kind === 'deferred' && Number(recipient.attempts) === 0)
      return {
        ...base,
        code: 451,
        enhanced: '4.7.1',
        message: `4.7.1 <${recipient.address}>: Greylisted, try again later (test mode, simulated)`,
      }
    return {
      ...base,
      code: 250,
      enhanced: '2.0.0',
      message: '2.0.0 Ok: queued as TESTMODE (test mode, simulated; nothing was sent)',
      ...(kind === 'complained' ? { complaint: true } : {}),
    }
  })
  return {
    outcomes,
    trace: [
      {
        kind: 'simulated',
        attempt,
        at: now,
        detail: {
          note: 'test mode: no connection was made; outcomes are simulated',
          recipients: outcomes.map((o) => ({ recipient: o.recipient.address, code: o.code })),
        },
      },
    ],
  }
}
