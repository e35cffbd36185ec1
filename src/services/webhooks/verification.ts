// Endpoint verification: before an endpoint gets traffic it must prove it wants it (Slack's
// url_verification, signed as Standard Webhooks messages are). Postern POSTs
//   {"type":"webhook.verification","timestamp":"<ISO>","data":{"webhook_id":"whk_...","challenge":"<random>"}}
// with the usual webhook-id, webhook-timestamp and webhook-signature headers; the receiver
// answers 2xx with the challenge, either as the whole body or as JSON {"challenge":"..."}.
// A receiver that cannot answer inline may post the challenge back later through
// POST /v1/webhooks/{id}/verify {"challenge": "..."} while it is valid (24 h).
// Invariants: only a hash of the challenge is stored; a challenge is accepted once; a 3xx is
// never followed (it fails verification).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { HttpsGetError } from '../../net/https-get.ts'
import type { Webhook } from '../../store/schema.ts'
import type { WebhooksContext } from './context.ts'
import { openSecret, signedHeaders } from './signing.ts'

export interface ChallengeResult {
  ok: boolean
  status_code: number | null
  error: string | null
}

export const newChallenge = (): string => randomBytes(24).toString('base64url')

export const challengeHash = (challenge: string): string =>
  createHash('sha256').update(challenge).digest('hex')

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** The secrets that sign a message to `hook` now: the current one, and the previous during its grace. */
export function liveSecrets(
  ctx: Pick<WebhooksContext, 'keyEncryptionKey'>,
  hook: Webhook,
  now: number,
): string[] {
  const out = [openSecret(ctx.keyEncryptionKey, hook.id, hook.secret_enc)]
  if (hook.old_secret_enc && hook.old_secret_until !== null && Number(hook.old_secret_until) > now)
    out.push(openSecret(ctx.keyEncryptionKey, hook.id, hook.old_secret_enc))
  return out
}

/** Whether a response body echoes the challenge (plain text or JSON {challenge}). */
function echoes(body: string, challenge: string): boolean {
  const text = body.trim()
  if (text === challenge) return true
  try {
    const v = JSON.parse(text) as { challenge?: unknown }
    return typeof v === 'object' && v !== null && v.challenge === challenge
  } catch {
    return false
  }
}

/** POSTs the challenge to the endpoint and says whether it was echoed. */
export async function sendChallenge(
  ctx: WebhooksContext,
  hook: Webhook,
  challenge: string,
): Promise<ChallengeResult> {
  const now = ctx.clock.now()
  const body = JSON.stringify({
    type: 'webhook.verification',
    timestamp: new Date(now).toISOString(),
    data: { webhook_id: hook.id, challenge },
  })
  const id = `wvr_${randomBytes(12).toString('hex')}`
  try {
    const res = await ctx.post({
      url: new URL(hook.url),
      headers: signedHeaders(liveSecrets(ctx, hook, now), id, Math.floor(now / 1000), body),
      body,
      timeoutMs: ctx.settings.timeoutMs,
      maxBytes: 1024,
    })
    if (res.status < 200 || res.status > 299)
      return {
        ok: false,
        status_code: res.status,
        error:
          res.status >= 300 && res.status < 400
            ? `answered a redirect (${res.status}); redirects are not followed`
            : `answered ${res.status}`,
      }
    if (!echoes(res.body.toString('utf8'), challenge))
      return { ok: false, status_code: res.status, error: 'the response did not echo the challenge' }
    return { ok: true, status_code: res.status, error: null }
  } catch (err) {
    const code = err instanceof HttpsGetError ? err.code : 'ERROR'
    return { ok: false, status_code: null, error: `${code}: ${(err as Error).message}` }
  }
}
