// The peers of bench/webhooks.ts, in a process of their own so their CPU is not Postern's: a
// minimal SMTP sink on loopback (answers 250 to everything, 354 to DATA, counts each message
// at the end of its data; Postfix's smtp-sink is not on every machine) and N webhook receivers
// (HTTP on loopback) that echo verification challenges and record, per message, the time from
// the event (the body's `timestamp`) to its arrival. Talks to the parent over IPC:
// -> {ready, sinkPort, hookUrls}; <- {cmd:'stats'} -> {stats}; <- {cmd:'reset'}; <- {cmd:'close'}.

import { createServer as createHttpServer } from 'node:http'
import { type AddressInfo, createServer as createTcpServer } from 'node:net'

const receivers = Number(process.argv[2] ?? 3)

let sinkMessages = 0
let sinkSessions = 0
const sink = createTcpServer((sock) => {
  sinkSessions++
  let inData = false
  let buf = ''
  sock.setNoDelay(true)
  sock.write('220 sink.bench ESMTP\r\n')
  sock.on('data', (chunk) => {
    buf += chunk.toString('latin1')
    for (;;) {
      if (inData) {
        const end = buf.indexOf('\r\n.\r\n')
        if (end < 0) {
          // Keep only a tail long enough to find the terminator across chunks.
          if (buf.length > 8) buf = buf.slice(-8)
          return
        }
        buf = buf.slice(end + 5)
        inData = false
        sinkMessages++
        sock.write('250 2.0.0 queued\r\n')
        continue
      }
      const nl = buf.indexOf('\r\n')
      if (nl < 0) return
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 2)
      const verb = line.slice(0, 4).toUpperCase()
      if (verb === 'EHLO')
        sock.write('250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n')
      else if (verb === 'DATA') {
        inData = true
        buf = `\r\n${buf}` // the terminator may follow at once
        sock.write('354 go ahead\r\n')
      } else if (verb === 'QUIT') {
        sock.end('221 bye\r\n')
        return
      } else sock.write('250 ok\r\n')
    }
  })
  sock.on('error', () => {})
})

interface HookStats {
  messages: number
  /** ms from the event to its arrival, per message. */
  latencies: number[]
  first: number | null
  last: number | null
  ids: Set<string>
  duplicates: number
}
const hooks: HookStats[] = []
const servers = Array.from({ length: receivers }, (_, i) => {
  const st: HookStats = { messages: 0, latencies: [], first: null, last: null, ids: new Set(), duplicates: 0 }
  hooks.push(st)
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const at = Date.now()
      let body: { type?: string; timestamp?: string; data?: { challenge?: string } } = {}
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      } catch {}
      if (body.type === 'webhook.verification') {
        res.writeHead(200, { 'content-type': 'application/json' })
        return res.end(JSON.stringify({ challenge: body.data?.challenge }))
      }
      const id = String(req.headers['webhook-id'] ?? '')
      if (st.ids.has(id)) st.duplicates++
      st.ids.add(id)
      st.messages++
      st.first ??= at
      st.last = at
      if (body.timestamp) st.latencies.push(at - Date.parse(body.timestamp))
      res.writeHead(200)
      res.end()
    })
  })
  server.keepAliveTimeout = 1000
  return { server, index: i }
})

await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r))
const urls: string[] = []
for (const { server, index } of servers) {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook/${index}`)
}

process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'stats')
    process.send?.({
      stats: {
        sinkMessages,
        sinkSessions,
        cpuS: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
        hooks: hooks.map((h) => ({
          messages: h.messages,
          unique: h.ids.size,
          duplicates: h.duplicates,
          first: h.first,
          last: h.last,
          latencies: h.latencies,
        })),
      },
    })
  else if (m.cmd === 'reset') {
    sinkMessages = 0
    for (const h of hooks)
      Object.assign(h, { messages: 0, latencies: [], first: null, last: null, ids: new Set(), duplicates: 0 })
    process.send?.({ reset: true })
  } else if (m.cmd === 'close') process.exit(0)
})
process.send?.({ ready: true, sinkPort: (sink.address() as AddressInfo).port, hookUrls: urls })
