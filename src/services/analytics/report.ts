// The deliverability report of seed 004 (GET /v1/debug/deliverability/report): one answer
// an operator reads when mail goes missing, made of the analytics services' parts (the
// summary, the worst recipient and sending domains, the latest problems) over one scope.
// Invariant: it counts exactly what the summary counts over the same scope.

import type { Counts } from './counters.ts'
import {
  type AnalyticsContext,
  deliverabilitySummary,
  deliverabilityTimeseries,
  type Summary,
} from './query.ts'
import { type Outcome, recentOutcomes } from './recent.ts'
import type { AnalyticsScope } from './scope.ts'

export interface DomainLine {
  domain: string
  counts: Counts & { bounced: number }
  rates: Summary['rates']
}

export interface Report {
  object: 'deliverability_report'
  from: string
  to: string
  summary: Pick<Summary, 'counts' | 'rates'>
  recipient_domains: DomainLine[]
  sending_domains: DomainLine[]
  recent_problems: Outcome[]
}

export async function deliverabilityReport(ctx: AnalyticsContext, s: AnalyticsScope): Promise<Report> {
  const summary = await deliverabilitySummary(ctx, s)
  const lines = async (group_by: 'recipient_domain' | 'sending_domain') =>
    (await deliverabilityTimeseries(ctx, s, { interval: 'day', group_by, limit: 10 })).series.map((x) => ({
      domain: x.group ?? '',
      counts: x.totals,
      rates: x.rates,
    }))
  const problems = await recentOutcomes(ctx, s, {
    types: ['bounced', 'complained', 'failed', 'deferred'],
    limit: 20,
  })
  return {
    object: 'deliverability_report',
    from: summary.from,
    to: summary.to,
    summary: { counts: summary.counts, rates: summary.rates },
    recipient_domains: await lines('recipient_domain'),
    sending_domains: await lines('sending_domain'),
    recent_problems: problems.data,
  }
}
