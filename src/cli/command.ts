// The shape of a CLI verb and the helpers every verb shares: parsing its own flags after the
// config flags were taken out, printing help, and turning failures into one clear line.

import { parseArgs } from 'node:util'
import { ConfigError, type LoadedConfig, loadConfig, splitConfigFlags } from '../config/load.ts'

export interface Command {
  name: string
  summary: string
  /** Full help text shown by `postern <verb> --help`. */
  help: string
  run(args: string[], io: Io): Promise<number>
  /** Verbs with sub-commands answer --help themselves (per sub-command). */
  handlesHelp?: boolean
}

export interface Io {
  out: (s: string) => void
  err: (s: string) => void
  env: Readonly<Record<string, string | undefined>>
  cwd: string
}

export const CONFIG_FLAGS_HELP = `Config flags (any command):
  --config <file>        read this JSON config file (default: ./postern.config.json if present)
  --<key> <value>        set any config key, e.g. --data-dir ./data --http-port 8080 --log-level debug
                         (every key, its environment variable and default: docs/config.md or 'postern config --keys')`

export class UsageError extends Error {
  override name = 'UsageError'
}

/** Loads the config from the command's arguments and returns the remaining arguments parsed. */
export function loadWithFlags<T extends Record<string, { type: 'string' | 'boolean'; short?: string }>>(
  args: string[],
  io: Io,
  options: T,
): { loaded: LoadedConfig; values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const loaded = loadConfig({ args, env: io.env, cwd: io.cwd })
  const { values, positionals } = parseLocal(splitConfigFlags(args).rest, options)
  return { loaded, values, positionals }
}

export function parseLocal<T extends Record<string, { type: 'string' | 'boolean'; short?: string }>>(
  args: string[],
  options: T,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, allowPositionals: true, strict: true })
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals }
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

export function describeFailure(err: unknown): string {
  if (err instanceof ConfigError) return `${err.message}\nSee docs/config.md for every key.`
  if (err instanceof UsageError) return `${err.message}\nRun with --help for usage.`
  return `error: ${(err as Error).message ?? String(err)}`
}
