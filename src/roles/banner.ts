// The start-up banner: where every listener is, the notes, and the one-time setup link while no
// organisation exists. Printed once, after every component of this process started.

import type { Config } from '../config/schema.ts'
import type { ListenerInfo } from '../services/health/health.ts'
import type { Store } from '../store/db.ts'
import type { CertificateService } from '../tls/certificates.ts'
import { hostForUrl } from './listen.ts'

export interface BannerFacts {
  config: Config
  version: string
  store: Store
  listeners: readonly ListenerInfo[]
  notes: readonly string[]
  tls: CertificateService
  setupToken: string | null
  publicUrl: string
}

const scheme = (l: ListenerInfo) =>
  l.name.startsWith('smtp')
    ? 'smtp'
    : l.name.startsWith('imap')
      ? 'imap'
      : l.tls === 'none'
        ? 'http'
        : 'https'

export function printBanner(print: (line: string) => void, f: BannerFacts): void {
  print(`Postern ${f.version} is running (data: ${f.config.data_dir}, database: ${f.store.location})`)
  for (const l of f.listeners)
    print(
      `  ${l.name.padEnd(8)} ${scheme(l)}://${hostForUrl(l.host)}:${l.port}${l.tls === 'starttls' ? ' (STARTTLS)' : ''}`,
    )
  for (const note of f.notes) print(`  note: ${note}`)
  if (f.tls.info().self_signed)
    print(
      `  tls: using a self-signed certificate for ${f.config.hostname}; set tls.cert_file and tls.key_file for a real one`,
    )
  if (f.setupToken) {
    print('')
    print('  No organisation exists yet. Create the first owner within this run with:')
    print(`    setup link:  ${f.publicUrl}/setup?token=${f.setupToken}`)
    print(`    setup token: ${f.setupToken}`)
    print('  (the token changes at every start until setup is done)')
  }
}
