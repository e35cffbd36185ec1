// The imap role: IMAP on 143 (STARTTLS) and 993 (implicit TLS), or their fallbacks, as one
// component (one set of sessions and limits for both ports), told about mail changes by the
// change bus.

import type { MailPort } from '../config/ports.ts'
import { createImapServer, type ImapServer } from '../imap/server.ts'
import { networkMatcher } from '../net/connect-guard.ts'
import type { Component } from './component.ts'
import type { RoleContext } from './context.ts'
import { listenMailPort } from './listen.ts'

export function imapComponents(ctx: RoleContext): Component[] {
  return [imapComponent(ctx)]
}

function imapComponent(ctx: RoleContext): Component {
  const { config, log, clock } = ctx
  let server: ImapServer | null = null
  let unsubscribe: (() => void) | null = null
  return {
    name: 'imap',
    async start() {
      const plaintextAllowed = networkMatcher(
        config.auth.plaintext_allowed_from,
        'auth.plaintext_allowed_from',
      )
      const imap = createImapServer({
        mail: { store: ctx.store, clock, bus: ctx.bus, blobs: ctx.blobs },
        login: {
          store: ctx.store,
          clock,
          hasher: ctx.accounts.hasher,
          throttle: ctx.accounts.throttle,
          verified: ctx.accounts.mailLogins,
          settings: { mailboxPasswordWith2fa: config.auth.mailbox_password_with_2fa },
        },
        settings: { ...config.imap, max_message_bytes: config.smtp.max_message_bytes },
        hostname: config.hostname as string,
        tls: () => ctx.tls.serverOptions(),
        plaintextAllowed,
        log: log.child({ mod: 'imap' }),
        sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      })
      server = imap
      unsubscribe = ctx.bus.subscribe('mail.changed', (e) => {
        const mailbox = e.data.mailbox_id
        if (typeof mailbox === 'string') imap.mailChanged(mailbox, e.data.what)
      })
      const plain = ctx.mailPorts.find((p) => p.name === 'imap') as MailPort
      const tls = ctx.mailPorts.find((p) => p.name === 'imaps') as MailPort
      const p1 = await listenMailPort(
        plain,
        config.imap.port === null,
        (p) => imap.listen(p, plain.host, false),
        ctx.notes,
      )
      const p2 = await listenMailPort(
        tls,
        config.imap.tls_port === null,
        (p) => imap.listen(p, tls.host, true),
        ctx.notes,
      )
      return [
        { name: 'imap', host: plain.host, port: p1, tls: 'starttls' },
        { name: 'imaps', host: tls.host, port: p2, tls: 'implicit' },
      ]
    },
    async stop(deadlineMs) {
      unsubscribe?.()
      await server?.close(deadlineMs)
    },
    detail: () => `${server?.connections ?? 0} sessions`,
  }
}
