// Authentication of received mail: SPF, DKIM, DMARC and ARC through mailauth, with every DNS
// lookup going through Postern's resolver (so tests and deployments control where queries go).
// Returns the header fields to prepend and the verdict the delivery policy needs; arcSeal adds
// an ARC set (RFC 8617) to a message we forward, attesting to what verifyMessage found.
// mailauth is loaded on first use: it is the largest library Postern has (with undici, joi and
// the public suffix list), and a server that has not received mail yet need not hold it.

import type { KeyObject } from 'node:crypto'
import type * as Mailauth from 'mailauth'
import { type Resolver, toMailauthResolver } from '../dns/resolver.ts'
import { headerFields } from './headers.ts'

export interface AuthVerdict {
  /** Received-SPF and Authentication-Results fields, CRLF-terminated, to prepend. */
  headers: string
  spf: string
  dkim: string
  dmarc: string
  /** The ARC chain as received: none, pass or fail (RFC 8617 4.4). */
  arc: 'none' | 'pass' | 'fail'
  /** d= of the ARC-Seal with the highest instance (the last sealer), lower case; null without ARC. */
  arcSealer: string | null
  /** The Authentication-Results payload (authserv-id and results) an ARC set of ours attests to. */
  arcAuthResults: string | null
  /** The author domain's effective DMARC policy when DMARC failed. */
  dmarcFailPolicy: 'reject' | 'quarantine' | 'none' | null
  /** One-line summary stored with the message, e.g. "spf=pass dkim=pass dmarc=pass". */
  summary: string
}

let mailauth: Promise<typeof Mailauth> | null = null
const loadMailauth = () => {
  mailauth ??= import('mailauth')
  return mailauth
}

export async function verifyMessage(
  raw: Buffer,
  opts: { ip: string; helo: string | null; mailFrom: string; authservId: string; resolver: Resolver },
): Promise<AuthVerdict> {
  const { authenticate } = await loadMailauth()
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
  const arcStatus = r.arc ? ((r.arc.status as { result?: string }).result ?? 'none').toLowerCase() : 'none'
  const arc = arcStatus === 'pass' || arcStatus === 'fail' ? arcStatus : 'none'
  return {
    headers: r.headers,
    spf,
    dkim,
    dmarc,
    arc,
    arcSealer: lastSealer(raw),
    arcAuthResults: (r.arc as { authResults?: string } | false)
      ? ((r.arc as { authResults?: string }).authResults ?? null)
      : null,
    dmarcFailPolicy: policy,
    summary: `spf=${spf} dkim=${dkim} dmarc=${dmarc}${arc === 'none' ? '' : ` arc=${arc}`}`,
  }
}

/** d= of the ARC-Seal with the highest i= (RFC 8617 4.1.1, 5.1), or null. */
export function lastSealer(raw: Buffer): string | null {
  let best: { i: number; d: string } | null = null
  for (const f of headerFields(raw)) {
    if (f.name !== 'arc-seal') continue
    const value = f.text.slice(f.text.indexOf(':') + 1).replace(/\s+/g, '')
    const i = Number(/(?:^|;)i=(\d+)/.exec(value)?.[1])
    const d = /(?:^|;)d=([^;]+)/.exec(value)?.[1]
    if (Number.isInteger(i) && d && (!best || i > best.i)) best = { i, d: d.toLowerCase().replace(/\.$/, '') }
  }
  return best?.d ?? null
}

export interface ArcSealKey {
  domain: string
  selector: string
  privateKey: string | KeyObject
}

/**
 * The ARC set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results, CRLF-terminated)
 * to prepend to `raw`, sealing the chain status `cv` and the results `authResults` we found
 * when the message arrived. Empty when mailauth cannot seal (a chain already at 50 sets, an
 * unusable key): the caller forwards unsealed.
 */
export async function arcSeal(
  raw: Buffer,
  o: { key: ArcSealKey; cv: 'none' | 'pass' | 'fail'; authResults: string; now: number },
): Promise<Buffer> {
  const pem =
    typeof o.key.privateKey === 'string'
      ? o.key.privateKey
      : (o.key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)
  const { sealMessage } = await loadMailauth()
  return sealMessage(raw, {
    signingDomain: o.key.domain,
    selector: o.key.selector,
    privateKey: pem,
    cv: o.cv,
    authResults: o.authResults,
    signTime: new Date(o.now),
  })
}
