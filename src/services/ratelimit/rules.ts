// Rate-limit rules: the named limits Postern applies (sign-up, log-in, password reset, sending,
// admin job runs), read from the `rate_limits.*` config keys written `<count>/<window>`.
// Invariants: a rule's name is stable (it prefixes the counter rows in `rate_limits`, so renaming
// one restarts its counters); limit and window are positive safe integers; parsing fails fast,
// at start, with the offending text in the message.

import type { Config } from '../../config/schema.ts'

export interface RateLimitRule {
  /** Stable name, the prefix of the rule's counter keys. */
  name: string
  /** Hits allowed per window. */
  limit: number
  /** Window length in milliseconds (fixed windows, starting at a subject's first hit). */
  windowMs: number
}

export const RATE_LIMIT_RULE_NAMES = [
  'signup',
  'login_ip',
  'login_email',
  'forgot_ip',
  'forgot_email',
  'verify_email',
  'setup',
  'send_ip',
  'send_user',
  'send_key',
  'admin_jobs',
  'forward_alias',
  'tracking_message',
] as const

export type RateLimitRuleName = (typeof RATE_LIMIT_RULE_NAMES)[number]

const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Parses `10/15m` (units s, m, h, d) into a limit and a window. Throws on anything else. */
export function parseRate(text: string): { limit: number; windowMs: number } {
  const m = /^(\d+)\/(\d+)([smhd])$/.exec(text.trim())
  if (!m) throw new Error(`invalid rate '${text}': write <count>/<window>, e.g. 10/15m (units s, m, h, d)`)
  const limit = Number(m[1])
  const windowMs = Number(m[2]) * (UNIT_MS[m[3] as string] as number)
  if (limit < 1 || windowMs < 1)
    throw new Error(`invalid rate '${text}': count and window must be at least 1`)
  if (!Number.isSafeInteger(limit) || !Number.isSafeInteger(windowMs))
    throw new Error(`invalid rate '${text}': count or window too large`)
  return { limit, windowMs }
}

/** Every rule Postern applies, from the `rate_limits.*` config keys. */
export function rulesFromConfig(config: Config): Record<RateLimitRuleName, RateLimitRule> {
  const rules = {} as Record<RateLimitRuleName, RateLimitRule>
  for (const name of RATE_LIMIT_RULE_NAMES) {
    try {
      rules[name] = { name, ...parseRate(config.rate_limits[name]) }
    } catch (err) {
      throw new Error(`rate_limits.${name}: ${(err as Error).message}`, { cause: err })
    }
  }
  return rules
}
