// An MTA-STS policy host for tests: one HTTPS server on 127.0.0.1 answering for every
// `mta-sts.<domain>` a test publishes (the certificate is chosen by SNI), with what the test
// says to serve: a policy, another status, a redirect, a wrong type, an oversized body, or a
// certificate that is untrusted or names another host. Requests are counted per domain.
// The DNS side (the `_mta-sts` TXT record and the A record of the policy host) is published
// in the loopback DNS server by `publish`.

import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { createSecureContext, type SecureContext } from 'node:tls'
import { generateSelfSigned } from '../../src/tls/self-signed.ts'
import type { DnsServer } from '../helpers/dns-server.ts'
import type { TestCa } from '../helpers/test-ca.ts'

export interface PolicyAnswer {
  /** The policy text (default: built from mode, mx and max_age). */
  body?: string | Buffer
  status?: number
  contentType?: string | null
  headers?: Record<string, string>
  /** valid (from the test CA for mta-sts.<domain>), wrong-name (test CA, another name), untrusted (self-signed). */
  cert?: 'valid' | 'wrong-name' | 'untrusted'
}

export interface PolicyServer {
  port: number
  /** Requests served for a domain's policy host. */
  count(domain: string): number
  /** What `mta-sts.<domain>` serves from now on. */
  serve(domain: string, answer: PolicyAnswer): void
  close(): Promise<void>
}

/** A policy file (RFC 8461 3.2). */
export const policyText = (mode: string, mx: readonly string[], maxAge = 86_400): string =>
  ['version: STSv1', `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), `max_age: ${maxAge}`, ''].join('\r\n')

/** Publishes `_mta-sts.<domain>` with `id` and points mta-sts.<domain> at 127.0.0.1. */
export function publish(dns: DnsServer, domain: string, id: string): void {
  dns.set(`_mta-sts.${domain}`, 'TXT', [[`v=STSv1; id=${id}`]])
  dns.set(`mta-sts.${domain}`, 'A', ['127.0.0.1'])
}

export async function startPolicyServer(ca: TestCa): Promise<PolicyServer> {
  const answers = new Map<string, PolicyAnswer>()
  const counts = new Map<string, number>()
  const contexts = new Map<string, Promise<SecureContext>>()
  const contextFor = (servername: string): Promise<SecureContext> => {
    const host = servername.toLowerCase()
    const kind = answers.get(host.replace(/^mta-sts\./, ''))?.cert ?? 'valid'
    const key = `${kind}|${host}`
    let ctx = contexts.get(key)
    if (!ctx) {
      const pair =
        kind === 'untrusted'
          ? generateSelfSigned(host, Date.now())
          : ca.issue(kind === 'wrong-name' ? [`not-${host}`] : [host])
      ctx = pair.then((p) => createSecureContext(p))
      contexts.set(key, ctx)
    }
    return ctx
  }
  const fallback = await ca.issue(['policy-server.invalid'])
  const server: Server = createServer(
    {
      ...fallback,
      SNICallback: (name, cb) =>
        void contextFor(name).then(
          (c) => cb(null, c),
          (err: Error) => cb(err),
        ),
    },
    (req, res) => {
      const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '')
      const domain = host.replace(/^mta-sts\./, '')
      const answer = answers.get(domain)
      if (!answer || !host.startsWith('mta-sts.') || req.url !== '/.well-known/mta-sts.txt') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
        return
      }
      counts.set(domain, (counts.get(domain) ?? 0) + 1)
      const headers: Record<string, string> = { ...answer.headers }
      const type = answer.contentType === undefined ? 'text/plain; charset=utf-8' : answer.contentType
      if (type !== null) headers['content-type'] = type
      res.writeHead(answer.status ?? 200, headers).end(answer.body ?? '')
    },
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    count: (domain) => counts.get(domain) ?? 0,
    serve(domain, answer) {
      answers.set(domain, answer)
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
