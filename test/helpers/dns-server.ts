// A real DNS server on 127.0.0.1 (dns2), UDP and TCP on one random port, answering from a
// mutable zone in the static-zone format, so DNS-dependent flows run over sockets with
// Postern's system resolver pinned to it (`dns.servers: server.servers`).
// Invariants:
// - Answers like an authoritative-and-recursive server: unknown name -> NXDOMAIN, known name
//   without the type -> NODATA (NOERROR, empty answer), CNAMEs followed within the zone.
// - Every question is recorded in `queries` (name as asked, lower-cased, no trailing dot).
// - TTLs are 0 unless `ttl` (seconds) is set, and the zone is read at query time, so `set`
//   takes effect on the next query (a caching resolver keeps TTL-0 answers for its default).
// - TXT strings longer than 255 octets are split into several character-strings; an answer
//   too big for UDP goes out truncated (TC) and the client retries over TCP.
// - `fail(name, 'SERVFAIL' | 'REFUSED' | 'TIMEOUT')` answers that rcode, or nothing at all.

import type { AddressInfo, Socket } from 'node:net'
import { Packet, type Resource, TCPServer, UDPServer } from 'dns2'
import type { RecordType } from '../../src/dns/resolver.ts'
import {
  canonicalName,
  lookupZone,
  txtStrings,
  type Zone,
  type ZoneRecords,
  type ZoneValue,
} from '../../src/dns/static-zone.ts'

export type ServerFailure = 'SERVFAIL' | 'REFUSED' | 'TIMEOUT'

export interface DnsServer {
  port: number
  /** For `createResolver({ servers })` / `dns.servers`. */
  servers: string[]
  queries: { name: string; type: string }[]
  /** The TTL written on every answer record (seconds); 0 by default. */
  ttl: number
  set<T extends RecordType>(name: string, type: T, records: ZoneValue<T> | undefined): void
  fail(name: string, failure: ServerFailure | undefined): void
  close(): Promise<void>
}

type Question = { name: string; type: number; class: number }
type Send = (response: Packet) => unknown

// RFC 2782: an SRV target MUST NOT be compressed, and c-ares (Node's resolver) refuses one that
// is (EBADRESP); dns2 compresses it like any name, so write SRV rdata without compression.
type Writer = { write(value: number, bits: number): void; names?: unknown }
const srvCodec = (
  Packet.Resource as unknown as Record<string, { encode: (r: Record<string, unknown>, w: Writer) => void }>
).SRV as {
  encode: (r: Record<string, unknown>, w: Writer) => void
}
srvCodec.encode = (record, writer) => {
  writer.write(record.priority as number, 16)
  writer.write(record.weight as number, 16)
  writer.write(record.port as number, 16)
  const names = writer.names
  writer.names = undefined
  ;(Packet as unknown as { Name: { encode(name: string, w: Writer): void } }).Name.encode(
    record.target as string,
    writer,
  )
  writer.names = names
}

const TYPES: Record<number, RecordType> = {
  [Packet.TYPE.A]: 'A',
  [Packet.TYPE.AAAA]: 'AAAA',
  [Packet.TYPE.MX]: 'MX',
  [Packet.TYPE.TXT]: 'TXT',
  [Packet.TYPE.CNAME]: 'CNAME',
  [Packet.TYPE.PTR]: 'PTR',
  [Packet.TYPE.SRV]: 'SRV',
}

export async function startDnsServer(zone: Zone = {}): Promise<DnsServer> {
  const table: Zone = {}
  for (const [name, records] of Object.entries(zone)) table[canonicalName(name)] = { ...records }
  const failures = new Map<string, ServerFailure>()
  const queries: { name: string; type: string }[] = []

  const handle = (request: Packet, send: Send): void => {
    const response = Packet.createResponseFromRequest(request)
    response.header.aa = 1
    response.header.ra = 1
    const question = request.questions[0] as Question | undefined
    if (!question) {
      response.header.rcode = Packet.RCODE.FORMERR
      send(response)
      return
    }
    const name = question.name.toLowerCase().replace(/\.$/, '')
    queries.push({ name, type: Packet.typeName(question.type) })
    const failure = failures.get(canonicalName(name))
    if (failure === 'TIMEOUT') return
    if (failure) {
      response.header.rcode = Packet.RCODE[failure]
      send(response)
      return
    }
    const type = TYPES[question.type]
    if (!type) {
      // Known name, unsupported type: NODATA; unknown name: NXDOMAIN.
      if (!table[canonicalName(name)]) response.header.rcode = Packet.RCODE.NXDOMAIN
      send(response)
      return
    }
    response.answers.push(...answersFor(table, question, type, server.ttl))
    const result = lookupZone(table, name, type)
    if (!result.ok && result.code === 'NOTFOUND') response.header.rcode = Packet.RCODE.NXDOMAIN
    send(response)
  }

  // UDP and TCP on the same random port. The TCP twin of a free UDP port may be taken (by an
  // outgoing connection's ephemeral port, say): then try another pair, so large answers
  // (truncated over UDP, retried over TCP) always work.
  const tcp = new TCPServer()
  tcp.on('request', handle)
  const connections = new Set<Socket>()
  tcp.on('connection', (socket: Socket) => {
    connections.add(socket)
    socket.once('close', () => connections.delete(socket))
  })
  let udp = new UDPServer()
  let port = 0
  for (let attempt = 0; ; attempt++) {
    udp = new UDPServer()
    udp.on('request', handle)
    const u = udp
    port = await new Promise<number>((resolve, reject) => {
      u.once('error', reject)
      u.bind(0, '127.0.0.1', () => resolve((u.address() as AddressInfo).port))
    })
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject)
        tcp.listen(port, '127.0.0.1', () => {
          tcp.off('error', reject)
          resolve()
        })
      })
      break
    } catch (err) {
      await new Promise<void>((resolve) => u.close(() => resolve()))
      if (attempt >= 20)
        throw new Error(`no free UDP+TCP port pair for the test DNS server: ${(err as Error).message}`)
    }
  }

  const server: DnsServer = {
    port,
    servers: [`127.0.0.1:${port}`],
    queries,
    ttl: 0,
    set(name, type, records) {
      const key = canonicalName(name)
      const entry: ZoneRecords = { ...table[key] }
      if (records === undefined) delete entry[type]
      else (entry as Record<RecordType, unknown>)[type] = records
      table[key] = entry
    },
    fail(name, failure) {
      if (failure) failures.set(canonicalName(name), failure)
      else failures.delete(canonicalName(name))
    },
    close: async () => {
      for (const socket of connections) socket.destroy()
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => (tcp.listening ? tcp.close(() => resolve()) : resolve())),
      ])
    },
  }
  return server
}

/** The answer section for one question: the CNAME chain within the zone, then the records. */
function answersFor(table: Zone, question: Question, type: RecordType, ttl: number): Resource[] {
  // Plain records: dns2 encodes any object with name, type, class, ttl and the type's fields.
  const answers: Resource[] = []
  const base = { class: Packet.CLASS.IN, ttl }
  let owner = question.name
  for (let hop = 0; hop <= 8; hop++) {
    const entry = table[canonicalName(owner)]
    if (!entry) break
    const records = entry[type]
    if (records && records.length > 0) {
      for (const record of records)
        answers.push({ ...base, name: owner, type: Packet.TYPE[type], ...rdata(type, record) } as Resource)
      break
    }
    const target = type === 'CNAME' ? undefined : entry.CNAME?.[0]
    if (!target) break
    answers.push({ ...base, name: owner, type: Packet.TYPE.CNAME, domain: target } as Resource)
    owner = target
  }
  return answers
}

function rdata(type: RecordType, record: ZoneValue<RecordType>[number]): object {
  switch (type) {
    case 'A':
    case 'AAAA':
      return { address: record }
    case 'MX':
      return { ...(record as { exchange: string; priority: number }) }
    case 'TXT':
      return { data: txtStrings(record as string | readonly string[]) }
    case 'CNAME':
    case 'PTR':
      return { domain: record }
    case 'SRV':
      return { ...(record as { priority: number; weight: number; port: number; target: string }) }
  }
}
