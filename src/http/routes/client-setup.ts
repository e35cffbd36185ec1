// Public documents mail clients and senders fetch: Thunderbird autoconfig, Outlook
// autodiscover, and the MTA-STS policy (https://mta-sts.<domain>/.well-known/mta-sts.txt,
// served over the HTTPS listener with the certificate service's SNI). Only for verified,
// active hosted domains; anything else is 404, so these reveal nothing about other names.

import type { FastifyReply } from 'fastify'
import { Type } from 'typebox'
import {
  autoconfigXml,
  autodiscoverRequestAddress,
  autodiscoverXml,
} from '../../services/domains/client-setup.ts'
import { findServedDomain, mtaStsPolicyFor } from '../../services/domains/domains.ts'
import { problem, sendProblem } from '../problem.ts'
import type { RoutePlugin } from '../types.ts'

const hostOf = (h: string | undefined) => (h ?? '').replace(/:\d+$/, '').toLowerCase()

export const clientSetupRoutes: RoutePlugin = async (app, deps) => {
  const ctx = deps.services.domains
  const settings = ctx.settings
  const tags = ['client set-up']
  const notServed = (reply: FastifyReply, what: string) =>
    sendProblem(reply, problem(404, 'DOMAIN_NOT_SERVED', `${what} is not a verified domain of this server.`))

  app.addContentTypeParser(
    ['text/xml', 'application/xml'],
    { parseAs: 'string', bodyLimit: 16_384 },
    (_req, body, done) => done(null, body),
  )

  const autoconfig = async (
    req: { query: { emailaddress?: string }; headers: { host?: string } },
    reply: FastifyReply,
  ) => {
    const fromEmail = req.query.emailaddress?.split('@')[1]
    const fromHost = hostOf(req.headers.host).replace(/^autoconfig\./, '')
    const name = fromEmail ?? fromHost
    const domain = await findServedDomain(ctx, name)
    if (!domain) return notServed(reply, name || 'This host')
    return reply
      .type('application/xml; charset=utf-8')
      .send(autoconfigXml({ domain: domain.name, mailHost: settings.mailHost, ports: settings.ports }))
  }
  const schema = {
    tags,
    summary: 'Thunderbird autoconfig for a hosted domain',
    querystring: Type.Object({ emailaddress: Type.Optional(Type.String({ maxLength: 330 })) }),
  }
  app.get('/.well-known/autoconfig/mail/config-v1.1.xml', { config: { auth: 'public' }, schema }, autoconfig)
  app.get(
    '/mail/config-v1.1.xml',
    { config: { auth: 'public' }, schema: { ...schema, hide: true } },
    autoconfig,
  )

  for (const url of ['/autodiscover/autodiscover.xml', '/Autodiscover/Autodiscover.xml'])
    app.post(
      url,
      {
        config: { auth: 'public' },
        schema: {
          tags,
          summary: 'Outlook autodiscover (POX) for an address of a hosted domain',
          hide: url !== '/autodiscover/autodiscover.xml',
        },
      },
      async (req, reply) => {
        const email = autodiscoverRequestAddress(String(req.body ?? ''))
        if (!email)
          return sendProblem(
            reply,
            problem(400, 'NO_EMAIL_ADDRESS', 'The request needs an <EMailAddress> element.'),
          )
        const domain = await findServedDomain(ctx, email.split('@')[1] ?? '')
        if (!domain) return notServed(reply, email.split('@')[1] ?? 'That domain')
        return reply.type('application/xml; charset=utf-8').send(
          autodiscoverXml({
            domain: domain.name,
            email,
            mailHost: settings.mailHost,
            ports: settings.ports,
          }),
        )
      },
    )

  app.get(
    '/.well-known/mta-sts.txt',
    {
      config: { auth: 'public' },
      schema: { tags, summary: 'MTA-STS policy (RFC 8461), for Host: mta-sts.<hosted domain>' },
    },
    async (req, reply) => {
      const host = hostOf(req.headers.host)
      if (!host.startsWith('mta-sts.') || settings.mtaStsMode === 'none')
        return notServed(reply, host || 'This host')
      const domain = await findServedDomain(ctx, host.slice('mta-sts.'.length))
      if (!domain) return notServed(reply, host)
      return reply.type('text/plain; charset=utf-8').send(mtaStsPolicyFor(ctx))
    },
  )
}
