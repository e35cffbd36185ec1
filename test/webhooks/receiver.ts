// A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records every request
// (headers and raw body) and answers as the test says (default: echo verification challenges,
// 200 to everything else). Signatures are checked with the `standardwebhooks` package, an
// implementation independent of Postern's.

import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'

export interface Received {
  path: string
  headers: Record<string, string>
  body: string
  json: { type: string; timestamp: string; data: Record<string, any> }
  at: number
}

export type Answer = { status: number; body?: string; headers?: Record<string, string> }
export type Responder = (r: Received) => Answer | Promise<Answer>

export interface TestReceiver {
  /** http://127.0.0.1:<port>/hook */
  url: string
  port: number
  received: Received[]
  /** Messages other than verification challenges. */
  messages(type?: string): Received[]
  respond: Responder
  /** Resolves when `pred` holds over what was received (fails after `ms`). */
  waitFor(pred: (all: Received[]) => boolean, ms?: number, what?: string): Promise<void>
  close(): Promise<void>
}

/** Echoes a verification challenge as JSON; 200 "ok" otherwise. */
export const echoChallenges: Responder = (r) =>
  r.json?.type === 'webhook.verification'
    ? {
        status: 200,
        body: JSON.stringify({ challenge: r.json.data.challenge }),
        headers: { 'content-type': 'application/json' },
      }
    : { status: 200, body: 'ok' }

export async function startReceiver(respond: Responder = echoChallenges): Promise<TestReceiver> {
  const received: Received[] = []
  const rx: TestReceiver = {
    url: '',
    port: 0,
    received,
    respond,
    messages: (type) =>
      received.filter(
        (r) => r.json?.type !== 'webhook.verification' && (type === undefined || r.json?.type === type),
      ),
    async waitFor(pred, ms = 20_000, what = 'the expected deliveries') {
      const until = Date.now() + ms
      while (Date.now() < until) {
        if (pred(received)) return
        await new Promise((r) => setTimeout(r, 20))
      }
      assert.fail(
        `receiver: timed out waiting for ${what}; got ${received.map((r) => r.json?.type).join(', ')}`,
      )
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks).toString('utf8')
    let json: Received['json']
    try {
      json = JSON.parse(body)
    } catch {
      json = undefined as never
    }
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v
    const r: Received = { path: req.url ?? '', headers, body, json, at: Date.now() }
    received.push(r)
    let a: Answer
    try {
      a = await rx.respond(r)
    } catch {
      a = { status: 500, body: 'receiver error' }
    }
    res.writeHead(a.status, a.headers ?? { 'content-type': 'text/plain' })
    res.end(a.body ?? '')
  })
  server.keepAliveTimeout = 100
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  rx.port = (server.address() as AddressInfo).port
  rx.url = `http://127.0.0.1:${rx.port}/hook`
  return rx
}

/** Verifies a received message with standardwebhooks; throws when the signature does not match `secret`. */
export function verifyWith(secret: string, r: Received): unknown {
  return new Webhook(secret).verify(r.body, {
    'webhook-id': r.headers['webhook-id'] ?? '',
    'webhook-timestamp': r.headers['webhook-timestamp'] ?? '',
    'webhook-signature': r.headers['webhook-signature'] ?? '',
  })
}

export const signedBy = (secret: string, r: Received): boolean => {
  try {
    verifyWith(secret, r)
    return true
  } catch {
    return false
  }
}
