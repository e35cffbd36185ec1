// Messages for the SMTP benchmarks, deterministic for a given seed:
// - sourceLike(): what Postfix's smtp-source sends with -l (no Subject, lines of X), so the
//   latency probe's messages look like the load they run alongside.
// - mixPool(): a pool of distinct messages whose sizes are log-uniform between two bounds
//   (5 KB to 100 KB by default): plain text below 30 KB, text plus a base64 attachment above,
//   real-looking words (the full-text index sees words, not one long token), distinct
//   subjects, each DKIM-signed (relaxed/relaxed, rsa-sha256) by the sender domain so the
//   checks-on variant verifies a real signature.

import { dkimSign } from 'mailauth'

/** mulberry32: a small seeded PRNG (0 <= x < 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const rfc5322Date = (d: Date) => d.toUTCString().replace(/GMT$/, '+0000')

/** Like smtp-source -l LENGTH: headers, then LENGTH bytes of numbered lines of X. */
export function sourceLike(o: { from: string; to: string; length: number; id: string }): string {
  const head = [
    `From: <${o.from}>`,
    `To: <${o.to}>`,
    `Date: ${rfc5322Date(new Date())}`,
    `Message-Id: <${o.id}@${o.from.split('@')[1]}>`,
    '',
  ]
  const lines: string[] = []
  let left = o.length
  for (let n = 1; left > 0; n++) {
    const line = `${n}${'X'.repeat(78)}`.slice(0, Math.max(1, left - 2))
    lines.push(line)
    left -= line.length + 2
  }
  return `${head.join('\r\n')}\r\n${lines.join('\r\n')}\r\n`
}

const SYLLABLES =
  'ka lo mi ne ra to su ve di an or el in us at port mail serv ver data ment tion able pre con pro sta ble ning'.split(
    ' ',
  )

function wordsOf(rand: () => number, bytes: number): string {
  const lines: string[] = []
  let line = ''
  let total = 0
  while (total < bytes) {
    const n = 1 + Math.floor(rand() * 3)
    let w = ''
    for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(rand() * SYLLABLES.length)]
    if (line.length + w.length + 1 > 72) {
      lines.push(line)
      total += line.length + 2
      line = ''
    }
    line = line ? `${line} ${w}` : w
  }
  if (line) lines.push(line)
  return lines.join('\r\n')
}

function base64Lines(rand: () => number, bytes: number): string {
  const raw = Buffer.alloc(Math.max(1, Math.floor((bytes * 3) / 4)))
  for (let i = 0; i < raw.length; i++) raw[i] = Math.floor(rand() * 256)
  return (raw.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n')
}

export interface MixOptions {
  count: number
  minBytes: number
  maxBytes: number
  from: string
  to: string
  seed: number
  /** DKIM signing key of the sender domain (selector s1), PKCS#8 PEM; null: unsigned. */
  dkimKeyPem: string | null
}

/** Distinct messages with log-uniform sizes in [minBytes, maxBytes]. */
export async function mixPool(o: MixOptions): Promise<string[]> {
  const rand = prng(o.seed)
  const domain = o.from.split('@')[1] as string
  const out: string[] = []
  for (let i = 0; i < o.count; i++) {
    const target = Math.round(o.minBytes * (o.maxBytes / o.minBytes) ** rand())
    const subject = `Report ${i} ${wordsOf(rand, 30).replace(/\r\n/g, ' ')}`
    const head = [
      `From: Sender ${i % 50} <${o.from}>`,
      `To: User One <${o.to}>`,
      `Subject: ${subject}`,
      `Date: ${rfc5322Date(new Date(Date.UTC(2026, 10, 21, 8, 0, i % 60)))}`,
      `Message-ID: <mix-${o.seed}-${i}@${domain}>`,
      'MIME-Version: 1.0',
    ]
    let msg: string
    const headBytes = head.join('\r\n').length + 100
    if (target < 30_720) {
      head.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 7bit')
      msg = `${head.join('\r\n')}\r\n\r\n${wordsOf(rand, target - headBytes)}\r\n`
    } else {
      const boundary = `b-${o.seed}-${i}`
      const textBytes = 2000 + Math.floor(rand() * 6000)
      const attachBytes = target - headBytes - textBytes - 300
      head.push(`Content-Type: multipart/mixed; boundary="${boundary}"`)
      msg = [
        head.join('\r\n'),
        '',
        `--${boundary}`,
        'Content-Type: text/plain; charset=utf-8',
        '',
        wordsOf(rand, textBytes),
        `--${boundary}`,
        `Content-Type: application/pdf; name="report-${i}.pdf"`,
        `Content-Disposition: attachment; filename="report-${i}.pdf"`,
        'Content-Transfer-Encoding: base64',
        '',
        base64Lines(rand, attachBytes),
        `--${boundary}--`,
        '',
      ].join('\r\n')
    }
    if (o.dkimKeyPem) {
      // mailauth 7 signs from signatureData (see test/delivery/helpers.ts).
      const r = await dkimSign(msg, {
        signatureData: [
          {
            signingDomain: domain,
            selector: 's1',
            privateKey: o.dkimKeyPem,
            canonicalization: 'relaxed/relaxed',
          },
        ],
      } as never)
      if (!r.signatures) throw new Error(`dkimSign made no signature: ${JSON.stringify(r.errors)}`)
      msg = r.signatures + msg
    }
    out.push(msg)
  }
  return out
}
