// `postern init`: prepares an installation without starting it: data folder, secrets file,
// database migrations, key check, and a fresh one-time setup token while no owner exists.
// (Creating the owner from the command line comes with the accounts capability.)

import { initInstallation } from '../../main.ts'
import { CONFIG_FLAGS_HELP, type Command, loadWithFlags, UsageError } from '../command.ts'

export const initCommand: Command = {
  name: 'init',
  summary: 'Create the data folder, secrets file and database; print a setup token',
  help: `Usage: postern init [--owner-email <email> --org <name> [--owner-password <pw>]] [--json] [config flags]

Creates the data folder, writes the secrets file (0600; back it up, every node needs the same
file), applies migrations and, while no organisation exists, prints a new one-time setup
token. Safe to run again: existing secrets and data are kept.

With --owner-email and --org it also creates the first organisation and its owner (what
POST /v1/setup does with the setup token); the password is generated and printed once
unless --owner-password (or POSTERN_OWNER_PASSWORD) gives it.

Options:
  --owner-email <email>     create the first owner with this email
  --org <name>              name of the first organisation
  --owner-password <pw>     the owner's password (prefer POSTERN_OWNER_PASSWORD: flags show in ps)
  --json                    print the result as JSON

${CONFIG_FLAGS_HELP}`,
  async run(args, io) {
    const { loaded, values } = loadWithFlags(args, io, {
      json: { type: 'boolean' },
      'owner-email': { type: 'string' },
      org: { type: 'string' },
      'owner-password': { type: 'string' },
    })
    const email = values['owner-email']
    const org = values.org
    if ((typeof email === 'string') !== (typeof org === 'string'))
      throw new UsageError('--owner-email and --org go together')
    const password = (values['owner-password'] as string | undefined) ?? io.env.POSTERN_OWNER_PASSWORD
    const owner =
      typeof email === 'string' ? { email, org: org as string, ...(password ? { password } : {}) } : null
    const r = await initInstallation(loaded.config, undefined, owner)
    if (values.json) {
      io.out(JSON.stringify(r))
      return 0
    }
    io.out(`data folder:   ${r.data_dir}`)
    io.out(`secrets file:  ${r.secrets_file}${r.secrets_created ? ' (new: back it up)' : ''}`)
    io.out(
      `database:      ${r.database}${r.migrations_applied.length ? ` (applied ${r.migrations_applied.join(', ')})` : ''}`,
    )
    if (r.owner) {
      io.out(`owner:         ${r.owner.email} (organisation ${r.owner.org_id})`)
      if (r.owner.password)
        io.out(`password:      ${r.owner.password}   (shown once; change it after signing in)`)
    }
    io.out(r.setup_token ? `setup token:   ${r.setup_token}` : 'setup:         done (an organisation exists)')
    return 0
  },
}
