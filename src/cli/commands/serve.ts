// `postern serve`: runs every role of this process until SIGTERM or SIGINT, then shuts down
// gracefully (stop accepting, finish in-flight work within shutdown.grace_ms, close the store).
// A second signal exits at once.

import type { FastifyPluginAsync } from 'fastify'
import { startPostern } from '../../main.ts'
import { CONFIG_FLAGS_HELP, type Command, loadWithFlags } from '../command.ts'

export interface ServeExtras {
  /** Extra HTTP routes (test fixtures run the real serve path with a slow route). */
  httpPlugins?: FastifyPluginAsync[]
}

export function serveCommand(extras: ServeExtras = {}): Command {
  return {
    name: 'serve',
    summary: 'Run the server (HTTP API, workers; SMTP and IMAP as they arrive)',
    help: `Usage: postern serve [config flags]

Runs Postern until stopped with SIGTERM or Ctrl-C. On first start it creates the data folder
(SQLite database, blobs, TLS material), writes the secrets file, applies migrations, prints
where every listener is, and prints a one-time setup link for the first owner.

Examples:
  npx postern serve
  npx postern serve --http-port 8080 --data-dir /var/lib/postern
  POSTERN_DATABASE_URL=postgres://postern@db/postern npx postern serve

${CONFIG_FLAGS_HELP}`,
    async run(args, io) {
      const { loaded } = loadWithFlags(args, io, {})
      const postern = await startPostern({
        config: loaded.config,
        httpPlugins: extras.httpPlugins,
        print: io.err,
      })
      return new Promise<number>((resolve) => {
        let stopping = false
        const stop = (signal: string) => {
          if (stopping) {
            io.err(`${signal} again: exiting now`)
            process.exit(1)
          }
          stopping = true
          postern.log.info({ signal }, 'shutting down')
          postern.close().then(
            () => {
              postern.log.info('stopped')
              resolve(0)
            },
            (err) => {
              postern.log.error({ err }, 'shutdown failed')
              resolve(1)
            },
          )
        }
        process.on('SIGTERM', () => stop('SIGTERM'))
        process.on('SIGINT', () => stop('SIGINT'))
      })
    },
  }
}
