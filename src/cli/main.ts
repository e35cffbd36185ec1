// The `postern` command line: dispatches to one verb, gives --help for the program and every
// verb, --version, and turns failures into one clear line and a non-zero exit code.

import { VERSION } from '../config/version.ts'
import { type Command, describeFailure, type Io } from './command.ts'
import { aliasCommand } from './commands/alias.ts'
import { configCommand } from './commands/config.ts'
import { domainCommand } from './commands/domain.ts'
import { initCommand } from './commands/init.ts'
import { keyCommand } from './commands/key.ts'
import { mailboxCommand } from './commands/mailbox.ts'
import { migrateCommand } from './commands/migrate.ts'
import { queueCommand } from './commands/queue.ts'
import { type ServeExtras, serveCommand } from './commands/serve.ts'

export function commands(extras: ServeExtras = {}): Command[] {
  return [
    serveCommand(extras),
    initCommand,
    migrateCommand,
    configCommand,
    domainCommand,
    mailboxCommand,
    aliasCommand,
    queueCommand,
    keyCommand,
  ]
}

function programHelp(list: Command[]): string {
  return `Postern ${VERSION}: a self-hosted mail server with an HTTP API.

Usage: postern <command> [options]

Commands:
${list.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}

Options:
  --help       show help (also after a command: postern serve --help)
  --version    print the version

In a checkout, run it as: npx postern <command>`
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(`${s}\n`),
  err: (s) => process.stderr.write(`${s}\n`),
  env: process.env,
  cwd: process.cwd(),
}

export async function main(argv: string[], io: Io = defaultIo, extras: ServeExtras = {}): Promise<number> {
  const list = commands(extras)
  const [verb, ...rest] = argv
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    io.out(programHelp(list))
    return verb === undefined ? 2 : 0
  }
  if (verb === '--version' || verb === '-v') {
    io.out(VERSION)
    return 0
  }
  const command = list.find((c) => c.name === verb)
  if (!command) {
    io.err(`unknown command '${verb}'\n\n${programHelp(list)}`)
    return 2
  }
  const helpAsked = command.handlesHelp
    ? rest.length === 0 || rest[0] === '--help' || rest[0] === '-h'
    : rest.includes('--help') || rest.includes('-h')
  if (helpAsked) {
    io.out(command.help)
    return 0
  }
  try {
    return await command.run(rest, io)
  } catch (err) {
    io.err(describeFailure(err))
    return 1
  }
}
