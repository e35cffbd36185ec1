// `postern key create`: API keys from the command line.

import { KEY_SCOPES } from '../../services/accounts/api-keys.ts'
import type { KeyScope } from '../../services/accounts/principal.ts'
import { findMailbox } from '../../services/mailboxes/mailboxes.ts'
import { group, output, withAdmin } from '../admin.ts'
import { UsageError } from '../command.ts'

export const keyCommand = group('key', 'Manage API keys.', {
  create: {
    usage: 'create --name N --scope admin|send|read|write|mailbox [--mailbox ADDRESS] [--test]',
    help: 'Create an API key (printed once); --test makes a test key (pst_test_...) whose mail is simulated, never sent.',
    async run(args, io) {
      return withAdmin(
        args,
        io,
        {
          name: { type: 'string' },
          scope: { type: 'string' },
          mailbox: { type: 'string' },
          test: { type: 'boolean' },
        },
        async ({ ctx, p, values }) => {
          const scope = values.scope as KeyScope | undefined
          if (!scope || !KEY_SCOPES.includes(scope))
            throw new UsageError(`--scope must be one of ${KEY_SCOPES.join(', ')}`)
          const name = (values.name as string | undefined) ?? `cli ${scope}`
          const mailboxId = values.mailbox
            ? (await findMailbox(ctx.store.db, p, values.mailbox as string)).id
            : null
          const test = values.test === true
          const r = await ctx.accounts.keys.create(p, { name, scope, mailbox_id: mailboxId, test }, null)
          output(
            io,
            { ...r.view, key: r.key },
            `key: ${r.key}   (shown once)\nid:  ${r.view.id}, scope ${scope}${test ? ', test mode' : ''}`,
            values.json === true,
          )
          return 0
        },
      )
    },
  },
})
