// A receiving SMTP server for the outbound benchmark's push-back mode (bench/outbound.ts
// --push-back): it answers each RCPT by the recipient, as real receivers push back, and throws
// every accepted message away. Run as a process of its own (`node pushback-sink.ts
// 127.0.0.1:PORT`) so its CPU is read from /proc like smtp-sink's.
// The rule (pushback-rule.ts), deterministic by recipient: the number in the local part (u123@remote.test -> 123)
//   n % 50 == 7  -> 550 5.1.1, always (2% of recipients);
//   n % 20 == 3  -> 451 4.2.0 the first time that address is seen, 250 after (5%);
//   otherwise, and for addresses without a number (a bounce to the sender) -> 250.
// Counters go to standard output as smtp-sink -c writes them, a record per change ended by \r,
// with more fields: `sess=S quit=Q mesg=M rcpt=R defer=D reject=J dsn=B`, where mesg counts
// messages with a non-null sender whose DATA was taken, dsn those with MAIL FROM:<> (bounces,
// never in mesg), defer the 451s given and reject the 550s. Loopback only. Speaks PIPELINING:
// replies go out in command order, one write per chunk of input.

import { createServer, type Socket } from 'node:net'
import { DEFER_ONCE, REJECT, recipientNumber } from './pushback-rule.ts'

const counts = { sess: 0, quit: 0, mesg: 0, rcpt: 0, defer: 0, reject: 0, dsn: 0 }
const seen = new Set<string>()
let flushQueued = false

function changed(): void {
  if (flushQueued) return
  flushQueued = true
  setImmediate(() => {
    flushQueued = false
    const c = counts
    process.stdout.write(
      `sess=${c.sess} quit=${c.quit} mesg=${c.mesg} rcpt=${c.rcpt} defer=${c.defer} reject=${c.reject} dsn=${c.dsn}\r`,
    )
  })
}

function rcptReply(arg: string): string {
  const open = arg.indexOf('<')
  const close = arg.indexOf('>', open + 1)
  const address = (open >= 0 && close > open ? arg.slice(open + 1, close) : arg.trim()).toLowerCase()
  const n = recipientNumber(address)
  if (n !== null && REJECT(n)) {
    counts.reject++
    return `550 5.1.1 <${address}>: Recipient address rejected: User unknown\r\n`
  }
  if (n !== null && DEFER_ONCE(n) && !seen.has(address)) {
    seen.add(address)
    counts.defer++
    return `451 4.2.0 <${address}>: Recipient address rejected: try again later\r\n`
  }
  return ''
}

function session(sock: Socket): void {
  counts.sess++
  changed()
  sock.setNoDelay(true)
  let buf = ''
  let inData = false
  let nullSender = false
  let accepted = 0
  sock.on('error', () => sock.destroy())
  sock.write('220 sink.remote.test ESMTP push-back sink\r\n')
  sock.setEncoding('latin1')
  sock.on('data', (chunk: string) => {
    buf += chunk
    let out = ''
    for (;;) {
      if (inData) {
        // The message ends at a line holding only "."; everything before it is dropped.
        const end = buf.indexOf('\r\n.\r\n')
        if (end < 0) {
          // Keep a tail long enough to find the terminator across chunks.
          if (buf.length > 4) buf = buf.slice(-4)
          break
        }
        buf = buf.slice(end + 5)
        inData = false
        if (nullSender) counts.dsn++
        else counts.mesg++
        changed()
        out += '250 2.0.0 Ok: queued\r\n'
        continue
      }
      const eol = buf.indexOf('\r\n')
      if (eol < 0) break
      const line = buf.slice(0, eol)
      buf = buf.slice(eol + 2)
      const verb = line.slice(0, 4).toUpperCase()
      if (verb === 'RCPT') {
        const refusal = rcptReply(line.slice(8))
        if (refusal) out += refusal
        else {
          accepted++
          counts.rcpt++
          out += '250 2.1.5 Ok\r\n'
        }
        changed()
      } else if (verb === 'MAIL') {
        accepted = 0
        nullSender = /^MAIL FROM:\s*<>/i.test(line)
        out += '250 2.1.0 Ok\r\n'
      } else if (verb === 'DATA') {
        if (accepted === 0) out += '554 5.5.1 Error: no valid recipients\r\n'
        else {
          inData = true
          // A message may begin in this very chunk: the terminator search covers it.
          buf = `\r\n${buf}`
          out += '354 End data with <CR><LF>.<CR><LF>\r\n'
        }
      } else if (verb === 'EHLO')
        out += '250-sink.remote.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n'
      else if (verb === 'HELO') out += '250 sink.remote.test\r\n'
      else if (verb === 'RSET') {
        accepted = 0
        out += '250 2.0.0 Ok\r\n'
      } else if (verb === 'NOOP') out += '250 2.0.0 Ok\r\n'
      else if (verb === 'QUIT') {
        counts.quit++
        changed()
        sock.end(`${out}221 2.0.0 Bye\r\n`)
        return
      } else out += '502 5.5.2 Error: command not recognized\r\n'
    }
    if (out) sock.write(out)
  })
}

{
  const [host, portText] = (process.argv[2] ?? '').split(':')
  if (host !== '127.0.0.1' || !portText) {
    console.error('usage: node pushback-sink.ts 127.0.0.1:PORT')
    process.exit(2)
  }
  const server = createServer({ backlog: 1024 } as never, session)
  server.on('error', (err) => {
    console.error(`push-back sink: ${err.message}`)
    process.exit(1)
  })
  server.listen(Number(portText), host, 1024)
  process.on('SIGTERM', () => process.exit(0))
}
