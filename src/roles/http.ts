// The http role: the Fastify app (API, docs, well-known files) on http.host:http.port and, when
// https.enabled, the same routes (and WebSocket upgrades) over TLS with the certificate
// service's SNI certificates.

import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../http/app.ts'
import type { App } from '../http/types.ts'
import type { Component } from './component.ts'
import type { RoleContext } from './context.ts'
import { closeHttpWithin, hostForUrl } from './listen.ts'

/** The http listener, and the https one beside it when https.enabled (it serves the same app). */
export function httpComponents(ctx: RoleContext): Component[] {
  const { config, log } = ctx
  let app: App | null = null
  const http: Component = {
    name: 'http',
    async start() {
      app = await buildApp({
        config,
        log,
        version: ctx.version,
        services: ctx.http,
        listeners: ctx.listeners,
        plugins: ctx.httpPlugins,
      })
      await app.listen({ host: config.http.host, port: config.http.port })
      const port = (app.server.address() as AddressInfo).port
      if (config.public_url === null) ctx.setPublicUrl(`http://${hostForUrl(config.http.host)}:${port}`)
      return [{ name: 'http', host: config.http.host, port, tls: 'none' }]
    },
    async stop(deadlineMs) {
      const a = app
      if (!a) return
      await closeHttpWithin(
        a.server,
        () => a.close(),
        deadlineMs,
        () => log.warn({ grace_ms: deadlineMs }, 'shutdown deadline reached; closing open HTTP connections'),
      )
    },
  }
  return config.https.enabled ? [http, httpsComponent(ctx, () => app)] : [http]
}

function httpsComponent(ctx: RoleContext, appOf: () => App | null): Component {
  let server: HttpsServer | null = null
  return {
    name: 'https',
    async start() {
      const app = appOf()
      if (!app) throw new Error('the https listener needs the http component started first')
      const { tls, config } = ctx
      const s = createHttpsServer({ ...tls.serverOptions() }, (req, res) => app.routing(req, res))
      // WebSocket upgrades (GET /v1/ws) go to the app's upgrade handler, as on the http listener.
      s.on('upgrade', (req, socket, head) => app.server.emit('upgrade', req, socket, head))
      server = s
      tls.attach(s) // clients without SNI get reloaded certificates too
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(config.https.port, config.https.host as string, () => resolve())
      })
      const port = (s.address() as AddressInfo).port
      return [{ name: 'https', host: config.https.host as string, port, tls: 'implicit' }]
    },
    async stop(deadlineMs) {
      const s = server
      if (!s) return
      await closeHttpWithin(s, () => new Promise<void>((resolve) => s.close(() => resolve())), deadlineMs)
    },
  }
}
