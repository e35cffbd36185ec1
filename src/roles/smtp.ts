// The smtp role: the MX on port 25 (or its fallback). Submission (587/465) joins this list.

import type { MailPort } from '../config/ports.ts'
import { createMxHandler } from '../smtp/mx-handler.ts'
import { createSmtpServer, type SmtpServer } from '../smtp/server.ts'
import type { Component } from './component.ts'
import type { RoleContext } from './context.ts'
import { listenMailPort } from './listen.ts'

export function smtpComponents(ctx: RoleContext): Component[] {
  return [mxComponent(ctx)]
}

function mxComponent(ctx: RoleContext): Component {
  const { config, log, clock } = ctx
  let smtp: SmtpServer | null = null
  return {
    name: 'smtp-mx',
    async start() {
      const mx = ctx.mailPorts.find((p) => p.name === 'smtp-mx') as MailPort
      const smtpLog = log.child({ mod: 'smtp' })
      const server = createSmtpServer({
        handler: createMxHandler(ctx.delivery, smtpLog, ctx.outbound),
        settings: config.smtp,
        hostname: config.hostname as string,
        tls: () => ctx.tls.serverOptions(),
        log: smtpLog,
        now: () => clock.now(),
      })
      smtp = server
      const port = await listenMailPort(
        mx,
        config.smtp.mx_port === null,
        (p) => server.listen(p, mx.host),
        ctx.notes,
      )
      return [{ name: 'smtp-mx', host: mx.host, port, tls: 'starttls' }]
    },
    stop: (deadlineMs) => smtp?.close(deadlineMs) ?? Promise.resolve(),
  }
}
