// Tracking at compose time: what a send with track_opens, track_clicks or list_unsubscribe
// changes in the message (HTML links and pixel, List-Unsubscribe headers, RFC 8058) and the
// rows that remember it (tracked_messages, tracked_links), written in the enqueue transaction.
// Invariants: everything here happens before DKIM signing, so the signature covers the
// rewritten HTML and both List-Unsubscribe fields (mail/dkim-sign.ts signs them); the links
// stored are exactly the ones rewritten, by index.

import { trackHtml } from '../../mail/tracking-html.ts'
import type { Tx } from '../messages/context.ts'
import type { TrackingSettings } from './context.ts'
import { makeToken } from './tokens.ts'

export interface TrackingOptions {
  opens: boolean
  clicks: boolean
  unsubscribe: boolean
}

export interface TrackingPlan {
  key: string
  options: TrackingOptions
  /** The HTML to compose (null when the message has none). */
  html: string | null
  /** Header fields to add (List-Unsubscribe, List-Unsubscribe-Post). */
  headers: Record<string, string>
  links: string[]
  recipient: string | null
}

export const trackingUrl = (s: TrackingSettings, path: string) => `${s.baseUrl().replace(/\/+$/, '')}${path}`

/** The plan for one message, or null when it asks for nothing. */
export function planTracking(
  s: TrackingSettings,
  key: string,
  html: string | null,
  options: TrackingOptions,
  recipient: string | null,
): TrackingPlan | null {
  if (!options.opens && !options.clicks && !options.unsubscribe) return null
  let out = html
  let links: string[] = []
  if (html !== null && (options.opens || options.clicks)) {
    const t = trackHtml(html, {
      clickUrl: options.clicks ? (i) => trackingUrl(s, `/t/c/${makeToken(s.secret, 'click', key, i)}`) : null,
      pixelUrl: options.opens ? trackingUrl(s, `/t/o/${makeToken(s.secret, 'open', key)}`) : null,
    })
    out = t.html
    links = t.links
  }
  const headers: Record<string, string> = {}
  if (options.unsubscribe) {
    headers['List-Unsubscribe'] = `<${trackingUrl(s, `/t/u/${makeToken(s.secret, 'unsubscribe', key)}`)}>`
    headers['List-Unsubscribe-Post'] = 'List-Unsubscribe=One-Click'
  }
  return { key, options, html: out, headers, links, recipient }
}

/** The rows of a planned message, in the enqueue transaction (the queue id is known there). */
export async function recordTracking(
  tx: Tx,
  plan: TrackingPlan,
  orgId: string,
  outboundId: string,
  now: number,
): Promise<void> {
  await tx
    .insertInto('tracked_messages')
    .values({
      key: plan.key,
      org_id: orgId,
      outbound_id: outboundId,
      recipient: plan.recipient,
      track_opens: plan.options.opens ? 1 : 0,
      track_clicks: plan.options.clicks ? 1 : 0,
      list_unsubscribe: plan.options.unsubscribe ? 1 : 0,
      created_at: now,
    })
    .execute()
  if (plan.links.length > 0)
    await tx
      .insertInto('tracked_links')
      .values(plan.links.map((url, idx) => ({ message_key: plan.key, idx, org_id: orgId, url })))
      .execute()
}
