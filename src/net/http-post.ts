// Postern's HTTP(S) POST for requests it makes to addresses its users give it (webhooks): the
// host is resolved through Postern's resolver (or is an IP literal), the connection is opened
// by the connect guard, so private, loopback and link-local targets are refused unless
// `net.connect_allow` lists them (SSRF). Shares the resolver lookup and the TLS handshake of
// https-get.ts (the MTA-STS client).
// Invariants:
// - Only addresses the guard allows are connected to; when the guard refuses every address the
//   error is REFUSED, and nothing was sent.
// - One request per connection, never pooled, never redirected: a 3xx is returned as it is.
// - The whole exchange (DNS, connect, TLS, response) within `timeoutMs`. At most `maxBytes` of
//   the body are read; past that the connection is closed and the response marked truncated
//   (the status is what matters; a receiver cannot make Postern buffer more).
// - Every failure is an HttpsGetError with a stable `code`; sockets are destroyed on any exit.

import { request } from 'node:http'
import { isIP, type Socket } from 'node:net'
import { rootCertificates } from 'node:tls'
import type { Resolver } from '../dns/resolver.ts'
import { type ConnectGuard, ConnectRefusedError } from './connect-guard.ts'
import { addresses, HttpsGetError, handshake } from './https-get.ts'

export interface HttpPostDeps {
  resolver: Pick<Resolver, 'resolve4' | 'resolve6'>
  connectGuard: Pick<ConnectGuard, 'connect'>
  /** PEM of extra CAs trusted besides the system roots (set only by tests). */
  ca?: string | null
}

export interface HttpPostRequest {
  /** http: or https: URL. */
  url: URL
  headers: Record<string, string>
  body: string
  timeoutMs: number
  maxBytes: number
}

export interface HttpPostResponse {
  status: number
  location: string | null
  body: Buffer
  /** The body was longer than maxBytes; `body` holds its first maxBytes. */
  truncated: boolean
  ip: string
}

export type HttpPost = (req: HttpPostRequest) => Promise<HttpPostResponse>

/** The bare host of a URL: brackets of an IPv6 literal removed, lower case, no trailing dot. */
export function urlHost(url: URL): string {
  return url.hostname
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/\.$/, '')
}

export function createHttpPost(deps: HttpPostDeps): HttpPost {
  const ca = deps.ca ? [...rootCertificates, deps.ca] : undefined
  return async (req) => {
    const { url } = req
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new HttpsGetError('PROTOCOL', `${url.protocol} URLs are not supported`)
    const host = urlHost(url)
    const tls = url.protocol === 'https:'
    const port = url.port ? Number(url.port) : tls ? 443 : 80
    if (tls && isIP(host))
      throw new HttpsGetError(
        'TLS',
        `https://${url.host}: an https URL needs a host name (its certificate is checked against it)`,
      )
    const deadline = Date.now() + req.timeoutMs
    const left = () => Math.max(1, deadline - Date.now())
    const live: { socket: { destroy(): void } | null; over: boolean } = { socket: null, over: false }
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        live.over = true
        live.socket?.destroy()
        reject(new HttpsGetError('TIMEOUT', `${url.origin} took longer than ${req.timeoutMs} ms`))
      }, req.timeoutMs)
    })
    const run = async (): Promise<HttpPostResponse> => {
      const ips = isIP(host) ? [host] : await addresses(deps.resolver, host)
      let socket: Socket | null = null
      let ip = ''
      const failures: string[] = []
      let refused = 0
      for (const candidate of ips) {
        if (live.over) break
        try {
          const plain = await deps.connectGuard.connect({ host: candidate, port, timeoutMs: left() })
          live.socket = plain
          if (live.over) break
          ip = candidate
          socket = tls ? await handshake(plain, host, ca, left()) : plain
          live.socket = socket
          break
        } catch (err) {
          if (err instanceof HttpsGetError) throw err
          if (err instanceof ConnectRefusedError) refused++
          failures.push(`${candidate}: ${(err as Error).message}`)
        }
      }
      if (live.over) throw new HttpsGetError('TIMEOUT', `${url.origin}: out of time`)
      if (!socket) {
        const code = refused === ips.length ? 'REFUSED' : 'CONNECT'
        throw new HttpsGetError(code, `cannot connect to ${host}: ${failures.join('; ')}`)
      }
      return await exchange(socket, url, req, ip)
    }
    try {
      return await Promise.race([run(), timeout])
    } finally {
      clearTimeout(timer)
      live.over = true
      live.socket?.destroy()
    }
  }
}

function exchange(socket: Socket, url: URL, req: HttpPostRequest, ip: string): Promise<HttpPostResponse> {
  return new Promise((resolve, reject) => {
    let settled = false
    const fail = (err: HttpsGetError) => {
      socket.destroy()
      if (settled) return
      settled = true
      reject(err)
    }
    const body = Buffer.from(req.body)
    const r = request(
      {
        createConnection: () => socket,
        method: 'POST',
        path: `${url.pathname}${url.search}`,
        setHost: false,
        headers: {
          host: url.host,
          'user-agent': 'Postern-Webhooks',
          'content-type': 'application/json',
          'content-length': String(body.length),
          connection: 'close',
          ...req.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        let size = 0
        const finish = (truncated: boolean) => {
          if (settled) return
          settled = true
          const location = res.headers.location
          resolve({
            status: res.statusCode ?? 0,
            location: typeof location === 'string' ? location : null,
            body: Buffer.concat(chunks, size),
            truncated,
            ip,
          })
          socket.destroy()
        }
        res.on('data', (chunk: Buffer) => {
          if (settled) return
          const room = req.maxBytes - size
          if (chunk.length > room) {
            chunks.push(chunk.subarray(0, room))
            size += room
            res.destroy()
            return finish(true)
          }
          chunks.push(chunk)
          size += chunk.length
        })
        res.on('end', () => finish(false))
        res.on('error', (err) =>
          fail(
            new HttpsGetError(
              'PROTOCOL',
              `reading the response from ${url.host} failed: ${err.message}`,
              err,
            ),
          ),
        )
        res.on('close', () => {
          if (!res.complete)
            fail(new HttpsGetError('PROTOCOL', `the response from ${url.host} was cut short`))
        })
      },
    )
    r.on('error', (err) =>
      fail(new HttpsGetError('PROTOCOL', `HTTP request to ${url.host} failed: ${err.message}`, err)),
    )
    r.end(body)
  })
}
