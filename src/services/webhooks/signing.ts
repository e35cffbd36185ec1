// Standard Webhooks 1.0 signing: secrets are `whsec_<base64 of 24 random bytes>`; a message is
// signed as `v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>` where the
// key is the secret's decoded bytes; `webhook-signature` carries one signature per live secret,
// space separated (the new one first during a rotation's grace period).
// Secrets are stored sealed (secrets/seal.ts) with a context naming the endpoint, so a sealed
// secret cannot be moved to another endpoint or purpose.

import { createHmac, randomBytes } from 'node:crypto'
import { seal, unseal } from '../secrets/seal.ts'

const PREFIX = 'whsec_'

export function newSecret(): string {
  return `${PREFIX}${randomBytes(24).toString('base64')}`
}

const keyOf = (secret: string): Buffer =>
  Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64')

export function sign(secret: string, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', keyOf(secret)).update(`${id}.${timestampSeconds}.${body}`).digest('base64')
  return `v1,${mac}`
}

/** The headers of one signed message (Standard Webhooks 1.0). */
export function signedHeaders(
  secrets: readonly string[],
  id: string,
  timestampSeconds: number,
  body: string,
): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': secrets.map((s) => sign(s, id, timestampSeconds, body)).join(' '),
  }
}

const context = (webhookId: string) => `webhook-secret:${webhookId}`

export const sealSecret = (kek: Buffer, webhookId: string, secret: string): string =>
  seal(kek, context(webhookId), secret)

export const openSecret = (kek: Buffer, webhookId: string, sealed: string): string =>
  unseal(kek, context(webhookId), sealed).toString('utf8')
