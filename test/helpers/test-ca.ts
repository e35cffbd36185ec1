// A certificate authority for tests: one CA certificate (trusted through outbound.tls_ca_file or
// the `ca` option of a client) and leaf certificates it issues for the host names a test needs,
// so TLS is verified as in production (chain and name), never switched off. Also writes the CA
// to a file for configs that take a path.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generate } from 'selfsigned'

export interface TestCa {
  /** The CA certificate (PEM). */
  cert: string
  key: string
  /** A server certificate for `names` (DNS names; IP literals become IP SANs), signed by this CA. */
  issue(names: readonly string[]): Promise<{ key: string; cert: string }>
  /** Writes the CA certificate into `dir` and returns the file path. */
  writeTo(dir: string): string
}

const DAY = 86_400_000

export async function createTestCa(name = 'Postern Test CA'): Promise<TestCa> {
  const now = Date.now()
  const ca = await generate([{ name: 'commonName', value: name }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: new Date(now - DAY),
    notAfterDate: new Date(now + 30 * DAY),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  })
  const caPair = { key: ca.private, cert: ca.cert }
  return {
    cert: ca.cert,
    key: ca.private,
    async issue(names) {
      const altNames = names.map((n) =>
        /^[\d.]+$|:/.test(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n },
      )
      const leaf = await generate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
        keyType: 'rsa',
        keySize: 2048,
        algorithm: 'sha256',
        notBeforeDate: new Date(now - DAY),
        notAfterDate: new Date(now + 30 * DAY),
        extensions: [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', serverAuth: true },
          { name: 'subjectAltName', altNames },
        ],
        ca: caPair,
      })
      return { key: leaf.private, cert: leaf.cert }
    },
    writeTo(dir) {
      const file = join(dir, 'test-ca.pem')
      writeFileSync(file, ca.cert)
      return file
    },
  }
}
