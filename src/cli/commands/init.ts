// `postern init`: prepares an installation without starting it: data folder, secrets file,
// database migrations, key check, and a fresh one-time setup token while no owner exists.
// (Creating the owner from the command line comes with the accounts capability.)

import { initInstallation } from '../../main.ts'
import { CONFIG_FLAGS_HELP, type Command, loadWithFlags } from '../command.ts'

export const initCommand: Command = {
  name: 'init',
  summary: 'Create the data folder, secrets file and database; print a setup token',
  help: `Usage: postern init [--json] [config flags]

Creates the data folder, writes the secrets file (0600; back it up, every node needs the same
file), applies migrations and, while no organisation exists, prints a new one-time setup
token. Safe to run again: existing secrets and data are kept.

Options:
  --json    print the result as JSON

${CONFIG_FLAGS_HELP}`,
  async run(args, io) {
    const { loaded, values } = loadWithFlags(args, io, { json: { type: 'boolean' } })
    const r = await initInstallation(loaded.config)
    if (values.json) {
      io.out(JSON.stringify(r))
      return 0
    }
    io.out(`data folder:   ${r.data_dir}`)
    io.out(`secrets file:  ${r.secrets_file}${r.secrets_created ? ' (new: back it up)' : ''}`)
    io.out(
      `database:      ${r.database}${r.migrations_applied.length ? ` (applied ${r.migrations_applied.join(', ')})` : ''}`,
    )
    io.out(r.setup_token ? `setup token:   ${r.setup_token}` : 'setup:         done (an organisation exists)')
    return 0
  },
}
