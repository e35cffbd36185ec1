// Postern's own HTTPS GET for fetches it makes on its own behalf (MTA-STS policies): the host
// name is resolved through Postern's resolver, the connection is opened by the connect guard,
// and the certificate is verified for that host name. No library resolves or connects.
// Invariants:
// - Only IP addresses the resolver returned reach the connect guard (A first, then AAAA); an
//   address the guard refuses is skipped, the next one is tried.
// - The certificate must chain to the system CAs or the extra CA given (tests), and carry the
//   host name as a DNS-ID subjectAltName (RFC 6125; no fallback to the subject CN), which is
//   what RFC 8461 3.3 asks of a policy host.
// - One request per connection, never pooled, never redirected: a 3xx is returned as it is for
//   the caller to refuse (RFC 8461 3.3 forbids following it).
// - Limits: the whole exchange (DNS, connect, TLS, response) within `timeoutMs`, the body at
//   most `maxBytes` (a larger one fails, nothing is buffered past the limit).
// - Every failure is an HttpsGetError with a stable `code`; sockets are destroyed on any exit.

import { X509Certificate } from 'node:crypto'
import { request } from 'node:http'
import type { Socket } from 'node:net'
import {
  checkServerIdentity,
  type PeerCertificate,
  rootCertificates,
  type TLSSocket,
  connect as tlsConnect,
} from 'node:tls'
import type { Resolver } from '../dns/resolver.ts'
import { type ConnectGuard, ConnectRefusedError } from './connect-guard.ts'

export type HttpsGetErrorCode = 'DNS' | 'CONNECT' | 'REFUSED' | 'TLS' | 'TIMEOUT' | 'TOO_LARGE' | 'PROTOCOL'

export class HttpsGetError extends Error {
  readonly code: HttpsGetErrorCode

  constructor(code: HttpsGetErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'HttpsGetError'
    this.code = code
  }
}

export interface HttpsGetDeps {
  resolver: Pick<Resolver, 'resolve4' | 'resolve6'>
  connectGuard: Pick<ConnectGuard, 'connect'>
  /** PEM of extra CAs trusted besides the system roots (set only by tests). */
  ca?: string | null
}

export interface HttpsGetRequest {
  /** A DNS name (not an IP literal): the SNI name, the Host header and the certificate's name. */
  host: string
  port: number
  /** Absolute path, starting with '/'. */
  path: string
  timeoutMs: number
  maxBytes: number
}

export interface HttpsResponse {
  status: number
  /** The Content-Type header as sent, or null. */
  contentType: string | null
  /** The Location header of a redirect, or null. */
  location: string | null
  body: Buffer
  /** The address that answered. */
  ip: string
}

export type HttpsGet = (req: HttpsGetRequest) => Promise<HttpsResponse>

const HOST_NAME =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/

/** RFC 6125 DNS-ID check: the subjectAltName must name `host` (a wildcard only as the whole left-most label). */
export function checkDnsId(host: string, cert: PeerCertificate): Error | undefined {
  const err = checkServerIdentity(host, cert)
  if (err) return err
  try {
    const x509 = new X509Certificate(cert.raw)
    const ok = x509.checkHost(host, { subject: 'never', wildcards: true, partialWildcards: false })
    if (ok !== undefined) return undefined
  } catch {
    // an unreadable certificate fails below
  }
  return new Error(`the certificate does not name ${host} in its subjectAltName`)
}

export function createHttpsGet(deps: HttpsGetDeps): HttpsGet {
  const ca = deps.ca ? [...rootCertificates, deps.ca] : undefined

  return async (req) => {
    const host = req.host.trim().toLowerCase().replace(/\.$/, '')
    if (!HOST_NAME.test(host)) throw new HttpsGetError('PROTOCOL', `'${req.host}' is not a host name`)
    const deadline = Date.now() + req.timeoutMs
    const left = () => Math.max(1, deadline - Date.now())
    // The socket in use (destroyed on any exit), and whether time ran out (nothing new starts then).
    const live: { socket: { destroy(): void } | null; over: boolean } = { socket: null, over: false }
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        live.over = true
        live.socket?.destroy()
        reject(
          new HttpsGetError('TIMEOUT', `https://${host}${req.path} took longer than ${req.timeoutMs} ms`),
        )
      }, req.timeoutMs)
    })
    const run = async (): Promise<HttpsResponse> => {
      const ips = await addresses(deps.resolver, host)
      let socket: TLSSocket | null = null
      let ip = ''
      const failures: string[] = []
      for (const candidate of ips) {
        if (live.over) break
        try {
          const plain = await deps.connectGuard.connect({
            host: candidate,
            port: req.port,
            timeoutMs: left(),
          })
          live.socket = plain
          if (live.over) break
          ip = candidate
          socket = await handshake(plain, host, ca, left())
          live.socket = socket
          break
        } catch (err) {
          if (err instanceof HttpsGetError) throw err
          const why = err instanceof ConnectRefusedError ? err.message : (err as Error).message
          failures.push(`${candidate}: ${why}`)
        }
      }
      if (live.over) throw new HttpsGetError('TIMEOUT', `https://${host}${req.path}: out of time`)
      if (!socket) throw new HttpsGetError('CONNECT', `cannot connect to ${host}: ${failures.join('; ')}`)
      return await exchange(socket, host, req, ip)
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

/** The addresses of a host name through Postern's resolver (A first, then AAAA). */
export async function addresses(resolver: HttpsGetDeps['resolver'], host: string): Promise<string[]> {
  const errors: string[] = []
  for (const lookup of [() => resolver.resolve4(host), () => resolver.resolve6(host)]) {
    try {
      const ips = await lookup()
      if (ips.length > 0) return ips
    } catch (err) {
      errors.push((err as Error).message)
    }
  }
  throw new HttpsGetError('DNS', `${host} has no address${errors.length ? ` (${errors.join('; ')})` : ''}`)
}

/** TLS over a connected socket, verifying the certificate names `host` (checkDnsId). */
export function handshake(
  plain: Socket,
  host: string,
  ca: string[] | undefined,
  timeoutMs: number,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      socket: plain,
      servername: host,
      rejectUnauthorized: true,
      checkServerIdentity: (_name, cert) => checkDnsId(host, cert),
      ALPNProtocols: ['http/1.1'],
      ...(ca ? { ca } : {}),
    })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new HttpsGetError('TLS', `TLS handshake with ${host} not done within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.once('secureConnect', () => {
      clearTimeout(timer)
      resolve(socket)
    })
    socket.once('error', (err) => {
      clearTimeout(timer)
      socket.destroy()
      reject(new HttpsGetError('TLS', `TLS with ${host} failed: ${err.message}`, err))
    })
  })
}

function exchange(socket: TLSSocket, host: string, req: HttpsGetRequest, ip: string): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const fail = (err: HttpsGetError) => {
      socket.destroy()
      reject(err)
    }
    const r = request(
      {
        createConnection: () => socket,
        method: 'GET',
        path: req.path,
        setHost: false,
        headers: { host, 'user-agent': 'Postern', accept: 'text/plain', connection: 'close' },
      },
      (res) => {
        const declared = Number(res.headers['content-length'])
        if (Number.isFinite(declared) && declared > req.maxBytes) {
          res.destroy()
          return fail(
            new HttpsGetError('TOO_LARGE', `the response is ${declared} bytes; at most ${req.maxBytes}`),
          )
        }
        const chunks: Buffer[] = []
        let size = 0
        let done = false
        res.on('data', (chunk: Buffer) => {
          if (done) return
          size += chunk.length
          if (size > req.maxBytes) {
            done = true
            res.destroy()
            return fail(new HttpsGetError('TOO_LARGE', `the response is larger than ${req.maxBytes} bytes`))
          }
          chunks.push(chunk)
        })
        res.on('end', () => {
          if (done) return
          done = true
          if (!res.complete)
            return fail(new HttpsGetError('PROTOCOL', `the response from ${host} was cut short`))
          const location = res.headers.location
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'] ?? null,
            location: typeof location === 'string' ? location : null,
            body: Buffer.concat(chunks, size),
            ip,
          })
        })
        res.on('error', (err) => {
          if (done) return
          done = true
          fail(new HttpsGetError('PROTOCOL', `reading the response from ${host} failed: ${err.message}`, err))
        })
        res.on('close', () => {
          if (done) return
          done = true
          fail(new HttpsGetError('PROTOCOL', `the response from ${host} was cut short`))
        })
      },
    )
    r.on('error', (err) =>
      fail(new HttpsGetError('PROTOCOL', `HTTP request to ${host} failed: ${err.message}`, err)),
    )
    r.end()
  })
}
