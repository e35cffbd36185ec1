// Shared steps of the outbound tests: two Postern instances on one loopback DNS server, each
// with its own host name and verified domain, so mail goes from one to the other through a
// real MX lookup; waiting for an email to reach a state; the independent DKIM verifier.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import type { Clock } from '../../src/time/clock.ts'
import { setupOwner } from '../accounts/helpers.ts'
import { hostedOrg } from '../delivery/helpers.ts'
import { verifiedDomain } from '../domains/helpers.ts'
import type { Api } from '../helpers/api.ts'
import type { Dialect } from '../helpers/dialects.ts'
import type { DnsServer } from '../helpers/dns-server.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { requireTool, TOOLS } from '../helpers/tools.ts'

export const mxPort = (s: TestServer) => s.postern.listeners.find((l) => l.name === 'smtp-mx')?.port as number

export interface Receiver {
  server: TestServer
  api: Api
  domain: string
  ann: string
}

/** A receiving Postern: host mx.<domain>, a verified domain with mailbox ann, its MX in DNS. */
export async function startReceiver(
  dialect: Dialect,
  dns: DnsServer,
  domain = 'b.example',
): Promise<Receiver> {
  const server = await startTestServer(dialect, { dns, env: { POSTERN_HOSTNAME: `mx.${domain}` } })
  const { api, ann } = await hostedOrg(server, domain)
  dns.set(`mx.${domain}`, 'A', ['127.0.0.1'])
  return { server, api, domain, ann }
}

export interface Sender {
  server: TestServer
  api: Api
  /** An org-wide key with scope send. */
  send: Api
  domain: string
}

/** A sending Postern whose outbound MX port is `mxPort` (the receiver's), with a verified domain. */
export async function startSender(
  dialect: Dialect,
  dns: DnsServer,
  mxPortValue: number,
  o: { domain?: string; env?: Record<string, string>; clock?: Clock } = {},
): Promise<Sender> {
  const domain = o.domain ?? 'a.example'
  const server = await startTestServer(dialect, {
    dns,
    ...(o.clock ? { clock: o.clock } : {}),
    env: {
      POSTERN_HOSTNAME: `mx.${domain}`,
      POSTERN_OUTBOUND_MX_PORT: String(mxPortValue),
      POSTERN_OUTBOUND_POLL_MS: '50',
      POSTERN_OUTBOUND_RETRY_INTERVALS: '200ms,400ms',
      ...o.env,
    },
  })
  const api = await setupOwner(server, `owner@${domain}`, `Org ${domain}`)
  await verifiedDomain(api, dns, domain)
  dns.set(`mx.${domain}`, 'A', ['127.0.0.1'])
  const key = await api.post('/v1/api-keys', { name: 'sender', scope: 'send' })
  assert.equal(key.status, 201, key.text)
  return { server, api, send: api.withKey(key.body.key as string), domain }
}

/** Polls GET /v1/emails/{id} until `done` holds (or fails after `ms`). */
export async function waitForEmail(
  api: Api,
  id: string,
  done: (e: any) => boolean,
  ms = 15_000,
): Promise<any> {
  const until = Date.now() + ms
  let last: any = null
  while (Date.now() < until) {
    const r = await api.get(`/v1/emails/${id}`)
    assert.equal(r.status, 200, r.text)
    last = r.body
    if (done(last)) return last
    await new Promise((res) => setTimeout(res, 50))
  }
  assert.fail(`email ${id} did not reach the expected state; last: ${JSON.stringify(last, null, 2)}`)
}

/** Runs Debian's python3-dkim over the message; resolves with its output lines and exit code. */
export function pythonDkimVerify(raw: Buffer, dnsPort: number): Promise<{ code: number; out: string }> {
  requireTool(TOOLS.python3Dkim)
  return new Promise((resolve) => {
    const child = execFile(
      '/usr/bin/python3',
      [new URL('../helpers/dkim-verify.py', import.meta.url).pathname, String(dnsPort)],
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    )
    child.stdin?.end(raw)
  })
}
