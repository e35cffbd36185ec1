// What the admin verbs (domain, mailbox, alias, key) share: opening the services over the
// installation's store, choosing the organisation (--org, else the one created at setup), and
// the principal they act as: an org admin named `cli` in the audit log. Changes go through
// the same services as the API, so they publish change events the running server receives.

import type { AdminContext } from '../main.ts'
import { openAdmin } from '../main.ts'
import type { Principal } from '../services/accounts/principal.ts'
import { CONFIG_FLAGS_HELP, type Command, type Io, loadWithFlags, UsageError } from './command.ts'

export const ORG_FLAG_HELP =
  '  --org <id or name>   the organisation to act on (default: the one created at setup)'

export async function withAdmin<T>(
  args: string[],
  io: Io,
  options: Record<string, { type: 'string' | 'boolean' }>,
  fn: (a: {
    ctx: AdminContext
    p: Principal
    values: Record<string, string | boolean | undefined>
    positionals: string[]
  }) => Promise<T>,
): Promise<T> {
  const { loaded, values, positionals } = loadWithFlags(args, io, {
    ...options,
    org: { type: 'string' },
    json: { type: 'boolean' },
  })
  const ctx = await openAdmin(loaded.config)
  try {
    const orgFlag = values.org as string | undefined
    const org = orgFlag
      ? await ctx.store.db
          .selectFrom('orgs')
          .select('id')
          .where((eb) => eb.or([eb('id', '=', orgFlag), eb('name', '=', orgFlag)]))
          .executeTakeFirst()
      : await ctx.setup.operatorOrgId().then((id) => (id ? { id } : undefined))
    if (!org)
      throw new UsageError(
        orgFlag
          ? `no organisation ${orgFlag}`
          : 'no organisation yet: create one with postern init --owner-email you@example.com --org "Name"',
      )
    const p: Principal = {
      kind: 'key',
      org_id: org.id,
      user_id: null,
      role: null,
      session_id: null,
      key_id: 'cli',
      key_scope: 'admin',
      mailbox_id: null,
    }
    return await fn({ ctx, p, values, positionals })
  } finally {
    await ctx.close()
  }
}

/** A verb with sub-verbs (`postern domain add ...`): dispatches and gives help for each. */
export interface SubCommand {
  usage: string
  help: string
  /** Help lines for options beyond --json and --org. */
  options?: string[]
  run(args: string[], io: Io): Promise<number>
}

export function group(name: string, summary: string, subs: Record<string, SubCommand>): Command {
  const overview = `Usage: postern ${name} <${Object.keys(subs).join('|')}> [options]

${summary}

${Object.entries(subs)
  .map(([, v]) => `  postern ${name} ${v.usage}\n      ${v.help.split('\n')[0]}`)
  .join('\n')}

Every sub-command takes --json, --org and --help.
${ORG_FLAG_HELP}

${CONFIG_FLAGS_HELP}`
  return {
    name,
    summary,
    help: overview,
    handlesHelp: true,
    async run(args, io) {
      const [sub, ...rest] = args
      const entry = sub ? subs[sub] : undefined
      if (!entry) {
        io.err(sub ? `unknown sub-command '${sub}'\n\n${overview}` : overview)
        return 2
      }
      if (rest.includes('--help') || rest.includes('-h')) {
        io.out(subHelp(name, entry.usage, entry.help, entry.options))
        return 0
      }
      return entry.run(rest, io)
    },
  }
}

export function subHelp(name: string, usage: string, help: string, options: string[] = []): string {
  return `Usage: postern ${name} ${usage}

${help}

Options:
${[...options, '  --json               print JSON', ORG_FLAG_HELP].join('\n')}

${CONFIG_FLAGS_HELP}`
}

/** Prints rows as a fixed-width table, or JSON. */
export function output(io: Io, json: unknown, rows: string[][] | string, asJson: boolean): void {
  if (asJson) {
    io.out(JSON.stringify(json, null, 2))
    return
  }
  if (typeof rows === 'string') {
    io.out(rows)
    return
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  for (const r of rows)
    io.out(
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
}
