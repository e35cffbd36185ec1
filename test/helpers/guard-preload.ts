// Loaded before every test file (`node --import ./test/helpers/guard-preload.ts`): a tripwire
// that keeps tests on loopback whatever the code under test does. Side effects only.
// - net.Socket.prototype.connect (net.connect, tls.connect, http/https clients, pg, and the
//   global fetch, whose bundled undici calls net.connect) throws for a TCP address outside
//   127.0.0.0/8 and ::1, and for any host name but `localhost` before it is looked up.
//   Unix socket paths pass.
// - dns.lookup (getaddrinfo, which would ask the system's servers) throws for names other
//   than `localhost` and IP literals.
// - The default resolvers (callback and promises) point at 127.0.0.1:9, where nothing
//   answers, so a stray dns.resolve* fails fast; every Resolver instance refuses to query
//   while it has a server outside loopback or on port 53 (a `new Resolver()` starts with
//   the system's servers, and a loopback stub resolver forwards queries off the machine).
// Not covered: dgram sockets and dns.lookupService.

import dns from 'node:dns'
import { syncBuiltinESMExports } from 'node:module'
import net from 'node:net'

const loopback = new net.BlockList()
loopback.addSubnet('127.0.0.0', 8, 'ipv4')
loopback.addAddress('::1', 'ipv6')

const isLoopback = (ip: string): boolean => {
  const v = net.isIP(ip)
  return v !== 0 && loopback.check(ip, v === 4 ? 'ipv4' : 'ipv6')
}

const refuse = (what: string): never => {
  throw Object.assign(new Error(`guard-preload: ${what} refused; tests stay on 127.0.0.0/8 and ::1`), {
    code: 'ERR_TEST_NETWORK_REFUSED',
  })
}

const checkHost = (host: string): void => {
  if (host.toLowerCase() === 'localhost') return
  if (!net.isIP(host)) refuse(`host name '${host}'`)
  if (!isLoopback(host)) refuse(`connection to ${host}`)
}

type ConnectTarget = { path?: unknown; host?: unknown }
const originalConnect = net.Socket.prototype.connect
net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
  const [first, second] = args
  // net.connect passes its normalized [options, callback] array; otherwise mirror normalizeArgs.
  let target: ConnectTarget
  if (Array.isArray(first)) target = (first[0] ?? {}) as ConnectTarget
  else if (typeof first === 'object' && first !== null) target = first as ConnectTarget
  else if (typeof first === 'string' && !(Number(first) >= 0)) target = { path: first }
  else target = { host: typeof second === 'string' ? second : undefined }
  if (!target.path) checkHost(typeof target.host === 'string' && target.host ? target.host : 'localhost')
  return Reflect.apply(originalConnect, this, args) as net.Socket
} as typeof originalConnect

const checkName = (name: unknown): void => {
  if (typeof name === 'string' && name && !net.isIP(name) && name.toLowerCase() !== 'localhost') {
    refuse(`lookup of '${name}'`)
  }
}
const guardLookup = <F extends (...a: never[]) => unknown>(original: F): F => {
  const guarded = function (this: unknown, ...args: Parameters<F>) {
    checkName(args[0])
    return Reflect.apply(original, this, args)
  }
  for (const key of Reflect.ownKeys(original)) {
    if (typeof key === 'symbol')
      Object.defineProperty(guarded, key, Object.getOwnPropertyDescriptor(original, key)!)
  }
  return guarded as unknown as F
}
dns.lookup = guardLookup(dns.lookup)
dns.promises.lookup = guardLookup(dns.promises.lookup)

// A server entry is `ip`, `ip:port` or `[ipv6]:port`; port 53 on loopback is a stub resolver
// (systemd-resolved, dnsmasq) that forwards off the machine, so a test server has its own port.
const isTestServer = (server: string): boolean => {
  const m = /^\[(.+)\]:(\d+)$/.exec(server) ?? (net.isIP(server) ? null : /^(.+):(\d+)$/.exec(server))
  return m !== null && isLoopback(m[1] ?? '') && m[2] !== '53'
}
for (const proto of [dns.Resolver.prototype, dns.promises.Resolver.prototype] as unknown as Record<
  string,
  unknown
>[]) {
  for (const key of Object.getOwnPropertyNames(proto)) {
    const original = proto[key]
    if (!/^(resolve|reverse)/.test(key) || typeof original !== 'function') continue
    proto[key] = function (this: dns.Resolver, ...args: unknown[]) {
      for (const server of this.getServers()) {
        if (!isTestServer(server)) refuse(`DNS query to server ${server}`)
      }
      return Reflect.apply(original, this, args)
    }
  }
}

// After the prototype patch: setServers rebinds dns.resolve* from Resolver.prototype.
dns.setServers(['127.0.0.1:9'])
dns.promises.setServers(['127.0.0.1:9'])
syncBuiltinESMExports()
