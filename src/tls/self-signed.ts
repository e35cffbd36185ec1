// The self-signed certificate used when no certificate files are configured, so every TLS
// listener works on the first start. Owns <dataDir>/tls/self-signed.crt and self-signed.key.
// Invariants: the folder is 0700 and the key 0600; an existing pair is reused while it is
// valid for more than RENEW_BEFORE_MS, covers the configured host name and matches its key,
// otherwise a new one (RSA 2048, sha256, ~1 year) replaces it. Each file is replaced by an
// atomic rename, key first, so a reader never sees a half-written file.

import { mkdir, rename, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join } from 'node:path'
import type { Logger } from '../log/logger.ts'
import { type KeyPair, loadKeyPair, type PairSource } from './pem.ts'

export const RENEW_BEFORE_MS = 7 * 24 * 3600_000
const VALID_FOR_MS = 365 * 24 * 3600_000
/** Backdating tolerates clients whose clocks run a little slow. */
const BACKDATE_MS = 3600_000

export function selfSignedPaths(dataDir: string): PairSource {
  const dir = join(dataDir, 'tls')
  return {
    certFile: join(dir, 'self-signed.crt'),
    keyFile: join(dir, 'self-signed.key'),
    certLabel: 'self-signed certificate',
    keyLabel: 'self-signed key',
  }
}

function covers(pair: KeyPair, hostname: string): boolean {
  return (isIP(hostname) ? pair.x509.checkIP(hostname) : pair.x509.checkHost(hostname)) !== undefined
}

async function writeAtomic(file: string, body: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, body, { mode })
  await rename(tmp, file)
}

/** Makes a new self-signed certificate for `hostname`, localhost, 127.0.0.1 and ::1. */
export async function generateSelfSigned(
  hostname: string,
  now: number,
): Promise<{ key: string; cert: string }> {
  const altNames: { type: 2 | 7; value?: string; ip?: string }[] = []
  for (const name of [hostname, 'localhost', '127.0.0.1', '::1']) {
    const entry = isIP(name) ? { type: 7 as const, ip: name } : { type: 2 as const, value: name }
    if (!altNames.some((a) => a.value === entry.value && a.ip === entry.ip)) altNames.push(entry)
  }
  // Loaded only to make a certificate (first start, renewal): it brings an X.509 and ASN.1 stack.
  const { generate } = await import('selfsigned')
  const pems = await generate([{ name: 'commonName', value: hostname }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: new Date(now - BACKDATE_MS),
    notAfterDate: new Date(now + VALID_FOR_MS),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  })
  return { key: pems.private, cert: pems.cert }
}

/**
 * Returns the stored self-signed pair, generating (and saving) a new one when there is none,
 * it is unreadable, expires within RENEW_BEFORE_MS, or does not cover `hostname`.
 */
export async function ensureSelfSigned(opts: {
  dataDir: string
  hostname: string
  now: number
  log: Logger
}): Promise<{ pair: KeyPair; generated: boolean }> {
  const src = selfSignedPaths(opts.dataDir)
  const problems: string[] = []
  const existing = await loadKeyPair(src, problems)
  let reason: string | null = null
  if (!existing)
    reason = problems.some((p) => p.includes('(ENOENT)')) ? 'none stored yet' : problems.join('; ')
  else if (existing.x509.validToDate.getTime() - opts.now < RENEW_BEFORE_MS)
    reason = 'it expires within 7 days'
  else if (!covers(existing, opts.hostname)) reason = `it does not cover ${opts.hostname}`
  if (existing && reason === null) return { pair: existing, generated: false }

  opts.log.info({ cert_file: src.certFile, reason }, 'generating a self-signed TLS certificate')
  const { key, cert } = await generateSelfSigned(opts.hostname, opts.now)
  await mkdir(join(opts.dataDir, 'tls'), { recursive: true, mode: 0o700 })
  await writeAtomic(src.keyFile, key, 0o600)
  await writeAtomic(src.certFile, cert, 0o644)
  const written: string[] = []
  const pair = await loadKeyPair(src, written)
  if (!pair) throw new Error(`self-signed certificate just written is unusable: ${written.join('; ')}`)
  return { pair, generated: true }
}
