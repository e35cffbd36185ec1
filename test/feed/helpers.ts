// A live-feed client for tests: a real `ws` WebSocket to GET /v1/ws that collects frames and
// waits for the ones a test expects, or reports how the server refused the upgrade.

import type { IncomingMessage } from 'node:http'
import nodemailer from 'nodemailer'
import WebSocket from 'ws'
import { mail } from '../delivery/helpers.ts'

export interface Frame {
  type: string
  cursor?: string
  event?: { id: string; type: string; mailbox_id: string | null; payload: Record<string, unknown> }
  [k: string]: unknown
}

export interface FeedClient {
  ws: WebSocket
  frames: Frame[]
  /** Resolves with the first frame (from the start) matching `match` not yet taken. */
  next(match: (f: Frame) => boolean, ms?: number): Promise<Frame>
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>
  close(): Promise<void>
}

export function wsUrl(httpUrl: string, query = ''): string {
  return `${httpUrl.replace(/^http/, 'ws')}/v1/ws${query}`
}

export function openFeed(
  url: string,
  o: { headers?: Record<string, string>; protocols?: string[] } = {},
): Promise<FeedClient> {
  const ws = new WebSocket(url, o.protocols ?? [], { headers: o.headers ?? {} })
  const frames: Frame[] = []
  const taken = new Set<number>()
  const waiters: (() => void)[] = []
  ws.on('message', (d) => {
    frames.push(JSON.parse(String(d)) as Frame)
    for (const w of [...waiters]) w()
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => {
      resolve({ code, reason: String(reason) })
      for (const w of [...waiters]) w()
    }),
  )
  const client: FeedClient = {
    ws,
    frames,
    closed,
    next(match, ms = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const i = frames.findIndex((f, k) => !taken.has(k) && match(f))
          if (i >= 0) {
            taken.add(i)
            waiters.splice(waiters.indexOf(check), 1)
            clearTimeout(timer)
            resolve(frames[i] as Frame)
          }
        }
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1)
          reject(new Error(`no matching frame in ${ms} ms; frames: ${JSON.stringify(frames)}`))
        }, ms)
        waiters.push(check)
        check()
      })
    },
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return
      ws.close()
      await closed
    },
  }
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client))
    ws.once('error', reject)
  })
}

/** Opens a feed that the server must refuse; resolves with the HTTP status and body. */
export function refusedFeed(
  url: string,
  o: { headers?: Record<string, string>; protocols?: string[] } = {},
  // biome-ignore lint/suspicious/noExplicitAny: problem bodies are read field by field
): Promise<{ status: number; body: any }> {
  const ws = new WebSocket(url, o.protocols ?? [], { headers: o.headers ?? {} })
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.close()
      reject(new Error('the feed opened; it should have been refused'))
    })
    ws.once('unexpected-response', (req, res: IncomingMessage) => {
      let text = ''
      res.on('data', (d) => {
        text += d
      })
      res.on('end', () => {
        req.destroy()
        let body: unknown = text
        try {
          body = JSON.parse(text)
        } catch {}
        resolve({ status: res.statusCode ?? 0, body })
      })
    })
    ws.once('error', () => {})
  })
}

/** Delivers a plain message to `to` over SMTP at 127.0.0.1:`port`. */
export async function deliver(port: number, to: string, subject: string): Promise<void> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    tls: { rejectUnauthorized: false },
    name: 'mail.outside.example',
  })
  try {
    await transport.sendMail({
      envelope: { from: 'someone@outside.example', to: [to] },
      raw: mail({ from: 'someone@outside.example', to, subject }),
    })
  } finally {
    transport.close()
  }
}

export const isReceived = (subject: string) => (f: Frame) =>
  f.type === 'event' && f.event?.type === 'email.received' && f.event.payload.subject === subject
