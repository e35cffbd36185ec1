// Reading one certificate/key pair from PEM files into a ready TLS context. Owns the checks
// that turn a bad pair into an error an operator can act on: which file, and what is wrong
// with it (unreadable, not PEM, encrypted key, key not matching the certificate).
// Invariant: a KeyPair is only ever built from a certificate chain whose first certificate
// belongs to the key, so a context made here never fails at handshake time.

import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createSecureContext, type SecureContext } from 'node:tls'

/** Every problem found while loading certificates, reported together. */
export class TlsError extends Error {
  readonly problems: string[]
  constructor(problems: string[]) {
    super(
      problems.length === 1 ? `TLS: ${problems[0]}` : `TLS:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    )
    this.name = 'TlsError'
    this.problems = problems
  }
}

export interface KeyPair {
  /** PEM private key. */
  key: string
  /** PEM certificate chain, leaf first. */
  cert: string
  /** The leaf certificate. */
  x509: X509Certificate
  context: SecureContext
}

/** Where a pair comes from, for error messages: `tls.cert_file /etc/x.crt`, `SNI certificate /d/a.crt`. */
export interface PairSource {
  certFile: string
  keyFile: string
  certLabel: string
  keyLabel: string
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

async function readText(file: string, label: string, problems: string[]): Promise<string | null> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    problems.push(`${label} ${file}: cannot read (${e.code ?? e.message})`)
    return null
  }
}

function parseChain(text: string, file: string, label: string, problems: string[]): X509Certificate[] | null {
  const blocks = text.match(CERT_BLOCK)
  if (!blocks) {
    problems.push(`${label} ${file}: not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`)
    return null
  }
  const chain: X509Certificate[] = []
  for (const [i, block] of blocks.entries()) {
    try {
      chain.push(new X509Certificate(block))
    } catch (err) {
      problems.push(`${label} ${file}: certificate ${i + 1} is not valid PEM (${(err as Error).message})`)
      return null
    }
  }
  return chain
}

function parseKey(text: string, file: string, label: string, problems: string[]): KeyObject | null {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    problems.push(`${label} ${file}: the private key is encrypted; Postern needs it without a passphrase`)
    return null
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    problems.push(`${label} ${file}: not a PEM private key (no "-----BEGIN ... PRIVATE KEY-----" block)`)
    return null
  }
  try {
    return createPrivateKey(text)
  } catch (err) {
    problems.push(`${label} ${file}: not a valid private key (${(err as Error).message})`)
    return null
  }
}

/**
 * Loads and checks a certificate chain and its key. Problems are appended to `problems`;
 * the result is null when there was any.
 */
export async function loadKeyPair(src: PairSource, problems: string[]): Promise<KeyPair | null> {
  const before = problems.length
  const [certText, keyText] = await Promise.all([
    readText(src.certFile, src.certLabel, problems),
    readText(src.keyFile, src.keyLabel, problems),
  ])
  const chain = certText === null ? null : parseChain(certText, src.certFile, src.certLabel, problems)
  const key = keyText === null ? null : parseKey(keyText, src.keyFile, src.keyLabel, problems)
  if (!chain || !key || !certText || !keyText || problems.length > before) return null
  const leaf = chain[0] as X509Certificate
  if (!leaf.checkPrivateKey(key)) {
    const owner = chain.findIndex((c) => c.checkPrivateKey(key))
    problems.push(
      owner > 0
        ? `${src.keyLabel} ${src.keyFile} belongs to certificate ${owner + 1} in ${src.certLabel} ${src.certFile}; ` +
            'the server certificate must come first, followed by its intermediates'
        : `${src.keyLabel} ${src.keyFile} does not match the certificate in ${src.certLabel} ${src.certFile}`,
    )
    return null
  }
  try {
    return {
      key: keyText,
      cert: certText,
      x509: leaf,
      context: createSecureContext({ key: keyText, cert: certText }),
    }
  } catch (err) {
    problems.push(
      `${src.certLabel} ${src.certFile}: unusable with ${src.keyFile} (${(err as Error).message})`,
    )
    return null
  }
}

/** `CN=mail.example.com, O=Example` from X509Certificate's one-attribute-per-line form. */
export function formatName(name: string): string {
  return name.split('\n').filter(Boolean).join(', ')
}

/** True when the certificate names itself as issuer and carries its own valid signature. */
export function isSelfSigned(x509: X509Certificate): boolean {
  return x509.subject === x509.issuer && x509.verify(x509.publicKey)
}
