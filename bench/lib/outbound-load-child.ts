// Child process of the outbound benchmark: the client side, in a process of its own so it costs
// Postern's process nothing. It starts Postfix's smtp-sink (the receiving MX) on a free
// 127.0.0.1 port with -c, reads the sink's running counter from its standard output as it
// comes (the moment the N-th message arrived is the end-to-end time), and sends mail through
// Postern's HTTP API: `single` (C keep-alive clients each POST /v1/emails one message at a
// time) or `batch` (C clients each POST /v1/emails/batch with `batchSize` messages), or through
// SMTP submission: `submission` (C mail clients, nodemailer's pool: each connection says
// STARTTLS and AUTH once and carries up to 100 messages, one after another, as mail clients do).
// Started with the argument `push-back`, the receiving MX is pushback-sink.ts instead (in a
// process of its own, same counter records plus its refusals): it defers 5% and rejects 2% of
// recipients, and each message goes to a recipient of its own (RunJob.toPattern).
// Driven over IPC by outbound-load.ts:
//   (start)                       -> { ready, port, sinkPid }
//   { op: 'count', id }           -> { id, mesg, sess }  the sink's counters now
//   { op: 'run', id, ...RunJob }  -> { accepted: at } when the last 202 arrived, then
//                                    { id, report } when the sink counted every message
// Every clock is epoch ms with sub-ms precision (performance.timeOrigin + now), comparable
// across the benchmark's processes. Loopback only; bounded by count and timeouts.

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { connect, createServer } from 'node:net'
import nodemailer, { type Transporter } from 'nodemailer'

export interface RunJob {
  /** http://127.0.0.1:<port> */
  url: string
  key: string
  mode: 'single' | 'batch' | 'submission'
  /** `submission`: Postern's 587 port and the mailbox log-in. */
  smtp?: { port: number; user: string; pass: string }
  messages: number
  clients: number
  batchSize: number
  from: string
  to: string
  /** A recipient per message: `{i}` is replaced by the message's number (push-back runs). */
  toPattern?: string
  /** Messages the sink must count before the run is over (default: every accepted one). */
  expectDelivered?: number
  /** Size of the text part, in bytes. */
  textBytes: number
  /** Subject prefix, so runs are told apart. */
  label: string
  timeoutMs: number
}

export interface RunReport {
  mode: RunJob['mode']
  messages: number
  requests: number
  accepted: number
  refused: number
  codes: Record<string, number>
  firstError: string | null
  /** Epoch ms: first request written, last 202 read, N-th message counted by the sink (null: never). */
  t0: number
  tAccepted: number
  tDelivered: number | null
  /** Sink counters at the start and the end of the run (push-back sink: its refusals too). */
  sinkBase: SinkCounts
  sinkEnd: SinkCounts
  /** Messages the sink had received (this run) when the last 202 arrived. */
  deliveredAtAccept: number
  /** Request latencies (send to full reply), ms. */
  latencies: number[]
  /** One sample a second: seconds since t0, accepted and delivered so far. */
  timeline: { s: number; accepted: number; delivered: number }[]
  requestBytes: number
  /** CPU seconds (user+sys) of this client process and of smtp-sink during the run. */
  clientCpuS: number
  sinkCpuS: number | null
}

export interface SinkCounts {
  mesg: number
  sess: number
  /** pushback-sink.ts only: 451s given, 550s given, bounces (MAIL FROM:<>) received. */
  defer: number
  reject: number
  dsn: number
}

const SMTP_SINK = '/usr/sbin/smtp-sink'
const PUSHBACK_SINK = new URL('./pushback-sink.ts', import.meta.url).pathname
const pushBack = process.argv.includes('push-back')
const now = () => performance.timeOrigin + performance.now()
const send = (m: unknown) => process.send?.(m)

const sink: SinkCounts = { mesg: 0, sess: 0, defer: 0, reject: 0, dsn: 0 }
let sinkPid = 0

/** CPU seconds (user+sys) of a process so far, from /proc (Linux; clock ticks of 10 ms). */
function procCpuS(pid: number): number | null {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return null
  }
}
let onCount: (() => void) | null = null

/** A free 127.0.0.1 port (asked of the kernel, then released for smtp-sink to bind). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/** Resolves when something on the port answers with a 220 greeting. */
async function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port })
    const timer = setTimeout(() => {
      sock.destroy()
      resolve(false)
    }, 1000)
    sock.once('data', (d) => {
      clearTimeout(timer)
      sock.end('QUIT\r\n')
      resolve(d.toString('latin1').startsWith('220'))
    })
    sock.once('error', () => {
      clearTimeout(timer)
      resolve(false)
    })
  })
}

async function startSink(): Promise<{ port: number; pid: number }> {
  const port = await freePort()
  // -c: a running "sess=S quit=Q mesg=M\r" record on stdout at every change. As root,
  // smtp-sink insists on dropping privileges (-u). -m: concurrent sessions; 1024: backlog.
  const asRoot = process.getuid?.() === 0
  const args = ['-c', ...(asRoot ? ['-u', 'postfix'] : []), '-m', '1024', `127.0.0.1:${port}`, '1024']
  const child = pushBack
    ? spawn(process.execPath, [PUSHBACK_SINK, `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(SMTP_SINK, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let tail = ''
  child.stdout.setEncoding('latin1')
  child.stdout.on('data', (chunk: string) => {
    tail += chunk
    const end = tail.lastIndexOf('\r')
    if (end < 0) return
    const done = tail.slice(0, end)
    tail = tail.slice(end + 1)
    const i = done.lastIndexOf('sess=')
    const m = /sess=(\d+) quit=\d+ mesg=(\d+)(?: rcpt=\d+ defer=(\d+) reject=(\d+) dsn=(\d+))?/.exec(
      done.slice(i),
    )
    if (!m) return
    sink.sess = Number(m[1])
    sink.mesg = Number(m[2])
    if (m[3] !== undefined) {
      sink.defer = Number(m[3])
      sink.reject = Number(m[4])
      sink.dsn = Number(m[5])
    }
    onCount?.()
  })
  let err = ''
  child.stderr.on('data', (d) => {
    if (err.length < 4000) err += d
  })
  child.once('exit', (code) => {
    if (!exiting) {
      console.error(`smtp-sink exited (${code}): ${err.trim()}`)
      process.exit(1)
    }
  })
  process.on('exit', () => child.kill())
  sinkPid = child.pid as number
  for (let i = 0; i < 50; i++) {
    if (await greets(port)) return { port, pid: child.pid as number }
    await new Promise((r) => setTimeout(r, 100))
  }
  child.kill()
  throw new Error(`smtp-sink did not answer on 127.0.0.1:${port}: ${err.trim()}`)
}

/** About `bytes` of plain text in lines of at most 72 characters (7bit, no soft breaks). */
function bodyText(bytes: number): string {
  const words = 'the queue hands each message to the remote server and records its answer'.split(' ')
  const lines: string[] = []
  let total = 0
  for (let n = 1; total < bytes; n++) {
    let line = `${String(n).padStart(3, '0')}`
    for (let w = n; line.length < 66; w++) line += ` ${words[w % words.length]}`
    lines.push(line)
    total += line.length + 1
  }
  return `${lines.join('\n')}\n`
}

let exiting = false

async function run(job: RunJob, id: number): Promise<RunReport> {
  const u = new URL(job.url)
  if (u.hostname !== '127.0.0.1') throw new Error('benchmarks talk to 127.0.0.1 only')
  // The JSON-escaped text once; each message differs by its subject only.
  const text = JSON.stringify(bodyText(job.textBytes))
  const from = JSON.stringify(job.from)
  const to = JSON.stringify(job.to)
  const pattern = job.toPattern
  const toOf = (i: number) => (pattern ? pattern.replace('{i}', String(i)) : job.to)
  const one = (i: number) =>
    `{"from":${from},"to":${pattern ? JSON.stringify(toOf(i)) : to},"subject":"${job.label} ${i}","text":${text}}`
  const per = job.mode === 'batch' ? job.batchSize : 1
  const requests = Math.ceil(job.messages / per)
  const agent = new Agent({ keepAlive: true, maxSockets: job.clients })
  const path = job.mode === 'single' ? '/v1/emails' : '/v1/emails/batch'
  const report: RunReport = {
    mode: job.mode,
    messages: job.messages,
    requests: 0,
    accepted: 0,
    refused: 0,
    codes: {},
    firstError: null,
    t0: 0,
    tAccepted: 0,
    tDelivered: null,
    sinkBase: { ...sink },
    sinkEnd: { ...sink },
    deliveredAtAccept: 0,
    latencies: [],
    timeline: [],
    requestBytes: 0,
    clientCpuS: 0,
    sinkCpuS: null,
  }
  const cpu0 = process.cpuUsage()
  const sinkCpu0 = procCpuS(sinkPid)
  const base = sink.mesg
  const target = base + (job.expectDelivered ?? job.messages)
  const delivered = new Promise<void>((resolve) => {
    const check = () => {
      if (sink.mesg >= target) {
        report.tDelivered ??= now()
        onCount = null
        resolve()
      }
    }
    onCount = check
  })

  const post = (body: Buffer) =>
    new Promise<{ status: number; text: string }>((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: u.port,
          path,
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': body.length,
            authorization: `Bearer ${job.key}`,
          },
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (d: string) => {
            if (text.length < 2000) text += d
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
          res.on('error', (e) => resolve({ status: 0, text: e.message }))
        },
      )
      req.setTimeout(120_000, () => req.destroy(new Error('no reply within 120 s')))
      req.on('error', (e) => resolve({ status: 0, text: e.message }))
      req.end(body)
    })

  // Submission: the message as a mail client writes it (the server adds Message-ID and Date).
  const plain = bodyText(job.textBytes).replace(/\n/g, '\r\n')
  const raw = (i: number) =>
    `From: <${job.from}>\r\nTo: <${toOf(i)}>\r\nSubject: ${job.label} ${i}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${plain}`
  const mailer =
    job.mode === 'submission' && job.smtp
      ? nodemailer.createTransport({
          pool: true,
          maxConnections: job.clients,
          maxMessages: 100,
          host: '127.0.0.1',
          port: job.smtp.port,
          secure: false,
          requireTLS: true,
          tls: { rejectUnauthorized: false },
          auth: { user: job.smtp.user, pass: job.smtp.pass },
        })
      : null
  if (job.mode === 'submission' && !mailer) throw new Error('submission runs need job.smtp')
  const submit = async (i: number): Promise<{ status: number; text: string }> => {
    try {
      const info = await (mailer as Transporter).sendMail({
        envelope: { from: job.from, to: [toOf(i)] },
        raw: raw(i),
      })
      const response = String(info.response ?? '')
      return { status: /^250 /.test(response) ? 202 : 0, text: response }
    } catch (err) {
      const e = err as { responseCode?: number; message: string }
      return { status: e.responseCode ?? 0, text: e.message }
    }
  }

  let next = 0
  const client = async () => {
    for (let r = next++; r < requests; r = next++) {
      const first = r * per
      const count = Math.min(per, job.messages - first)
      if (mailer) {
        const t = now()
        const res = await submit(first)
        report.latencies.push(Math.round((now() - t) * 1000) / 1000)
        report.requests++
        if (res.status === 202) report.accepted++
        else {
          report.refused++
          report.codes[res.status] = (report.codes[res.status] ?? 0) + 1
          report.firstError ??= `${res.status} ${res.text.slice(0, 300)}`
        }
        continue
      }
      const body = Buffer.from(
        job.mode === 'single'
          ? one(first)
          : `[${Array.from({ length: count }, (_, k) => one(first + k)).join(',')}]`,
      )
      report.requestBytes += body.length
      const t = now()
      const res = await post(body)
      report.latencies.push(Math.round((now() - t) * 1000) / 1000)
      report.requests++
      if (res.status === 202) report.accepted += count
      else {
        report.refused += count
        report.codes[res.status] = (report.codes[res.status] ?? 0) + 1
        report.firstError ??= `${res.status} ${res.text.slice(0, 300)}`
      }
    }
  }
  report.t0 = now()
  const sampler = setInterval(() => {
    report.timeline.push({
      s: Math.round((now() - report.t0) / 10) / 100,
      accepted: report.accepted,
      delivered: sink.mesg - base,
    })
  }, 1000)
  try {
    await Promise.all(Array.from({ length: job.clients }, client))
    report.tAccepted = now()
    report.deliveredAtAccept = sink.mesg - base
    send({ id, accepted: report.tAccepted })
    // Refused messages never arrive: wait for the accepted ones only.
    if (report.refused) onCount = null
    const want = job.expectDelivered ?? report.accepted
    const waitFor = report.refused ? waitUntil(() => sink.mesg >= base + want) : delivered
    const left = Math.max(1000, job.timeoutMs - (now() - report.t0))
    await Promise.race([waitFor, new Promise((r) => setTimeout(r, left))])
    if (report.refused && sink.mesg >= base + want) report.tDelivered = now()
  } finally {
    clearInterval(sampler)
    onCount = null
    agent.destroy()
    mailer?.close()
  }
  report.timeline.push({
    s: Math.round((now() - report.t0) / 10) / 100,
    accepted: report.accepted,
    delivered: sink.mesg - base,
  })
  report.sinkEnd = { ...sink }
  const cpu = process.cpuUsage(cpu0)
  report.clientCpuS = Math.round((cpu.user + cpu.system) / 1e4) / 100
  const sinkCpu1 = procCpuS(sinkPid)
  report.sinkCpuS =
    sinkCpu0 === null || sinkCpu1 === null ? null : Math.round((sinkCpu1 - sinkCpu0) * 100) / 100
  return report
}

function waitUntil(cond: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const t = setInterval(() => {
      if (cond()) {
        clearInterval(t)
        resolve()
      }
    }, 5)
  })
}

process.on('disconnect', () => {
  exiting = true
  process.exit(0)
})
process.on('message', async (m: { op: string; id: number } & Partial<RunJob>) => {
  if (m.op === 'count') send({ id: m.id, ...sink })
  else if (m.op === 'run') {
    try {
      send({ id: m.id, report: await run(m as unknown as RunJob, m.id) })
    } catch (err) {
      send({ id: m.id, error: (err as Error).stack ?? String(err) })
    }
  } else if (m.op === 'close') {
    exiting = true
    process.exit(0)
  }
})
try {
  const s = await startSink()
  send({ ready: true, port: s.port, sinkPid: s.pid })
} catch (err) {
  send({ error: (err as Error).message })
  process.exit(1)
}
