// `postern migrate`: applies pending database migrations and reports what it did. The server
// also migrates at start; this verb exists for deploys that migrate before rolling nodes.

import { migrateDatabase } from '../../main.ts'
import { CONFIG_FLAGS_HELP, type Command, loadWithFlags } from '../command.ts'

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'Apply pending database migrations',
  help: `Usage: postern migrate [--json] [config flags]

Applies every migration this version knows and the database lacks, in one transaction.
Running it again when up to date changes nothing.

Options:
  --json    print the result as JSON

${CONFIG_FLAGS_HELP}`,
  async run(args, io) {
    const { loaded, values } = loadWithFlags(args, io, { json: { type: 'boolean' } })
    const report = await migrateDatabase(loaded.config)
    if (values.json) io.out(JSON.stringify(report))
    else if (report.applied.length === 0)
      io.out(`database is up to date (${report.location}, at ${report.current})`)
    else io.out(`applied ${report.applied.join(', ')} to ${report.location}; now at ${report.current}`)
    return 0
  },
}
