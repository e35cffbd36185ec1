// Domains: CRUD, DNS records to publish, live DNS status, verification and DKIM rotation.
// Admin scope; {id} takes the domain id or its name.

import { Type } from 'typebox'
import {
  createDomain,
  deleteDomain,
  domainDnsStatus,
  domainRecords,
  getDomain,
  listDomains,
  rotateDomainKeys,
  updateDomain,
  verifyDomain,
} from '../../services/domains/domains.ts'
import { toIso } from '../../time/clock.ts'
import { principalOf } from '../plugins/auth.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import {
  DkimKey,
  DnsRecords,
  DnsStatus,
  Domain,
  DomainCreate,
  DomainPatch,
  DomainWithKeys,
  dkimBody,
  domainBody,
} from '../schemas/domains.ts'
import type { RoutePlugin } from '../types.ts'

const IdParam = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 300, description: 'Domain id or name' }),
})

export const domainRoutes: RoutePlugin = async (app, deps) => {
  const ctx = deps.services.domains
  const tags = ['domains']
  const admin = { auth: 'admin' as const }
  const withKeys = (d: Awaited<ReturnType<typeof getDomain>>) => ({
    ...domainBody(d),
    dkim: d.dkim.map(dkimBody),
  })

  app.get(
    '/v1/domains',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Domains of your organisation',
        response: { 200: list(Domain), ...errorResponses },
      },
    },
    async (req) => ({
      data: (await listDomains(ctx, principalOf(req))).map(domainBody),
      next_cursor: null,
    }),
  )

  app.post(
    '/v1/domains',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Add a domain (pending until verified); makes its RSA and Ed25519 DKIM keys',
        body: DomainCreate,
        response: { 201: DomainWithKeys, ...errorResponses },
      },
    },
    async (req, reply) =>
      reply.code(201).send(withKeys(await createDomain(ctx, principalOf(req), req.body, req.ip))),
  )

  app.get(
    '/v1/domains/:id',
    {
      config: admin,
      schema: {
        tags,
        summary: 'One domain, with its DKIM keys',
        params: IdParam,
        response: { 200: DomainWithKeys, ...errorResponses },
      },
    },
    async (req) => withKeys(await getDomain(ctx, principalOf(req), req.params.id)),
  )

  app.patch(
    '/v1/domains/:id',
    {
      config: admin,
      schema: {
        tags,
        summary: "Change a domain's limits, description or active flag",
        params: IdParam,
        body: DomainPatch,
        response: { 200: Domain, ...errorResponses },
      },
    },
    async (req) => domainBody(await updateDomain(ctx, principalOf(req), req.params.id, req.body, req.ip)),
  )

  app.delete(
    '/v1/domains/:id',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Delete a domain; refused while it has mailboxes or aliases unless force=true',
        params: IdParam,
        querystring: Type.Object({ force: Type.Optional(Type.Boolean()) }),
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await deleteDomain(ctx, principalOf(req), req.params.id, req.query.force === true, req.ip)
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/v1/domains/:id/dns-records',
    {
      config: admin,
      schema: {
        tags,
        summary: 'The DNS records to publish (and a zone-file snippet)',
        params: IdParam,
        response: { 200: DnsRecords, ...errorResponses },
      },
    },
    async (req) => domainRecords(ctx, principalOf(req), req.params.id),
  )

  app.get(
    '/v1/domains/:id/dns-status',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Look up each record now: ok, missing, different or error',
        params: IdParam,
        response: { 200: DnsStatus, ...errorResponses },
      },
    },
    async (req) => {
      const s = await domainDnsStatus(ctx, principalOf(req), req.params.id)
      return { ...s, checked_at: toIso(s.checked_at) }
    },
  )

  app.post(
    '/v1/domains/:id/verify',
    {
      config: admin,
      schema: {
        tags,
        summary: 'Verify ownership and MX; the domain then receives mail',
        params: IdParam,
        response: { 200: Type.Object({ domain: Domain, dns: DnsStatus }), ...errorResponses },
      },
    },
    async (req) => {
      const r = await verifyDomain(ctx, principalOf(req), req.params.id, req.ip)
      return { domain: domainBody(r.domain), dns: { ...r.dns, checked_at: toIso(r.dns.checked_at) } }
    },
  )

  app.post(
    '/v1/domains/:id/dkim-keys',
    {
      config: admin,
      schema: {
        tags,
        summary:
          'Rotate DKIM: new RSA-2048 and Ed25519 keys; the old ones stay published for the grace period',
        params: IdParam,
        response: { 201: Type.Object({ data: Type.Array(DkimKey) }), ...errorResponses },
      },
    },
    async (req, reply) =>
      reply
        .code(201)
        .send({ data: (await rotateDomainKeys(ctx, principalOf(req), req.params.id, req.ip)).map(dkimBody) }),
  )
}
