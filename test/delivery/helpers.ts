// Shared steps of the inbound tests: an outside sender domain published in the loopback DNS
// (SPF for 127.0.0.1, a DKIM key, a DMARC policy), messages signed with its key, and a hosted
// org with verified domain and mailboxes.

import { generateKeyPairSync } from 'node:crypto'
import { dkimSign } from 'mailauth'
import { setupOwner } from '../accounts/helpers.ts'
import { verifiedDomain } from '../domains/helpers.ts'
import type { Api } from '../helpers/api.ts'
import type { DnsServer } from '../helpers/dns-server.ts'
import type { TestServer } from '../helpers/server.ts'

export interface Sender {
  domain: string
  sign(message: string): Promise<string>
}

/** An outside domain: SPF allows 127.0.0.1, DKIM selector `s1`, DMARC with the given policy. */
export function senderDomain(
  dns: DnsServer,
  domain: string,
  policy: 'none' | 'quarantine' | 'reject',
): Sender {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const p = (publicKey.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64')
  dns.set(domain, 'TXT', [['v=spf1 ip4:127.0.0.1 -all']])
  dns.set(`s1._domainkey.${domain}`, 'TXT', [[`v=DKIM1; k=rsa; p=${p}`]])
  dns.set(`_dmarc.${domain}`, 'TXT', [[`v=DMARC1; p=${policy}`]])
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  return {
    domain,
    async sign(message) {
      // mailauth 7 signs from signatureData; the flat form of the options silently signs nothing.
      const r = await dkimSign(message, {
        signatureData: [
          { signingDomain: domain, selector: 's1', privateKey: pem, canonicalization: 'relaxed/relaxed' },
        ],
      } as never)
      if (!r.signatures) throw new Error(`dkimSign made no signature: ${JSON.stringify(r.errors)}`)
      return r.signatures + message
    },
  }
}

export function mail(o: {
  from: string
  to: string
  subject: string
  body?: string
  headers?: string[]
}): string {
  return [
    `From: Sender <${o.from}>`,
    `To: <${o.to}>`,
    `Subject: ${o.subject}`,
    `Date: Sat, 21 Nov 2026 08:00:00 +0000`,
    `Message-ID: <${Math.random().toString(36).slice(2)}@${o.from.split('@')[1]}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    ...(o.headers ?? []),
    '',
    o.body ?? 'Hello there.\r\nThis is the body.',
    '',
  ].join('\r\n')
}

/** An owner with a verified domain and mailboxes `ann` and `bob`. */
export async function hostedOrg(
  s: TestServer,
  domain = 'hosted.example',
): Promise<{ api: Api; domain: string; ann: string; bob: string }> {
  const api = await setupOwner(s)
  await verifiedDomain(api, s.dns, domain)
  // Owned by the signed-in owner, so the session may read their mail (DESIGN: access to mail is by grant).
  const me = (await api.get('/v1/me')).body.id as string
  const ann = (await api.post('/v1/mailboxes', { domain, local_part: 'ann', owner_user_id: me })).body.mailbox
    .id as string
  const bob = (await api.post('/v1/mailboxes', { domain, local_part: 'bob', owner_user_id: me })).body.mailbox
    .id as string
  return { api, domain, ann, bob }
}
