// What each event counts as in deliverability analytics: the counter names, the event types
// that feed them, and the one function that maps an event to its counter. The fold job, the
// live tail of a summary and the tests' reference count all go through `counterOf`, so a
// definition changes in one place.
// Invariants: an event whose payload carries `test: true` (test-mode traffic) counts nowhere
// in live analytics, and only test events count in the test view a test key gets;
// `email.sent` counts once per recipient the message was sent to (the caller expands it),
// every other counted event once.

export const COUNTERS = [
  'sent',
  'delivered',
  'deferred',
  'bounced_hard',
  'bounced_soft',
  'complained',
  'opened',
  'clicked',
  'unsubscribed',
  'suppressed',
] as const
export type Counter = (typeof COUNTERS)[number]
export type Counts = Record<Counter, number>

/** The event types analytics reads; any other type is skipped by the fold. */
export const COUNTED_TYPES = [
  'email.sent',
  'email.delivered',
  'email.deferred',
  'email.bounced',
  'email.failed',
  'email.complained',
  'email.opened',
  'email.clicked',
  'email.unsubscribed',
  'email.suppressed',
] as const

export const zeroCounts = (): Counts => ({
  sent: 0,
  delivered: 0,
  deferred: 0,
  bounced_hard: 0,
  bounced_soft: 0,
  complained: 0,
  opened: 0,
  clicked: 0,
  unsubscribed: 0,
  suppressed: 0,
})

export function addCounts(into: Counts, more: Counts): Counts {
  for (const c of COUNTERS) into[c] += more[c]
  return into
}

/** The counter an event adds one to, or null when it counts nowhere (`test`: the test view). */
export function counterOf(type: string, payload: Record<string, unknown>, test = false): Counter | null {
  if ((payload.test === true) !== test) return null
  switch (type) {
    case 'email.sent':
      return 'sent'
    case 'email.delivered':
      return 'delivered'
    case 'email.deferred':
      return 'deferred'
    case 'email.bounced':
      // The worker and the DSN path both say whether the refusal was permanent.
      return payload.hard === false ? 'bounced_soft' : 'bounced_hard'
    case 'email.failed':
      // A recipient given up after only temporary failures (lifetime over) is a soft bounce;
      // the message-level `failed` (no recipient accepted) repeats its recipients' outcomes.
      return typeof payload.recipient === 'string' ? 'bounced_soft' : null
    case 'email.complained':
      return 'complained'
    // Opens and clicks a proxy, scanner or prefetch made (tracking flags them `bot`) are no
    // person's engagement.
    case 'email.opened':
      return payload.bot === true ? null : 'opened'
    case 'email.clicked':
      return payload.bot === true ? null : 'clicked'
    case 'email.unsubscribed':
      return 'unsubscribed'
    case 'email.suppressed':
      return 'suppressed'
    default:
      return null
  }
}

export interface Rates {
  delivery_rate: number | null
  bounce_rate: number | null
  hard_bounce_rate: number | null
  soft_bounce_rate: number | null
  deferral_rate: number | null
  complaint_rate: number | null
  open_rate: number | null
  click_rate: number | null
  click_to_open_rate: number | null
  unsubscribe_rate: number | null
}

const ratio = (n: number, d: number): number | null => (d > 0 ? Math.round((n / d) * 10_000) / 10_000 : null)

/** The rates of some counts (route description says what each divides by); null over zero. */
export function ratesOf(c: Counts): Rates {
  return {
    delivery_rate: ratio(c.delivered, c.sent),
    bounce_rate: ratio(c.bounced_hard + c.bounced_soft, c.sent),
    hard_bounce_rate: ratio(c.bounced_hard, c.sent),
    soft_bounce_rate: ratio(c.bounced_soft, c.sent),
    deferral_rate: ratio(c.deferred, c.sent),
    complaint_rate: ratio(c.complained, c.delivered),
    open_rate: ratio(c.opened, c.delivered),
    click_rate: ratio(c.clicked, c.delivered),
    click_to_open_rate: ratio(c.clicked, c.opened),
    unsubscribe_rate: ratio(c.unsubscribed, c.delivered),
  }
}
