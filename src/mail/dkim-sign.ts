// DKIM signing (RFC 6376) with RSA-SHA256 and Ed25519-SHA256 (RFC 8463), relaxed/relaxed.
// Ours rather than mailauth's signer because mailauth lists in h= only the fields present,
// and we oversign: From, To, Subject (and the other fields named in OVERSIGN) appear once
// more in h= than in the message, so a field added later in transit breaks the signature
// instead of being shown to the reader (RFC 6376 8.15). Verification stays with mailauth.
// Invariants:
// - Never an l= tag: the whole body is signed.
// - The body hash is computed once and shared by every signature of the message; the
//   signatures themselves are computed off the event loop (libuv's thread pool).
// - The input must have CRLF line ends (what the composer makes); the output is the input
//   with the DKIM-Signature fields prepended, the body untouched.

import { createHash, createPrivateKey, type KeyObject, sign } from 'node:crypto'

export interface DkimKey {
  domain: string
  selector: string
  algorithm: 'rsa' | 'ed25519'
  /** PKCS#8 PEM, or a KeyObject. */
  privateKey: string | KeyObject
}

/** Fields signed when present (in this order, each as often as it occurs). */
const SIGNED = [
  'from',
  'sender',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'to',
  'cc',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'in-reply-to',
  'references',
  'list-id',
  'list-unsubscribe',
  'list-unsubscribe-post',
  'feedback-id',
]
/** Fields listed once more than they occur: nobody can add one without breaking the signature. */
const OVERSIGN = new Set(['from', 'to', 'subject', 'cc', 'reply-to', 'date', 'message-id', 'sender'])

function splitMessage(raw: Buffer): { header: string; body: Buffer } {
  const i = raw.indexOf('\r\n\r\n')
  if (i < 0) return { header: raw.toString('latin1'), body: Buffer.alloc(0) }
  return { header: raw.subarray(0, i + 2).toString('latin1'), body: raw.subarray(i + 4) }
}

/** Header fields as [lower-case name, full field text without the final CRLF]. */
function fields(header: string): [string, string][] {
  const out: [string, string][] = []
  for (const line of header.split('\r\n')) {
    if (line === '') continue
    if ((line[0] === ' ' || line[0] === '\t') && out.length) {
      const last = out[out.length - 1] as [string, string]
      last[1] += `\r\n${line}`
      continue
    }
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    out.push([line.slice(0, colon).trim().toLowerCase(), line])
  }
  return out
}

/** Relaxed header canonicalisation (RFC 6376 3.4.2) of one field, without CRLF. */
export function relaxedHeader(field: string): string {
  const colon = field.indexOf(':')
  const name = field.slice(0, colon).trim().toLowerCase()
  const value = field
    .slice(colon + 1)
    .replace(/\r\n/g, '')
    .replace(/[ \t]+/g, ' ')
    .trim()
  return `${name}:${value}`
}

/** Relaxed body canonicalisation (RFC 6376 3.4.4). */
export function relaxedBody(body: Buffer): Buffer {
  const text = body.toString('latin1')
  const lines = text.split('\r\n')
  // A body ending in CRLF splits into a last empty element; empty lines at the end are ignored.
  const canon = lines.map((l) => l.replace(/[ \t]+/g, ' ').replace(/ $/, ''))
  while (canon.length && canon[canon.length - 1] === '') canon.pop()
  if (canon.length === 0) return Buffer.alloc(0)
  return Buffer.from(`${canon.join('\r\n')}\r\n`, 'latin1')
}

const fold = (tagList: string): string => {
  // Fold the b= value and long h= so lines stay under 78 characters where possible.
  const parts = tagList.split('; ')
  const lines: string[] = []
  let line = 'DKIM-Signature:'
  for (const [i, p] of parts.entries()) {
    const piece = ` ${p}${i < parts.length - 1 ? ';' : ''}`
    if ((line.length + piece.length > 76 || p.startsWith('b=')) && line !== 'DKIM-Signature:') {
      lines.push(line)
      line = `\t${piece.trimStart()}`
    } else line += piece
  }
  lines.push(line)
  return lines.join('\r\n')
}

const wrapB64 = (b64: string): string => b64.replace(/.{1,64}/g, (m) => `${m}\r\n\t`).replace(/\r\n\t$/, '')

/**
 * Returns the message with one DKIM-Signature per key prepended (Ed25519 last, so it is the
 * first field; order does not matter to verifiers). `now` is the t= time (epoch ms).
 */
export async function dkimSign(raw: Buffer, keys: readonly DkimKey[], now: number): Promise<Buffer> {
  if (keys.length === 0) return raw
  const { header, body } = splitMessage(raw)
  const all = fields(header)
  const bh = createHash('sha256').update(relaxedBody(body)).digest('base64')
  // Pick the fields bottom-up per name (RFC 6376 5.4.2) and list oversigned names once more.
  const names: string[] = []
  const canonFields: string[] = []
  for (const name of SIGNED) {
    const present = all.filter(([n]) => n === name)
    for (let i = present.length - 1; i >= 0; i--) {
      names.push(name)
      canonFields.push(relaxedHeader((present[i] as [string, string])[1]))
    }
    if (OVERSIGN.has(name)) names.push(name) // an absent instance signs as empty
  }
  if (!all.some(([n]) => n === 'from')) throw new Error('cannot DKIM-sign a message without a From field')
  const t = Math.floor(now / 1000)
  const signatures: string[] = []
  for (const key of keys) {
    const a = key.algorithm === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256'
    const tags = `v=1; a=${a}; c=relaxed/relaxed; d=${key.domain}; s=${key.selector}; t=${t}; h=${names.join(':')}; bh=${bh}; b=`
    const unsigned = fold(tags)
    const data = Buffer.from(
      `${canonFields.map((f) => `${f}\r\n`).join('')}${relaxedHeader(unsigned)}`,
      'latin1',
    )
    const pk = typeof key.privateKey === 'string' ? createPrivateKey(key.privateKey) : key.privateKey
    // The callback form runs the signature in libuv's thread pool: RSA signing is the costliest
    // step of sending and would otherwise block the event loop.
    const b = await new Promise<Buffer>((resolve, reject) => {
      const done = (err: Error | null, sig: Buffer) => (err ? reject(err) : resolve(sig))
      if (key.algorithm === 'rsa') sign('sha256', data, pk, done)
      else sign(null, createHash('sha256').update(data).digest(), pk, done)
    })
    signatures.push(`${unsigned}${wrapB64(b.toString('base64'))}`)
  }
  return Buffer.concat([Buffer.from(`${signatures.reverse().join('\r\n')}\r\n`, 'latin1'), raw])
}
