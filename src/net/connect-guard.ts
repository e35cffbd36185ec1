// The connect guard: the one way Postern opens outgoing TCP connections (outbound SMTP,
// MTA-STS and webhook fetches, imports), checked against `net.connect_allow`, plus the
// predicate that tells private and local addresses from public ones.
// Invariants:
// - `connect` takes IP literals only. Names are resolved through Postern's Resolver by the
//   caller, never by a library or by node:net, so every address is seen here first.
// - An address is refused before any packet is sent: the check runs before net.connect.
// - An address is allowed when it is in the allow list, or when `allowPublic` is set and it
//   is public (not isPrivateOrLocal). Production sets `allowPublic` and lists the private
//   ranges it may reach; tests leave it off and list loopback only, so nothing else is reached.
// - Allow entries are CIDRs (a bare IP means one address); IPv4 rules also match the
//   IPv4-mapped IPv6 form (`::ffff:a.b.c.d`), which node:net's BlockList does for us.
// - The unspecified addresses (0.0.0.0, ::) are never allowed whatever the list says:
//   connecting to them reaches this machine.

import { BlockList, isIP, connect as netConnect, type Socket } from 'node:net'

export const CONNECT_ALLOW_KEY = 'net.connect_allow'

export class ConnectRefusedError extends Error {
  readonly code = 'CONNECT_REFUSED'
  /** The host or address that was refused. */
  readonly address: string

  constructor(address: string, reason: string) {
    super(`connection to ${address} refused: ${reason}`)
    this.name = 'ConnectRefusedError'
    this.address = address
  }
}

export interface ConnectOptions {
  /** An IP literal (IPv6 without brackets). */
  host: string
  port: number
  /** Gives up (destroying the socket) when the connection is not up after this long. */
  timeoutMs?: number
}

export interface ConnectGuard {
  allows(ip: string): boolean
  /** Throws ConnectRefusedError unless `ip` is an allowed IP literal. */
  check(ip: string): void
  /** Connects to an allowed IP address; resolves with the connected socket. */
  connect(opts: ConnectOptions): Promise<Socket>
}

type Family = 'ipv4' | 'ipv6'

const familyOf = (ip: string): Family | null => {
  const v = isIP(ip)
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : null
}

/** Drops an IPv6 zone id (`fe80::1%eth0`), which BlockList does not accept. */
const stripZone = (ip: string): string => {
  const i = ip.indexOf('%')
  return i < 0 ? ip : ip.slice(0, i)
}

/** Parses `a.b.c.d/n`, `v6::/n` or a bare IP into a subnet; null when malformed. */
export function parseCidr(entry: string): { address: string; prefix: number; family: Family } | null {
  const [address = '', prefixText, extra] = entry.trim().split('/')
  const family = familyOf(address)
  if (!family || extra !== undefined) return null
  const max = family === 'ipv4' ? 32 : 128
  if (prefixText === undefined) return { address, prefix: max, family }
  if (!/^\d{1,3}$/.test(prefixText)) return null
  const prefix = Number(prefixText)
  return prefix <= max ? { address, prefix, family } : null
}

function blockListOf(entries: readonly string[], what: string): BlockList {
  const list = new BlockList()
  for (const entry of entries) {
    const cidr = parseCidr(entry)
    if (!cidr)
      throw new Error(`${what}: '${entry}' is not a CIDR (like 127.0.0.0/8 or ::1/128) or an IP address`)
    list.addSubnet(cidr.address, cidr.prefix, cidr.family)
  }
  return list
}

/**
 * A matcher for a configured list of networks (auth.plaintext_allowed_from, ...); throws at
 * start, naming the key, when an entry is malformed.
 */
export function networkMatcher(entries: readonly string[], key: string): (ip: string) => boolean {
  const list = blockListOf(entries, key)
  return (ip) => matches(list, ip)
}

const matches = (list: BlockList, ip: string): boolean => {
  const bare = stripZone(ip)
  const family = familyOf(bare)
  return family !== null && list.check(bare, family)
}

const UNSPECIFIED = blockListOf(['0.0.0.0/32', '::/128'], 'unspecified')

const PRIVATE_OR_LOCAL = blockListOf(
  [
    '0.0.0.0/8', // "this network", includes unspecified (RFC 791)
    '10.0.0.0/8', // RFC 1918
    '100.64.0.0/10', // shared address space, CGNAT (RFC 6598)
    '127.0.0.0/8', // loopback
    '169.254.0.0/16', // link-local (RFC 3927)
    '172.16.0.0/12', // RFC 1918
    '192.168.0.0/16', // RFC 1918
    '224.0.0.0/4', // multicast: never a mail destination
    '240.0.0.0/4', // reserved, includes the limited broadcast 255.255.255.255
    '::/96', // unspecified, loopback and the deprecated IPv4-compatible form
    'fc00::/7', // unique local (RFC 4193)
    'fe80::/10', // link-local
    'fec0::/10', // deprecated site-local (RFC 3879)
    'ff00::/8', // multicast
  ],
  'private ranges',
)

/**
 * True for addresses that are not public unicast destinations: loopback, RFC 1918, CGNAT,
 * link-local, unique-local, unspecified, multicast and reserved, including the IPv4-mapped
 * IPv6 form of each IPv4 range. Anything that is not an IP literal counts as not public.
 */
export function isPrivateOrLocal(ip: string): boolean {
  return !familyOf(stripZone(ip)) || matches(PRIVATE_OR_LOCAL, ip)
}

export interface ConnectGuardOptions {
  /** CIDRs (or single addresses) that may be reached: `net.connect_allow`. */
  allow: readonly string[]
  /** Also allow every public address, i.e. every one isPrivateOrLocal says false for (default false). */
  allowPublic?: boolean
}

export function createConnectGuard(opts: ConnectGuardOptions): ConnectGuard {
  const allowed = blockListOf(opts.allow, CONNECT_ALLOW_KEY)
  const allowPublic = opts.allowPublic ?? false

  const allows = (ip: string): boolean =>
    (matches(allowed, ip) || (allowPublic && !isPrivateOrLocal(ip))) && !matches(UNSPECIFIED, ip)

  const check = (ip: string): void => {
    if (!familyOf(stripZone(ip))) {
      throw new ConnectRefusedError(ip, 'not an IP address (resolve names through the resolver first)')
    }
    if (allows(ip)) return
    const what = allowPublic ? 'private or local address' : 'address'
    throw new ConnectRefusedError(ip, `${what} not in ${CONNECT_ALLOW_KEY}`)
  }

  const connect = ({ host, port, timeoutMs }: ConnectOptions): Promise<Socket> =>
    new Promise((resolve, reject) => {
      check(host)
      const socket = netConnect({ host, port })
      let timer: NodeJS.Timeout | undefined
      const onError = (err: Error): void => {
        clearTimeout(timer)
        socket.destroy()
        reject(err)
      }
      socket.once('error', onError)
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.off('error', onError)
        resolve(socket)
      })
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const err = Object.assign(
            new Error(`connection to ${host} port ${port} timed out after ${timeoutMs} ms`),
            {
              code: 'ETIMEDOUT',
              address: host,
              port,
            },
          )
          onError(err)
        }, timeoutMs)
      }
    })

  return { allows, check, connect }
}
