// The smtp role: the MX on port 25, and submission on 587 (STARTTLS) and 465 (implicit TLS),
// or their fallbacks. Submission is the same SMTP server with the submission policy: AUTH
// required, mail queued for delivery (src/smtp/submission-handler.ts).
// Both spool a message's text to a temp file once it passes SPOOL_THRESHOLD_BYTES, and deliver
// at most LARGE_DELIVERIES such messages at once (src/smtp/large-messages.ts).

import { join } from 'node:path'
import type { MailPort } from '../config/ports.ts'
import { networkMatcher } from '../net/connect-guard.ts'
import { createMxHandler } from '../smtp/mx-handler.ts'
import type { MessageSpool } from '../smtp/protocol/data-reader.ts'
import { createSmtpServer, type SmtpServer } from '../smtp/server.ts'
import { createSubmissionHandler } from '../smtp/submission-handler.ts'
import { createSpool, sweepSpool } from '../store/blobs/spool.ts'
import type { Component } from './component.ts'
import type { RoleContext } from './context.ts'
import { listenMailPort } from './listen.ts'

/** Message text past this is written to a spool file as it arrives instead of kept in memory. */
export const SPOOL_THRESHOLD_BYTES = 256 * 1024
/** Spooled (large) messages delivered at once per listener; the others wait on disk. */
export const LARGE_DELIVERIES = 2
/** Spool files older than this at start were left by a process that died. */
const STALE_SPOOL_MS = 3600_000

export function smtpComponents(ctx: RoleContext): Component[] {
  const { config } = ctx
  // In the blob store's temp folder when it has one (its collection job sweeps it too).
  const dir =
    config.blobs.backend === 'fs' ? join(config.blobs.dir as string, 'tmp') : join(config.data_dir, 'spool')
  const large = {
    spool: { thresholdBytes: SPOOL_THRESHOLD_BYTES, open: createSpool(dir) },
    concurrency: LARGE_DELIVERIES,
  }
  const sweep = () =>
    sweepSpool(dir, STALE_SPOOL_MS, ctx.clock.now()).catch((err) =>
      ctx.log.warn({ err, dir }, 'could not sweep old spool files'),
    )
  return [mxComponent(ctx, large, sweep), submissionComponent(ctx, large)]
}

type Large = { spool: MessageSpool; concurrency: number }

function mxComponent(ctx: RoleContext, large: Large, sweep: () => Promise<unknown>): Component {
  const { config, log, clock } = ctx
  let smtp: SmtpServer | null = null
  return {
    name: 'smtp-mx',
    async start() {
      const mx = ctx.mailPorts.find((p) => p.name === 'smtp-mx') as MailPort
      const smtpLog = log.child({ mod: 'smtp' })
      await sweep()
      const server = createSmtpServer({
        large,
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

function submissionComponent(ctx: RoleContext, large: Large): Component {
  const { config, log, clock } = ctx
  let smtp: SmtpServer | null = null
  return {
    name: 'smtp-submission',
    async start() {
      const plain = ctx.mailPorts.find((p) => p.name === 'smtp-submission') as MailPort
      const implicit = ctx.mailPorts.find((p) => p.name === 'smtp-submissions') as MailPort
      const subLog = log.child({ mod: 'submission' })
      const server = createSmtpServer({
        large,
        handler: createSubmissionHandler({
          outbound: ctx.outbound,
          login: {
            store: ctx.store,
            clock,
            hasher: ctx.accounts.hasher,
            throttle: ctx.accounts.throttle,
            verified: ctx.accounts.mailLogins,
            settings: { mailboxPasswordWith2fa: config.auth.mailbox_password_with_2fa },
          },
          plaintextAllowed: networkMatcher(config.auth.plaintext_allowed_from, 'auth.plaintext_allowed_from'),
          log: subLog,
          sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
          maxRecipients: config.smtp.max_recipients,
        }),
        // Mail clients are not spammers probing the greeting: no pause before it.
        settings: { ...config.smtp, greeting_delay_ms: 0 },
        hostname: config.hostname as string,
        tls: () => ctx.tls.serverOptions(),
        log: subLog,
        now: () => clock.now(),
      })
      smtp = server
      const p1 = await listenMailPort(
        plain,
        config.smtp.submission_port === null,
        (p) => server.listen(p, plain.host),
        ctx.notes,
      )
      const p2 = await listenMailPort(
        implicit,
        config.smtp.submissions_port === null,
        (p) => server.listen(p, implicit.host, true),
        ctx.notes,
      )
      return [
        { name: 'smtp-submission', host: plain.host, port: p1, tls: 'starttls' },
        { name: 'smtp-submissions', host: implicit.host, port: p2, tls: 'implicit' },
      ]
    },
    stop: (deadlineMs) => smtp?.close(deadlineMs) ?? Promise.resolve(),
  }
}
