// Telling machine opens and clicks from people's, so tracking events can be flagged (never
// dropped): Apple Mail Privacy Protection fetches every image through Apple's proxies when
// mail arrives; security gateways and link scanners follow every link; previews and
// prefetches fetch within a moment of delivery. The event says `bot: true` and why.
// Invariant: a pure function of what the request showed and the time since delivery.

export type BotReason = 'apple_mpp' | 'link_scanner' | 'no_user_agent' | 'prefetch' | 'head_request'

export interface HitFacts {
  kind: 'open' | 'click'
  method: string
  userAgent: string | null
  ip: string | null
  /** Milliseconds since the message was delivered (or queued, when no delivery is known). */
  sinceDeliveryMs: number | null
  prefetchWindowMs: number
}

/** User agents of mail security gateways, scanners and preview fetchers (substrings). */
const SCANNERS =
  /\b(bot|crawler|spider|scanner|preview|barracuda|mimecast|proofpoint|urldefense|safelinks|symantec|messagelabs|trendmicro|fortinet|sophos|forcepoint|cloudmark|python-requests|python-urllib|curl|wget|go-http-client|java\/|okhttp|libwww|headlesschrome|phantomjs)\b/i

/** Apple's proxies (AS714 announces 17.0.0.0/8). */
const isAppleAddress = (ip: string | null) => ip !== null && /^(::ffff:)?17\.\d+\.\d+\.\d+$/.test(ip)

export function botReason(f: HitFacts): BotReason | null {
  const ua = f.userAgent?.trim() ?? ''
  if (f.method === 'HEAD') return 'head_request'
  if (f.kind === 'open' && (isAppleAddress(f.ip) || ua === 'Mozilla/5.0')) return 'apple_mpp'
  if (ua === '') return 'no_user_agent'
  if (SCANNERS.test(ua)) return 'link_scanner'
  if (f.sinceDeliveryMs !== null && f.sinceDeliveryMs >= 0 && f.sinceDeliveryMs < f.prefetchWindowMs)
    return 'prefetch'
  return null
}
