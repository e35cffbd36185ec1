// `postern domain add|list|dns|verify`: hosted domains from the command line.

import {
  createDomain,
  domainRecords,
  listDomains,
  trustDomainAsOperator,
  verifyDomain,
} from '../../services/domains/domains.ts'
import { group, output, withAdmin } from '../admin.ts'
import { UsageError } from '../command.ts'

const intFlag = (v: unknown, name: string) => {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} needs a whole number`)
  return n
}

export const domainCommand = group(
  'domain',
  'Manage hosted domains: add them, see the DNS records to publish, verify them.',
  {
    add: {
      usage:
        'add <name> [--max-mailboxes N] [--max-aliases N] [--default-quota-mb N] [--max-quota-mb N] [--total-quota-mb N]',
      help: 'Add a domain (pending until verified), with new RSA and Ed25519 DKIM keys.',
      async run(args, io) {
        const opts = {
          'max-mailboxes': { type: 'string' },
          'max-aliases': { type: 'string' },
          'default-quota-mb': { type: 'string' },
          'max-quota-mb': { type: 'string' },
          'total-quota-mb': { type: 'string' },
          description: { type: 'string' },
        } as const
        return withAdmin(args, io, opts, async ({ ctx, p, values, positionals }) => {
          const name = positionals[0]
          if (!name) throw new UsageError('give the domain name: postern domain add example.com')
          const d = await createDomain(
            ctx.domains,
            p,
            {
              name,
              max_mailboxes: intFlag(values['max-mailboxes'], 'max-mailboxes'),
              max_aliases: intFlag(values['max-aliases'], 'max-aliases'),
              default_quota_mb: intFlag(values['default-quota-mb'], 'default-quota-mb'),
              max_quota_mb: intFlag(values['max-quota-mb'], 'max-quota-mb'),
              total_quota_mb: intFlag(values['total-quota-mb'], 'total-quota-mb'),
              description: values.description as string | undefined,
            },
            null,
          )
          output(
            io,
            d,
            `added ${d.name} (${d.id}), status ${d.status}\nnext: publish the records of 'postern domain dns ${d.name}', then 'postern domain verify ${d.name}'`,
            values.json === true,
          )
          return 0
        })
      },
    },
    list: {
      usage: 'list',
      help: 'List the domains of the organisation.',
      async run(args, io) {
        return withAdmin(args, io, {}, async ({ ctx, p, values }) => {
          const list = await listDomains(ctx.domains, p)
          output(
            io,
            list,
            [
              ['NAME', 'STATUS', 'MAILBOXES', 'ALIASES', 'ID'],
              ...list.map((d) => [
                d.name,
                d.status,
                `${d.mailboxes}/${d.max_mailboxes}`,
                `${d.aliases}/${d.max_aliases}`,
                d.id,
              ]),
            ],
            values.json === true,
          )
          return 0
        })
      },
    },
    dns: {
      usage: 'dns <name>',
      help: 'Print the DNS records to publish for a domain, as a zone-file snippet (or JSON).',
      async run(args, io) {
        return withAdmin(args, io, {}, async ({ ctx, p, values, positionals }) => {
          if (!positionals[0]) throw new UsageError('give the domain: postern domain dns example.com')
          const r = await domainRecords(ctx.domains, p, positionals[0])
          output(io, r, r.zone, values.json === true)
          return 0
        })
      },
    },
    verify: {
      usage: 'verify <name> [--trust-operator]',
      help: `Look up the records now and mark the domain verified when ownership and MX are in place.
  --trust-operator   mark it verified without any DNS lookup, on your word as the operator (a
                     laptop or test box without public DNS); audited, refused when another
                     organisation has added the name; never possible over the HTTP API`,
      async run(args, io) {
        const opts = { 'trust-operator': { type: 'boolean' } } as const
        return withAdmin(args, io, opts, async ({ ctx, p, values, positionals }) => {
          if (!positionals[0]) throw new UsageError('give the domain: postern domain verify example.com')
          if (values['trust-operator'] === true) {
            const d = await trustDomainAsOperator(ctx.domains, p, positionals[0])
            output(
              io,
              d,
              `${d.name} is ${d.status} on the operator's word (no DNS lookup); mail for it is accepted now`,
              values.json === true,
            )
            return 0
          }
          const r = await verifyDomain(ctx.domains, p, positionals[0], null)
          const lines = [
            `${r.domain.name} is ${r.domain.status}`,
            ...r.dns.records.map(
              (x) =>
                `  ${x.state.padEnd(9)} ${x.purpose.padEnd(16)} ${x.type.padEnd(5)} ${x.name}${x.state === 'ok' ? '' : `: ${x.detail}`}`,
            ),
          ]
          output(io, r, lines.join('\n'), values.json === true)
          return 0
        })
      },
    },
  },
)
