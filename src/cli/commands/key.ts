// `postern key create`: API keys from the command line.

import { KEY_SCOPES } from '../../services/accounts/api-keys.ts'
import type { KeyScope } from '../../services/accounts/principal.ts'
import { findMailbox } from '../../services/mailboxes/mailboxes.ts'
import { group, output, withAdmin } from '../admin.ts'
import { UsageError } from '../command.ts'

export const keyCommand = group('key', 'Manage API keys.', {
  create: {
    usage: 'create --name N --scope admin|send|read|write|mailbox [--mailbox ADDRESS]',
    help: 'Create an API key (printed once).',
    async run(args, io) {
      return withAdmin(
        args,
        io,
        { name: { type: 'string' }, scope: { type: 'string' }, mailbox: { type: 'string' } },
        async ({ ctx, p, values }) => {
          const scope = values.scope as KeyScope | undefined
          if (!scope || !KEY_SCOPES.includes(scope))
            throw new UsageError(`--scope must be one of ${KEY_SCOPES.join(', ')}`)
          const name = (values.name as string | undefined) ?? `cli ${scope}`
          const mailboxId = values.mailbox
            ? (await findMailbox(ctx.store.db, p, values.mailbox as string)).id
            : null
          const r = await ctx.accounts.keys.create(p, { name, scope, mailbox_id: mailboxId }, null)
          output(
            io,
            { ...r.view, key: r.key },
            `key: ${r.key}   (shown once)\nid:  ${r.view.id}, scope ${scope}`,
            values.json === true,
          )
          return 0
        },
      )
    },
  },
})
