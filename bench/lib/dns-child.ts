// Child process of the SMTP benchmarks: the loopback DNS server of test/helpers/dns-server.ts in
// a process of its own, so answering the MX's lookups costs the measured server no CPU or memory
// (as a real resolver on another host would not). Driven over IPC by dns-process.ts:
//   { op: 'set', name, type, records }   change the zone (takes effect on the next query)
//   { op: 'stats', id }                  -> { id, queries, byName: { 'TXT name': count } }
//   { op: 'close' }                      close and exit
// Listens on 127.0.0.1 only and exits when its parent goes away.

import type { RecordType } from '../../src/dns/resolver.ts'
import { startDnsServer } from '../../test/helpers/dns-server.ts'

type Msg =
  | { op: 'set'; name: string; type: RecordType; records: never }
  | { op: 'stats'; id: number }
  | { op: 'close' }

const server = await startDnsServer({})
const send = (m: unknown) => process.send?.(m)
process.on('disconnect', () => void server.close().finally(() => process.exit(0)))
process.on('message', (m: Msg) => {
  if (m.op === 'set') server.set(m.name, m.type, m.records)
  else if (m.op === 'stats') {
    const byName: Record<string, number> = {}
    for (const q of server.queries) byName[`${q.type} ${q.name}`] = (byName[`${q.type} ${q.name}`] ?? 0) + 1
    send({ id: m.id, queries: server.queries.length, byName })
  } else if (m.op === 'close') void server.close().finally(() => process.exit(0))
})
send({ ready: true, port: server.port })
