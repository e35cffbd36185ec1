// Applies rate-limit rules to a request: counts the hits, always sets the X-RateLimit-*
// headers, and refuses with 429 (Retry-After) when any rule is exhausted.

import type { FastifyReply } from 'fastify'
import { type RateLimiter, rateLimitedError, rateLimitHeaders } from '../services/ratelimit/limiter.ts'
import type { RateLimitRule } from '../services/ratelimit/rules.ts'

export async function enforceRateLimit(
  limiter: RateLimiter,
  reply: FastifyReply,
  what: string,
  hits: { rule: RateLimitRule; subject: string | null | undefined }[],
): Promise<void> {
  const real = hits.filter(
    (h): h is { rule: RateLimitRule; subject: string } => typeof h.subject === 'string' && h.subject !== '',
  )
  if (real.length === 0) return
  const decision = await limiter.hitAll(real)
  for (const [k, v] of Object.entries(rateLimitHeaders(decision))) reply.header(k, v)
  if (!decision.allowed) throw rateLimitedError(decision, what)
}
