// Authentication of received mail: SPF, DKIM, DMARC and ARC through mailauth, with every DNS
// lookup going through Postern's resolver (so tests and deployments control where queries go).
// Returns the header fields to prepend and the verdict the delivery policy needs.

import { authenticate } from 'mailauth'
import { type Resolver, toMailauthResolver } from '../dns/resolver.ts'

export interface AuthVerdict {
  /** Received-SPF and Authentication-Results fields, CRLF-terminated, to prepend. */
  headers: string
  spf: string
  dkim: string
  dmarc: string
  /** The author domain's effective DMARC policy when DMARC failed. */
  dmarcFailPolicy: 'reject' | 'quarantine' | 'none' | null
  /** One-line summary stored with the message, e.g. "spf=pass dkim=pass dmarc=pass". */
  summary: string
}

export async function verifyMessage(
  raw: Buffer,
  opts: { ip: string; helo: string | null; mailFrom: string; authservId: string; resolver: Resolver },
): Promise<AuthVerdict> {
  const r = await authenticate(raw, {
    ip: opts.ip,
    helo: opts.helo ?? undefined,
    sender: opts.mailFrom || undefined,
    mta: opts.authservId,
    resolver: toMailauthResolver(opts.resolver) as never,
    trustReceived: false,
    disableBimi: true,
  })
  const spf =
    (r.spf && typeof r.spf === 'object' && 'status' in r.spf
      ? (r.spf.status as { result?: string }).result
      : undefined) ?? 'none'
  const dkimResults = (r.dkim?.results ?? []).map((x) => (x.status as { result?: string }).result ?? 'none')
  const dkim = dkimResults.includes('pass') ? 'pass' : (dkimResults[0] ?? 'none')
  const dmarc = r.dmarc ? ((r.dmarc.status as { result?: string }).result ?? 'none') : 'none'
  const policy =
    r.dmarc && dmarc === 'fail'
      ? (((r.dmarc as { policy?: string }).policy as 'reject' | 'quarantine' | 'none' | undefined) ?? 'none')
      : null
  return {
    headers: r.headers,
    spf,
    dkim,
    dmarc,
    dmarcFailPolicy: policy,
    summary: `spf=${spf} dkim=${dkim} dmarc=${dmarc}`,
  }
}
