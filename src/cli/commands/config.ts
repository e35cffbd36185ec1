// `postern config`: prints the effective configuration (every source applied, secrets
// redacted), where each value came from, or the list of keys with their docs.

import { configValue, redactConfig } from '../../config/load.ts'
import { flatKeys } from '../../config/schema.ts'
import { CONFIG_FLAGS_HELP, type Command, loadWithFlags } from '../command.ts'

export const configCommand: Command = {
  name: 'config',
  summary: 'Print the effective configuration (secrets redacted)',
  help: `Usage: postern config [--sources | --keys | --get <key>] [config flags]

Prints the configuration Postern would run with: defaults <- config file <- POSTERN_*
environment <- flags, validated, with secrets redacted.

Options:
  --sources      print each key with its value and where it came from
  --keys         list every key with its environment variable, flag and doc
  --get <key>    print one value (e.g. --get http.port)

${CONFIG_FLAGS_HELP}`,
  async run(args, io) {
    const { loaded, values } = loadWithFlags(args, io, {
      sources: { type: 'boolean' },
      keys: { type: 'boolean' },
      get: { type: 'string' },
    })
    const redacted = redactConfig(loaded.config) as never
    if (values.keys) {
      for (const k of flatKeys()) io.out(`${k.path}  (${k.env}, ${k.flag})\n    ${k.def.doc}`)
      return 0
    }
    if (typeof values.get === 'string') {
      if (!flatKeys().some((k) => k.path === values.get)) {
        io.err(`unknown key ${values.get}; 'postern config --keys' lists them`)
        return 2
      }
      const v = configValue(redacted, values.get)
      io.out(typeof v === 'string' ? v : JSON.stringify(v))
      return 0
    }
    if (values.sources) {
      for (const k of flatKeys())
        io.out(
          `${k.path} = ${JSON.stringify(configValue(redacted, k.path))}  [${loaded.sources.get(k.path)}]`,
        )
      if (loaded.file) io.out(`(config file: ${loaded.file})`)
      return 0
    }
    io.out(JSON.stringify(redacted, null, 2))
    return 0
  },
}
