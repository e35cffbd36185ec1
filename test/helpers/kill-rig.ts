// The installation kill -9 tests share: set up in-process (an org with a hosted, verified
// domain; `prepare` may add to it through the API), then served by real `postern serve` child
// processes that a test kills, and opened again with no roles to see what survived. Plus the
// raw SMTP client those tests drive the children with (one reply awaited per command).

import { connect, type Socket } from 'node:net'
import { loadConfig } from '../../src/config/load.ts'
import { createLogger } from '../../src/log/logger.ts'
import { type Postern, startPostern } from '../../src/main.ts'
import { hostedOrg } from '../delivery/helpers.ts'
import type { Api } from './api.ts'
import { type Child, runChild } from './child.ts'
import { type Dialect, testDatabase } from './dialects.ts'
import { startDnsServer } from './dns-server.ts'
import { loopbackEnv, type TestServer } from './server.ts'

const BIN = new URL('../../bin/postern.mjs', import.meta.url)

export interface KillRig {
  env: Record<string, string>
  /** The hosted domain; ann@ is a mailbox there. */
  domain: string
  /** Starts `postern serve` on the installation; resolves when its MX listens. */
  serve(): Promise<{ child: Child; port: number }>
  /** Opens the installation with no roles (nothing running), runs `look`, closes it. */
  inspect<T>(look: (p: Postern) => Promise<T>): Promise<T>
  close(): Promise<void>
}

export async function killRig(
  dialect: Dialect,
  opts: { env?: Record<string, string>; prepare?: (api: Api, domain: string) => Promise<void> } = {},
): Promise<KillRig> {
  const tdb = testDatabase(dialect)
  const dns = await startDnsServer({})
  const env: Record<string, string> = {
    ...loopbackEnv(),
    ...tdb.env,
    POSTERN_DNS_SERVERS: dns.servers.join(','),
    POSTERN_SMTP_VERIFY_AUTH: 'false',
    POSTERN_LOG_LEVEL: 'warn',
    ...opts.env,
  }
  const close = async () => {
    await dns.close()
    await tdb.drop()
  }
  const open = () =>
    startPostern({
      config: { ...loadConfig({ env, args: [] }).config, roles: [] },
      log: createLogger({ level: 'silent' }),
      print: () => {},
    })
  try {
    const { config } = loadConfig({ env, args: [] })
    const setup = await startPostern({ config, log: createLogger({ level: 'silent' }), print: () => {} })
    let domain: string
    try {
      const org = await hostedOrg({
        postern: setup,
        config,
        dns,
        url: setup.url as string,
        dataDir: tdb.dataDir,
        close: async () => {},
      } as TestServer)
      domain = org.domain
      await opts.prepare?.(org.api, domain)
    } finally {
      await setup.close()
    }
    return {
      env,
      domain,
      async serve() {
        const child = runChild(BIN, ['serve'], env)
        const port = Number((await child.waitFor(/smtp-mx +smtp:\/\/127\.0\.0\.1:(\d+)/))[1])
        return { child, port }
      },
      async inspect(look) {
        const p = await open()
        try {
          return await look(p)
        } finally {
          await p.close()
        }
      },
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}

/** An SMTP client on a raw socket: each command resolves with its (final) reply line. */
export function rawSmtp(port: number) {
  const sock: Socket = connect(port, '127.0.0.1')
  let buf = ''
  const waiting: ((r: string) => void)[] = []
  sock.setEncoding('latin1')
  sock.on('data', (d: string) => {
    buf += d
    for (;;) {
      const m = /^\d{3} [^\r\n]*\r\n/m.exec(buf)
      if (!m) break
      const end = m.index + m[0].length
      const reply = buf.slice(0, end)
      buf = buf.slice(end)
      waiting.shift()?.(reply)
    }
  })
  sock.on('error', () => {})
  const next = () => new Promise<string>((r) => waiting.push(r))
  return {
    greeting: next(),
    cmd(line: string) {
      const p = next()
      sock.write(`${line}\r\n`)
      return p
    },
    write: (data: Buffer | string) => sock.write(data),
    next,
    destroy: () => sock.destroy(),
  }
}
