// Sealing of secrets stored in the database (DKIM private keys, TOTP secrets) with the
// key-encryption key from the secrets file: AES-256-GCM, random 96-bit nonce, and a context
// string bound as associated data, so a sealed value cannot be moved to another purpose.
// Format: `v1.<nonce b64url>.<ciphertext+tag b64url>`.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

export class UnsealError extends Error {
  override name = 'UnsealError'
}

export function seal(kek: Buffer, context: string, plaintext: string | Buffer): string {
  const nonce = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', kek, nonce)
  cipher.setAAD(Buffer.from(context))
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
  return `v1.${nonce.toString('base64url')}.${body.toString('base64url')}`
}

export function unseal(kek: Buffer, context: string, sealed: string): Buffer {
  const [version, n, b] = sealed.split('.')
  if (version !== 'v1' || !n || !b) throw new UnsealError('not a sealed value')
  const body = Buffer.from(b, 'base64url')
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(n, 'base64url'))
    decipher.setAAD(Buffer.from(context))
    decipher.setAuthTag(body.subarray(body.length - 16))
    return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()])
  } catch {
    throw new UnsealError('the key-encryption key does not open this value')
  }
}
