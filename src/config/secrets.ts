// The server's secrets file: random keys that must never live in the database or have defaults.
// It holds the token signing key and the key-encryption key (KEK) for DKIM private keys and
// other sealed values. Written once (0600, fsynced) by the first start or `postern init`;
// every node of a cluster must use the same file. Invariant: an existing file is never rewritten.

import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

export interface ServerSecrets {
  /** HMAC key for session and other signed tokens (32 bytes). */
  tokenSigningKey: Buffer
  /** AES-256-GCM key sealing private keys stored in the database (32 bytes). */
  keyEncryptionKey: Buffer
}

interface SecretsFile {
  version: 1
  token_signing_key: string
  key_encryption_key: string
}

export class SecretsError extends Error {
  override name = 'SecretsError'
}

function decode(file: string, raw: string): ServerSecrets {
  let parsed: SecretsFile
  try {
    parsed = JSON.parse(raw)
  } catch {
    throw new SecretsError(
      `${file} is not valid JSON; restore it from your backup (every node needs the same file)`,
    )
  }
  const tokenSigningKey = Buffer.from(parsed.token_signing_key ?? '', 'base64')
  const keyEncryptionKey = Buffer.from(parsed.key_encryption_key ?? '', 'base64')
  if (tokenSigningKey.length !== 32 || keyEncryptionKey.length !== 32)
    throw new SecretsError(
      `${file} must hold two 32-byte base64 keys (token_signing_key, key_encryption_key)`,
    )
  return { tokenSigningKey, keyEncryptionKey }
}

/** Reads the secrets file, creating it with fresh random keys when it does not exist. */
export function loadOrCreateSecrets(file: string): { secrets: ServerSecrets; created: boolean } {
  try {
    const mode = statSync(file).mode & 0o777
    if (mode & 0o077)
      throw new SecretsError(
        `${file} is readable by other users (mode ${mode.toString(8)}); run: chmod 600 ${file}`,
      )
    return { secrets: decode(file, readFileSync(file, 'utf8')), created: false }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  const body: SecretsFile = {
    version: 1,
    token_signing_key: randomBytes(32).toString('base64'),
    key_encryption_key: randomBytes(32).toString('base64'),
  }
  let fd: number
  try {
    fd = openSync(file, 'wx', 0o600) // wx: never overwrite a file another process just wrote
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      return { secrets: decode(file, readFileSync(file, 'utf8')), created: false }
    throw err
  }
  try {
    writeSync(fd, `${JSON.stringify(body, null, 2)}\n`)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  return { secrets: decode(file, JSON.stringify(body)), created: true }
}
