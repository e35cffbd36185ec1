// The components of each role, in start order. `--roles` picks which lists a process runs.
// A new listener or worker is one more entry here (and a file beside this one).

import type { Role } from '../config/schema.ts'
import type { Component } from './component.ts'
import type { RoleContext } from './context.ts'
import { httpComponents } from './http.ts'
import { imapComponents } from './imap.ts'
import { smtpComponents } from './smtp.ts'
import { workerComponents } from './workers.ts'

export const ROLE_COMPONENTS: Record<Role, (ctx: RoleContext) => Component[]> = {
  http: httpComponents,
  smtp: smtpComponents,
  imap: imapComponents,
  workers: workerComponents,
}
