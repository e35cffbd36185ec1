// The messages between auth-pool.ts (main thread) and auth-thread.ts (the worker thread that
// runs verifyMessage). Plain data only: they are structured-cloned across the port.
import { DnsError, type DnsErrorCode, type RecordType, type Resolver } from '../dns/resolver.ts'

/** verifyMessage's options without the resolver (the thread asks the main thread's). */
export interface VerifyOptions {
  ip: string
  helo: string | null
  mailFrom: string
  authservId: string
}

export type ResolverMethod = keyof Resolver

export interface WireDnsError {
  code: string
  hostname: string
  rrtype: string
  message: string
}

/** Main thread -> thread. */
export type ToThread =
  | { kind: 'verify'; job: number; raw: Uint8Array; opts: VerifyOptions }
  | { kind: 'dns'; id: number; value?: unknown; error?: WireDnsError }

/** Thread -> main thread. */
export type FromThread =
  | { kind: 'dns'; id: number; job: number; method: ResolverMethod; name: string }
  | { kind: 'verdict'; job: number; verdict: import('./auth.ts').AuthVerdict }
  | { kind: 'failed'; job: number; name: string; message: string }

/** The DnsError an answer carried, rebuilt on the thread's side. */
export function dnsErrorOf(e: WireDnsError): DnsError {
  return new DnsError(e.code as DnsErrorCode, e.hostname, e.rrtype as RecordType)
}
