// Turning an accepted TCP socket into a TLS server socket, for STARTTLS (SMTP, IMAP) and the
// implicit-TLS ports: one secure context per options object (made once, when the options do not
// carry one), and the handshake's end as a promise that settles false on close or timeout.
// The caller attaches its own listeners to the returned socket before awaiting `secured`.

import type { Socket } from 'node:net'
import { createSecureContext, type SecureContext, type SecureContextOptions, TLSSocket } from 'node:tls'

/** Secure contexts made from options that carry none, reused while the same options object is given. */
const contexts = new WeakMap<SecureContextOptions, SecureContext>()

export function serverTlsSocket(
  raw: Socket,
  options: SecureContextOptions,
  timeoutMs: number,
): { tls: TLSSocket; secured: Promise<boolean> } {
  let secureContext = (options as { secureContext?: SecureContext }).secureContext ?? contexts.get(options)
  if (!secureContext) {
    secureContext = createSecureContext(options)
    contexts.set(options, secureContext)
  }
  const tls = new TLSSocket(raw, { ...options, secureContext, isServer: true, requestCert: false })
  const secured = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => done(false), timeoutMs)
    timer.unref()
    function done(result: boolean) {
      clearTimeout(timer)
      tls.off('secure', onSecure)
      tls.off('close', onFail)
      resolve(result)
    }
    const onSecure = () => done(true)
    const onFail = () => done(false)
    tls.once('secure', onSecure)
    tls.once('close', onFail)
  })
  return { tls, secured }
}

/** What a session reports of its TLS: protocol and cipher names. */
export function tlsInfo(tls: TLSSocket): { protocol: string; cipher: string } {
  return { protocol: tls.getProtocol() ?? 'unknown', cipher: tls.getCipher()?.name ?? 'unknown' }
}
