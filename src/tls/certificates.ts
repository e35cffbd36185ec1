// The certificate service shared by every TLS listener (HTTPS, SMTP 465/STARTTLS, IMAP
// 993/STARTTLS). It owns the certificates in use: the configured files (tls.cert_file and
// tls.key_file) or, when none are configured, a self-signed pair under <dataDir>/tls; plus
// per-host pairs from tls.sni_dir (naming in sni.ts). It reloads them when the files change.
// Invariants:
// - What is served is always a complete, checked set: a reload that finds any problem (bad
//   file, key not matching, half-written file) keeps everything previously loaded, logs the
//   error and reports it in info().reload_error until a later reload succeeds.
// - Reloads run one at a time, in order.
// - Watch timers never keep the process alive (fs.watchFile with persistent: false, unref'd
//   debounce and renewal timers), and close() stops them all.
// How listeners use it:
// - tls.createServer / https.createServer: pass serverOptions() and then attach(server);
//   SNI clients always get the latest per-host context through the SNICallback, and attach
//   makes clients that send no SNI get the latest default too (server.setSecureContext).
// - STARTTLS: new tls.TLSSocket(socket, { isServer: true, ...serverOptions() }) per connection.

import { type StatWatcher, unwatchFile, watchFile } from 'node:fs'
import type { SecureContext, SecureContextOptions, Server, TlsOptions } from 'node:tls'
import type { Config } from '../config/schema.ts'
import type { Logger } from '../log/logger.ts'
import { type Clock, systemClock } from '../time/clock.ts'
import { formatName, isSelfSigned, type KeyPair, loadKeyPair, TlsError } from './pem.ts'
import { ensureSelfSigned, RENEW_BEFORE_MS, selfSignedPaths } from './self-signed.ts'
import { loadSniDir, sniCandidates, sniFiles } from './sni.ts'

export { TlsError } from './pem.ts'

/** What the health endpoint reports about the default certificate. */
export interface TlsInfo {
  source: 'files' | 'self-signed'
  subject: string
  issuer: string
  /** ISO 8601. */
  not_after: string
  /** `AB:CD:...`, as in tls getPeerCertificate().fingerprint256. */
  fingerprint256: string
  /** Host names with their own certificate from tls.sni_dir (`*.example.com` for wildcards), sorted. */
  sni_hosts: string[]
  self_signed: boolean
  /** Why the last reload failed, while the previous certificates are still served; else null. */
  reload_error: string | null
}

export interface CertificateService {
  /**
   * Options for tls.createServer / https.createServer / new tls.TLSSocket: the current default
   * key and cert (and its secureContext, used by TLSSocket), and an SNICallback that picks the
   * per-host context (exact name, then `*.parent`), falling back to the default. The callback
   * always uses the latest loaded certificates; for a server's no-SNI default, see attach().
   */
  serverOptions(): TlsOptions
  /** The context for `servername` (per-host, wildcard, else default); the default without one. */
  secureContext(servername?: string): SecureContext
  info(): TlsInfo
  /** Re-reads the files now (the watcher calls this too). Never rejects: on bad new files it keeps the old ones and logs an error. */
  reload(): Promise<void>
  /**
   * Keeps a server's default context (used for clients that send no SNI) current across
   * reloads via server.setSecureContext({ ...base, key, cert }). Pass in `base` any other
   * context options the server was created with (ciphers, minVersion...), since
   * setSecureContext replaces them all. Detaches on the server's 'close'; returns a detach function.
   */
  attach(server: Server, base?: SecureContextOptions): () => void
  /** Stops watching files and detaches servers. */
  close(): void
}

export interface CertificateServiceDeps {
  tls: Config['tls']
  hostname: string
  /** Absolute; the self-signed pair lives in <dataDir>/tls. */
  dataDir: string
  log: Logger
  /** Decides self-signed expiry and validity dates; the system clock when omitted. */
  clock?: Clock
}

interface State {
  source: TlsInfo['source']
  pair: KeyPair
  selfSigned: boolean
  sni: Map<string, KeyPair>
}

/** How often a self-signed certificate is checked for renewal while running. */
const SELF_SIGNED_CHECK_MS = 12 * 3600_000

/**
 * Loads the certificates and starts watching them. Rejects with a TlsError naming every bad
 * file and its problem when the configured certificates cannot be used.
 */
export async function createCertificateService(deps: CertificateServiceDeps): Promise<CertificateService> {
  const { tls, log } = deps
  const clock = deps.clock ?? systemClock
  const interval = tls.watch_interval_ms

  async function load(): Promise<State> {
    const problems: string[] = []
    let pair: KeyPair | null = null
    let source: State['source']
    if (tls.cert_file !== null || tls.key_file !== null) {
      source = 'files'
      if (tls.cert_file === null || tls.key_file === null)
        throw new TlsError(['tls.cert_file and tls.key_file: set both or neither'])
      pair = await loadKeyPair(
        {
          certFile: tls.cert_file,
          keyFile: tls.key_file,
          certLabel: 'tls.cert_file',
          keyLabel: 'tls.key_file',
        },
        problems,
      )
    } else {
      source = 'self-signed'
      try {
        pair = (
          await ensureSelfSigned({ dataDir: deps.dataDir, hostname: deps.hostname, now: clock.now(), log })
        ).pair
      } catch (err) {
        problems.push(
          `self-signed certificate ${selfSignedPaths(deps.dataDir).certFile}: ${(err as Error).message}`,
        )
      }
    }
    const sni =
      tls.sni_dir === null ? new Map<string, KeyPair>() : await loadSniDir(tls.sni_dir, log, problems)
    if (problems.length > 0 || !pair) throw new TlsError(problems)
    return { source, pair, selfSigned: isSelfSigned(pair.x509), sni }
  }

  function warnValidity(s: State): void {
    const now = clock.now()
    const check = (x509: KeyPair['x509'], what: Record<string, unknown>) => {
      const notAfter = x509.validToDate.getTime()
      const fields = { ...what, not_after: x509.validToDate.toISOString() }
      if (notAfter <= now) log.error(fields, 'TLS certificate has expired')
      else if (x509.validFromDate.getTime() > now) log.warn(fields, 'TLS certificate is not valid yet')
      else if (notAfter - now < RENEW_BEFORE_MS) log.warn(fields, 'TLS certificate expires within 7 days')
    }
    if (s.source === 'files') check(s.pair.x509, { cert_file: tls.cert_file })
    for (const [host, p] of s.sni) check(p.x509, { sni_host: host })
  }

  const summary = (s: State) => ({
    source: s.source,
    fingerprint256: s.pair.x509.fingerprint256,
    not_after: s.pair.x509.validToDate.toISOString(),
    sni_hosts: [...s.sni.keys()].sort(),
  })
  // Two states serve the same thing when every PEM is identical (a chain can change under the same leaf).
  const sameAs = (a: State, b: State) =>
    a.pair.cert === b.pair.cert &&
    a.pair.key === b.pair.key &&
    a.sni.size === b.sni.size &&
    [...a.sni].every(([h, p]) => b.sni.get(h)?.cert === p.cert && b.sni.get(h)?.key === p.key)

  let state = await load()
  let reloadError: string | null = null
  let closed = false
  warnValidity(state)
  log.info(summary(state), 'TLS certificates loaded')

  const attached = new Map<Server, SecureContextOptions>()
  function applyTo(server: Server, base: SecureContextOptions): void {
    try {
      server.setSecureContext({ ...base, key: state.pair.key, cert: state.pair.cert })
    } catch (err) {
      log.error({ err }, 'could not update a server with the reloaded TLS certificate')
    }
  }

  let queue: Promise<void> = Promise.resolve()
  async function reloadNow(): Promise<void> {
    try {
      const next = await load()
      const changed = !sameAs(state, next)
      state = next
      reloadError = null
      if (changed) {
        for (const [server, base] of attached) applyTo(server, base)
        warnValidity(next)
        log.info(summary(next), 'TLS certificates reloaded')
      } else log.debug('TLS certificates reloaded, unchanged')
    } catch (err) {
      reloadError = (err as Error).message
      log.error({ err }, 'TLS certificate reload failed; still serving the previous certificates')
    }
    await syncWatchers().catch((err) => log.error({ err }, 'could not watch the TLS certificate files'))
  }
  function reload(): Promise<void> {
    queue = queue.then(reloadNow)
    return queue
  }

  // Watching: the configured files, the SNI folder itself (files added or removed) and every
  // .crt/.key in it. A change schedules one reload after a quiet period of one interval, so a
  // certificate and key replaced one after the other are read together.
  const watched = new Set<string>()
  let debounce: NodeJS.Timeout | null = null
  const onChange = () => {
    if (closed) return
    if (debounce) clearTimeout(debounce)
    debounce = setTimeout(() => {
      debounce = null
      void reload()
    }, interval)
    debounce.unref()
  }
  async function syncWatchers(): Promise<void> {
    if (closed || interval <= 0) return
    const wanted = new Set<string>()
    if (tls.cert_file !== null) wanted.add(tls.cert_file)
    if (tls.key_file !== null) wanted.add(tls.key_file)
    if (tls.sni_dir !== null) {
      wanted.add(tls.sni_dir)
      for (const f of await sniFiles(tls.sni_dir)) wanted.add(f)
    }
    if (closed) return
    for (const f of watched)
      if (!wanted.has(f)) {
        unwatchFile(f, onChange)
        watched.delete(f)
      }
    for (const f of wanted)
      if (!watched.has(f)) {
        const w: StatWatcher = watchFile(f, { interval, persistent: false }, onChange)
        w.unref()
        watched.add(f)
      }
  }
  await syncWatchers()

  // A self-signed certificate is ours to renew: check twice a day (ensureSelfSigned renews it
  // RENEW_BEFORE_MS before expiry).
  const renewTimer =
    state.source === 'self-signed' && interval > 0
      ? setInterval(() => void reload(), SELF_SIGNED_CHECK_MS)
      : null
  renewTimer?.unref()

  function pick(servername?: string): SecureContext {
    const { pair, sni } = state
    if (servername && sni.size > 0)
      for (const name of sniCandidates(servername)) {
        const hit = sni.get(name)
        if (hit) return hit.context
      }
    return pair.context
  }
  const SNICallback: TlsOptions['SNICallback'] = (servername, cb) => cb(null, pick(servername))

  return {
    serverOptions: () => ({
      key: state.pair.key,
      cert: state.pair.cert,
      secureContext: state.pair.context,
      SNICallback,
    }),
    secureContext: pick,
    info: () => ({
      source: state.source,
      subject: formatName(state.pair.x509.subject),
      issuer: formatName(state.pair.x509.issuer),
      not_after: state.pair.x509.validToDate.toISOString(),
      fingerprint256: state.pair.x509.fingerprint256,
      sni_hosts: [...state.sni.keys()].sort(),
      self_signed: state.selfSigned,
      reload_error: reloadError,
    }),
    reload,
    attach(server, base = {}) {
      attached.set(server, base)
      applyTo(server, base)
      const detach = () => {
        attached.delete(server)
        server.off('close', detach)
      }
      server.once('close', detach)
      return detach
    },
    close() {
      closed = true
      if (debounce) clearTimeout(debounce)
      if (renewTimer) clearInterval(renewTimer)
      for (const f of watched) unwatchFile(f, onChange)
      watched.clear()
      attached.clear()
    },
  }
}
