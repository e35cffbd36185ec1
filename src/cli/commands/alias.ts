// `postern alias add|list`: aliases from the command line.

import { createAlias, listAliases } from '../../services/mailboxes/aliases.ts'
import { group, output, withAdmin } from '../admin.ts'
import { UsageError } from '../command.ts'

export const aliasCommand = group(
  'alias',
  'Manage aliases: an address (or @domain for a catch-all) delivering to targets.',
  {
    add: {
      usage: 'add <address> <target> [<target> ...]',
      help: 'Create an alias delivering to one or more targets (local mailboxes or external addresses).',
      async run(args, io) {
        return withAdmin(args, io, {}, async ({ ctx, p, values, positionals }) => {
          const [address, ...targets] = positionals
          if (!address || targets.length === 0)
            throw new UsageError(
              'give the alias and its targets: postern alias add sales@example.com ann@example.com',
            )
          const a = await createAlias(ctx.domains, p, { address, targets }, null)
          output(io, a, `created ${a.address} -> ${a.targets.join(', ')} (${a.id})`, values.json === true)
          return 0
        })
      },
    },
    list: {
      usage: 'list [--domain D]',
      help: 'List aliases, optionally of one domain.',
      async run(args, io) {
        return withAdmin(args, io, { domain: { type: 'string' } }, async ({ ctx, p, values }) => {
          const list = await listAliases(ctx.domains, p, { domain: values.domain as string | undefined })
          output(
            io,
            list,
            [
              ['ADDRESS', 'TARGETS', 'ACTIVE', 'ID'],
              ...list.map((a) => [a.address, a.targets.join(','), a.active ? 'yes' : 'no', a.id]),
            ],
            values.json === true,
          )
          return 0
        })
      },
    },
  },
)
