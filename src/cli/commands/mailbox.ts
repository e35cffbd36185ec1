// `postern mailbox add|list|passwd`: mailboxes from the command line.

import { createMailbox, listMailboxes, updateMailbox } from '../../services/mailboxes/mailboxes.ts'
import { group, output, withAdmin } from '../admin.ts'
import { UsageError } from '../command.ts'

const readPassword = (values: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>) =>
  (values.password as string | undefined) ?? env.POSTERN_MAILBOX_PASSWORD

export const mailboxCommand = group(
  'mailbox',
  'Manage mailboxes: create them, list them, set their passwords.',
  {
    add: {
      usage: 'add <address> [--name N] [--quota-mb N] [--password P]',
      help: 'Create a mailbox; prints its IMAP/SMTP password (generated unless given) and a mailbox-scoped API key, once.',
      options: [
        '  --name N             display name',
        '  --quota-mb N         quota (default: the domain default)',
        '  --password P         the password (prefer POSTERN_MAILBOX_PASSWORD: flags show in ps)',
      ],
      async run(args, io) {
        const opts = {
          name: { type: 'string' },
          'quota-mb': { type: 'string' },
          password: { type: 'string' },
        } as const
        return withAdmin(args, io, opts, async ({ ctx, p, values, positionals }) => {
          const address = positionals[0]
          const at = address?.lastIndexOf('@') ?? -1
          if (!address || at < 1)
            throw new UsageError('give the address: postern mailbox add user@example.com')
          const quota = values['quota-mb'] === undefined ? undefined : Number(values['quota-mb'])
          if (quota !== undefined && (!Number.isInteger(quota) || quota < 0))
            throw new UsageError('--quota-mb needs a whole number')
          const password = readPassword(values, io.env)
          const r = await createMailbox(
            ctx.domains,
            p,
            {
              domain: address.slice(at + 1),
              local_part: address.slice(0, at),
              name: values.name as string | undefined,
              quota_mb: quota,
              ...(password ? { password } : {}),
            },
            null,
          )
          const text = [
            `created ${r.mailbox.address} (${r.mailbox.id})`,
            r.password ? `password: ${r.password}   (shown once)` : 'password: as given',
            `api key:  ${r.api_key.key}   (shown once; reads this mailbox only)`,
          ].join('\n')
          output(io, r, text, values.json === true)
          return 0
        })
      },
    },
    list: {
      usage: 'list [--domain D]',
      help: 'List mailboxes, optionally of one domain.',
      async run(args, io) {
        return withAdmin(args, io, { domain: { type: 'string' } }, async ({ ctx, p, values }) => {
          const list = await listMailboxes(ctx.domains, p, { domain: values.domain as string | undefined })
          output(
            io,
            list,
            [
              ['ADDRESS', 'ACTIVE', 'QUOTA MB', 'USED BYTES', 'ID'],
              ...list.map((m) => [
                m.address,
                m.active ? 'yes' : 'no',
                String(m.quota_mb),
                String(m.used_bytes),
                m.id,
              ]),
            ],
            values.json === true,
          )
          return 0
        })
      },
    },
    passwd: {
      usage: 'passwd <address> [--password P]',
      help: "Set a mailbox's IMAP/SMTP password (from --password or POSTERN_MAILBOX_PASSWORD).",
      async run(args, io) {
        return withAdmin(
          args,
          io,
          { password: { type: 'string' } },
          async ({ ctx, p, values, positionals }) => {
            if (!positionals[0])
              throw new UsageError('give the address: postern mailbox passwd user@example.com')
            const password = readPassword(values, io.env)
            if (!password)
              throw new UsageError('give the new password in POSTERN_MAILBOX_PASSWORD (or --password)')
            const m = await updateMailbox(ctx.domains, p, positionals[0], { password }, null)
            output(io, m, `password of ${m.address} changed`, values.json === true)
            return 0
          },
        )
      },
    },
  },
)
