// The DNS records a hosted domain must publish for Postern to receive, sign and be found for
// its mail, exactly as they appear in DNS, plus the two renderings operators copy from: a BIND
// zone-file snippet and the MTA-STS policy file. Pure: no lookups, no clock, no config reads
// (the caller passes hostname, ports and the `domains.*` settings in).
// Invariants:
// - Names are fully qualified, lower-case, without a trailing dot; targets likewise.
// - Only the ownership TXT and the MX are `required` (they gate verification); everything else
//   is recommended and reported, never blocking.
// - A CNAME whose owner would be the mail host itself is left out (it would point at itself).
// - A port of 0 means the service is not offered and is published as such (RFC 6186 section 4).

import { ServiceError } from '../errors.ts'

export type RecordPurpose =
  | 'ownership'
  | 'mx'
  | 'spf'
  | 'dkim'
  | 'dmarc'
  | 'mta-sts'
  | 'tls-rpt'
  | 'srv-submission'
  | 'srv-submissions'
  | 'srv-imap'
  | 'srv-imaps'
  | 'autoconfig'
  | 'autodiscover'

export interface DnsRecord {
  type: 'MX' | 'TXT' | 'CNAME' | 'SRV'
  /** Fully qualified, no trailing dot. */
  name: string
  /** As it appears in DNS: MX 'priority host', SRV 'priority weight port target', TXT the full text. */
  value: string
  ttl: number
  purpose: RecordPurpose
  /** Ownership and MX are required to verify the domain. */
  required: boolean
  /** One line saying why the record is there. */
  note: string
}

export interface DkimKeyInput {
  selector: string
  algorithm: 'rsa' | 'ed25519'
  /** The p= value: base64 of the SPKI DER for RSA, of the raw 32-byte key for Ed25519 (RFC 8463). */
  publicKey: string
}

export interface DomainDnsInput {
  /** Normalised (A-labels). */
  domain: string
  ownershipToken: string
  /** The server's host name (config `hostname`): MX target, SRV targets, CNAME target. */
  mailHost: string
  dkim: DkimKeyInput[]
  /** 0 for a service that is not offered. */
  ports: { submission: number; submissions: number; imap: number; imaps: number }
  dmarcPolicy: 'none' | 'quarantine' | 'reject'
  mtaStsMode: 'testing' | 'enforce' | 'none'
  /** Changes whenever the policy changes (RFC 8461 section 3.1 id). */
  mtaStsId: string
  ttl: number
}

/** The TXT value that proves control of a domain, published at `_postern.<domain>`. */
export const ownershipValue = (token: string): string => `postern-verification=${token}`

/** The name the ownership TXT is published at. */
export const ownershipName = (domain: string): string => `_postern.${fqdn(domain)}`

const fqdn = (name: string): string => name.trim().toLowerCase().replace(/\.$/, '')

const invalid = (field: string, message: string): ServiceError =>
  new ServiceError('invalid', 'DNS_RECORD_INPUT_INVALID', message, { details: [{ field, message }] })

// RFC 1035 section 2.3.1 labels, with the underscore some providers allow in selectors.
const HOST_RE =
  /^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$/

const SRV_SERVICES = [
  // RFC 6186 section 3.1 (submission, STARTTLS) and RFC 8314 section 5.1 (implicit TLS).
  {
    purpose: 'srv-submission',
    label: '_submission._tcp',
    port: 'submission',
    what: 'message submission (STARTTLS)',
  },
  {
    purpose: 'srv-submissions',
    label: '_submissions._tcp',
    port: 'submissions',
    what: 'message submission (implicit TLS)',
  },
  // RFC 6186 section 3.2 (IMAP, STARTTLS) and imaps (implicit TLS, RFC 8314 section 3).
  { purpose: 'srv-imap', label: '_imap._tcp', port: 'imap', what: 'IMAP (STARTTLS)' },
  { purpose: 'srv-imaps', label: '_imaps._tcp', port: 'imaps', what: 'IMAP (implicit TLS)' },
] as const

export function domainDnsRecords(input: DomainDnsInput): DnsRecord[] {
  const domain = fqdn(input.domain)
  const host = fqdn(input.mailHost)
  if (!HOST_RE.test(domain)) throw invalid('domain', `'${input.domain}' is not a domain name in A-labels`)
  if (!HOST_RE.test(host)) throw invalid('mailHost', `'${input.mailHost}' is not a host name`)
  if (!/^[\x21-\x7e]+$/.test(input.ownershipToken) || input.ownershipToken.includes('"')) {
    throw invalid('ownershipToken', 'the ownership token must be printable ASCII without spaces or quotes')
  }
  // RFC 8461 section 3.1: id = 1*32(ALPHA / DIGIT).
  if (input.mtaStsMode !== 'none' && !/^[A-Za-z0-9]{1,32}$/.test(input.mtaStsId)) {
    throw invalid('mtaStsId', 'the MTA-STS id must be 1 to 32 letters or digits (RFC 8461 section 3.1)')
  }
  if (!Number.isInteger(input.ttl) || input.ttl < 0 || input.ttl > 2_147_483_647) {
    throw invalid('ttl', 'the TTL must be a whole number of seconds (RFC 2181 section 8)')
  }
  const ttl = input.ttl
  const records: DnsRecord[] = []
  const add = (r: Omit<DnsRecord, 'ttl' | 'required'> & { required?: boolean }): void => {
    records.push({ ...r, ttl, required: r.required ?? false })
  }
  const cname = (name: string, purpose: RecordPurpose, note: string): void => {
    // The mail host already answers under its own name; a CNAME there would point at itself.
    if (name !== host) add({ type: 'CNAME', name, value: host, purpose, note })
  }

  add({
    type: 'TXT',
    name: ownershipName(domain),
    value: ownershipValue(input.ownershipToken),
    purpose: 'ownership',
    required: true,
    note: 'Proves you control this domain; Postern verifies the domain when it finds this token.',
  })
  add({
    type: 'MX',
    name: domain,
    value: `10 ${host}`, // RFC 5321 section 5.1: mail for the domain goes to the MX host
    purpose: 'mx',
    required: true,
    note: `Routes mail for ${domain} to this server (${host}).`,
  })
  add({
    type: 'TXT',
    name: domain,
    // RFC 7208 section 5.4: "mx" authorises the hosts the domain's MX names, i.e. this server,
    // so the record stays right if the server's address changes; "-all" fails everyone else.
    value: 'v=spf1 mx -all',
    purpose: 'spf',
    note: 'SPF: authorises the hosts in your MX (this server) to send for the domain and rejects the rest; merge into any existing v=spf1 record, never publish two.',
  })
  for (const key of input.dkim) {
    const selector = fqdn(key.selector)
    if (!HOST_RE.test(selector)) throw invalid('dkim.selector', `'${key.selector}' is not a DKIM selector`)
    const p = key.publicKey.replace(/\s+/g, '')
    if (!/^[A-Za-z0-9+/]+=*$/.test(p)) throw invalid('dkim.publicKey', `the ${selector} key is not base64`)
    add({
      type: 'TXT',
      name: `${selector}._domainkey.${domain}`, // RFC 6376 section 3.6.2.1
      // RFC 6376 section 3.6.1 tags; k=ed25519 per RFC 8463 section 4.
      value: `v=DKIM1; k=${key.algorithm}; p=${p}`,
      purpose: 'dkim',
      note: `DKIM public key (${key.algorithm === 'rsa' ? 'RSA' : 'Ed25519'}, selector ${selector}) that receivers use to check the signatures this server adds.`,
    })
  }
  add({
    type: 'TXT',
    name: `_dmarc.${domain}`, // RFC 7489 section 6.1
    // RFC 7489 section 6.3: p= is required; rua= in the same domain needs no external
    // authorisation (section 7.1). adkim/aspf stay relaxed (the default) so subdomains align.
    value: `v=DMARC1; p=${input.dmarcPolicy}; rua=mailto:dmarc-reports@${domain}`,
    purpose: 'dmarc',
    note: `DMARC: tells receivers what to do with mail that fails SPF and DKIM alignment (p=${input.dmarcPolicy}) and to send aggregate reports to dmarc-reports@${domain} (create that address, or change rua=).`,
  })
  if (input.mtaStsMode !== 'none') {
    add({
      type: 'TXT',
      name: `_mta-sts.${domain}`,
      value: `v=STSv1; id=${input.mtaStsId}`, // RFC 8461 section 3.1
      purpose: 'mta-sts',
      note:
        input.mtaStsMode === 'enforce'
          ? 'MTA-STS: tells senders to deliver to your MX only over verified TLS; the id changes whenever the policy does.'
          : 'MTA-STS (testing): tells senders to report, not yet refuse, delivery to your MX without verified TLS; the id changes whenever the policy does.',
    })
    cname(
      `mta-sts.${domain}`,
      'mta-sts',
      // RFC 8461 section 3.3: the policy is fetched over HTTPS from mta-sts.<domain>.
      `MTA-STS policy host: senders fetch https://mta-sts.${domain}/.well-known/mta-sts.txt from this server (its certificate must cover the name).`,
    )
  }
  add({
    type: 'TXT',
    name: `_smtp._tls.${domain}`,
    value: `v=TLSRPTv1; rua=mailto:tls-reports@${domain}`, // RFC 8460 section 3
    purpose: 'tls-rpt',
    note: `SMTP TLS reporting: senders report TLS failures delivering to you to tls-reports@${domain} (create that address, or change rua=).`,
  })
  for (const srv of SRV_SERVICES) {
    const port = input.ports[srv.port]
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw invalid(`ports.${srv.port}`, `port ${port} is not a TCP port`)
    }
    add({
      type: 'SRV',
      name: `${srv.label}.${domain}`,
      // RFC 2782: priority weight port target; RFC 6186 section 4: target "." = not offered.
      value: port === 0 ? '0 0 0 .' : `0 1 ${port} ${host}`,
      purpose: srv.purpose,
      note:
        port === 0
          ? `Tells mail clients ${srv.what} is not offered (RFC 6186).`
          : `Lets mail clients find ${srv.what} on ${host} port ${port} (RFC 6186).`,
    })
  }
  cname(
    `autoconfig.${domain}`,
    'autoconfig',
    'Thunderbird-style autoconfiguration: mail clients fetch their settings from this server.',
  )
  cname(
    `autodiscover.${domain}`,
    'autodiscover',
    'Outlook-style autodiscover: mail clients fetch their settings from this server.',
  )
  return records
}

// ---- BIND zone-file snippet ----

/** A BIND zone-file snippet of the records (owner names with trailing dots, TXT split into <=255-octet quoted strings, comments with the purpose). */
export function zoneFileSnippet(records: DnsRecord[]): string {
  const lines: string[] = []
  for (const r of records) {
    lines.push(`; ${r.purpose}${r.required ? ' (required)' : ''}: ${r.note.replace(/[\r\n]+/g, ' ')}`)
    lines.push(`${absolute(r.name)}\t${r.ttl}\tIN\t${r.type}\t${rdata(r)}`)
  }
  return `${lines.join('\n')}\n`
}

/** A name in master-file form: with the trailing dot that makes it absolute (RFC 1035 section 5.1). */
const absolute = (name: string): string => (name === '.' || name.endsWith('.') ? name : `${name}.`)

function rdata(r: DnsRecord): string {
  switch (r.type) {
    case 'TXT': {
      const strings = characterStrings(r.value).map(quote)
      // Parentheses let one record span lines (RFC 1035 section 5.1).
      return strings.length === 1 ? (strings[0] ?? '""') : `( ${strings.join('\n\t\t\t\t')} )`
    }
    case 'MX':
    case 'SRV': {
      // The target is the last field; everything before it is numbers.
      const fields = r.value.trim().split(/\s+/)
      const target = fields.pop() ?? '.'
      return [...fields, absolute(target)].join(' ')
    }
    case 'CNAME':
      return absolute(r.value.trim())
  }
}

/** Splits a TXT value into character-strings of at most 255 octets (RFC 1035 section 3.3.14), never inside a UTF-8 sequence. */
function characterStrings(value: string): Buffer[] {
  const bytes = Buffer.from(value, 'utf8')
  if (bytes.length === 0) return [bytes]
  const out: Buffer[] = []
  let start = 0
  while (start < bytes.length) {
    let end = Math.min(start + 255, bytes.length)
    // Back off over UTF-8 continuation bytes (10xxxxxx) so a character is not cut in two.
    if (end < bytes.length) while (end > start + 1 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--
    out.push(bytes.subarray(start, end))
    start = end
  }
  return out
}

/** One character-string in master-file syntax: quoted, `"` and `\` escaped, other non-printables as \DDD. */
function quote(octets: Buffer): string {
  let s = '"'
  for (const b of octets) {
    if (b === 0x22 || b === 0x5c) s += `\\${String.fromCharCode(b)}`
    else if (b >= 0x20 && b <= 0x7e) s += String.fromCharCode(b)
    else s += `\\${b.toString().padStart(3, '0')}` // RFC 1035 section 5.1: \DDD
  }
  return `${s}"`
}

// ---- MTA-STS policy ----

/** RFC 8461 section 3.2: max_age is at most 31557600 seconds (about a year). */
export const MTA_STS_MAX_AGE_LIMIT = 31_557_600

/** The MTA-STS policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 section 3.2), CRLF lines. */
export function mtaStsPolicy(input: {
  mailHost: string
  mode: 'testing' | 'enforce' | 'none'
  maxAgeSeconds: number
}): string {
  const max = input.maxAgeSeconds
  if (!Number.isInteger(max) || max < 0 || max > MTA_STS_MAX_AGE_LIMIT) {
    throw invalid(
      'maxAgeSeconds',
      `max_age must be 0 to ${MTA_STS_MAX_AGE_LIMIT} seconds (RFC 8461 section 3.2)`,
    )
  }
  // RFC 8461 section 3.2: key/value lines, version first; each line ends in CRLF.
  return ['version: STSv1', `mode: ${input.mode}`, `mx: ${fqdn(input.mailHost)}`, `max_age: ${max}`]
    .map((line) => `${line}\r\n`)
    .join('')
}
