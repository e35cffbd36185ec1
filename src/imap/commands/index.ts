// The command registry: verb -> module. A new command is one file in this folder and one line here.

import type { ImapCommand } from '../command.ts'
import { append } from './append.ts'
import { capability } from './capability.ts'
import { close, unselect } from './close.ts'
import { copy, move } from './copy.ts'
import { enable } from './enable.ts'
import { expunge } from './expunge.ts'
import { fetch } from './fetch.ts'
import { create, del, rename, subscribe, unsubscribe } from './folders.ts'
import { id } from './id.ts'
import { idle } from './idle.ts'
import { list, lsub } from './list.ts'
import { authenticate, login } from './login.ts'
import { logout } from './logout.ts'
import { namespace } from './namespace.ts'
import { check, noop } from './noop.ts'
import { getquota, getquotaroot, setquota } from './quota.ts'
import { search } from './search.ts'
import { examine, select } from './select.ts'
import { sort } from './sort.ts'
import { starttls } from './starttls.ts'
import { status } from './status.ts'
import { store } from './store.ts'
import { thread } from './thread.ts'

export const COMMANDS: ReadonlyMap<string, ImapCommand> = new Map<string, ImapCommand>([
  ['CAPABILITY', capability],
  ['NOOP', noop],
  ['LOGOUT', logout],
  ['STARTTLS', starttls],
  ['LOGIN', login],
  ['AUTHENTICATE', authenticate],
  ['ENABLE', enable],
  ['ID', id],
  ['NAMESPACE', namespace],
  ['LIST', list],
  ['LSUB', lsub],
  ['STATUS', status],
  ['SELECT', select],
  ['EXAMINE', examine],
  ['CREATE', create],
  ['DELETE', del],
  ['RENAME', rename],
  ['SUBSCRIBE', subscribe],
  ['UNSUBSCRIBE', unsubscribe],
  ['APPEND', append],
  ['CHECK', check],
  ['CLOSE', close],
  ['UNSELECT', unselect],
  ['EXPUNGE', expunge],
  ['SEARCH', search],
  ['SORT', sort],
  ['THREAD', thread],
  ['FETCH', fetch],
  ['STORE', store],
  ['COPY', copy],
  ['MOVE', move],
  ['IDLE', idle],
  ['GETQUOTAROOT', getquotaroot],
  ['GETQUOTA', getquota],
  ['SETQUOTA', setquota],
])
