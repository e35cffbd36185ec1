// `postern queue status|list|show|retry|cancel|pause|resume`: the outbound queue of one
// organisation from the command line, through the same services as /v1/queue. A running
// server's workers see the changes at their next poll.

import type { AdminContext } from '../../main.ts'
import { createGroupCommitter } from '../../services/delivery/group-commit.ts'
import {
  cancelEmail,
  listQueue,
  queueStatus,
  rescheduleEmail,
  setQueuePaused,
} from '../../services/outbound/queue-admin.ts'
import { getEmail } from '../../services/outbound/views.ts'
import { group, output, withAdmin } from '../admin.ts'
import { UsageError } from '../command.ts'

const queueCtx = (ctx: AdminContext) => ({
  store: ctx.store,
  clock: ctx.domains.clock,
  bus: ctx.domains.bus,
  committer: createGroupCommitter(ctx.store.db),
})

const needId = (id: string | undefined, verb: string) => {
  if (!id) throw new UsageError(`give the email id: postern queue ${verb} eml_...`)
  return id
}

export const queueCommand = group('queue', 'Inspect and manage the outbound mail queue.', {
  status: {
    usage: 'status',
    help: 'Whether delivery is paused, and how many messages and recipients wait in each state.',
    async run(args, io) {
      return withAdmin(args, io, {}, async ({ ctx, p, values }) => {
        const s = await queueStatus(queueCtx(ctx), p)
        const lines = [
          `delivery: ${s.paused ? `paused since ${s.paused_at}` : 'running'}`,
          `messages: ${
            Object.entries(s.messages)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ') || 'none waiting'
          }`,
          `recipients: ${
            Object.entries(s.recipients)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ') || 'none waiting'
          }`,
          `oldest waiting: ${s.oldest_pending_at ?? '-'}; next attempt: ${s.next_attempt_at ?? '-'}`,
        ]
        output(io, s, lines.join('\n'), values.json === true)
        return 0
      })
    },
  },
  list: {
    usage: 'list [--status queued|scheduled|held|sending] [--limit N]',
    help: 'Messages waiting in the queue, newest first.',
    async run(args, io) {
      return withAdmin(
        args,
        io,
        { status: { type: 'string' }, limit: { type: 'string' } },
        async ({ ctx, p, values }) => {
          const status = values.status as string | undefined
          if (status && !['queued', 'scheduled', 'held', 'sending'].includes(status))
            throw new UsageError('--status: one of queued, scheduled, held, sending')
          const r = await listQueue(queueCtx(ctx), p, {
            ...(status ? { status: status as 'queued' } : {}),
            limit: values.limit ? Number(values.limit) : 50,
          })
          output(
            io,
            r.data,
            [
              ['ID', 'STATUS', 'FROM', 'TO', 'ATTEMPTS', 'NEXT ATTEMPT'],
              ...r.data.map((e) => [
                e.id,
                e.status,
                e.from,
                [...e.to, ...e.cc, ...e.bcc].join(','),
                String(e.attempts),
                e.next_attempt_at ?? '-',
              ]),
            ],
            values.json === true,
          )
          return 0
        },
      )
    },
  },
  show: {
    usage: 'show <id>',
    help: 'One message with each recipient’s state and its events.',
    async run(args, io) {
      return withAdmin(args, io, {}, async ({ ctx, p, values, positionals }) => {
        const e = await getEmail(queueCtx(ctx), p, needId(positionals[0], 'show'))
        const lines = [
          `${e.id} ${e.status} from ${e.from}: ${e.subject}`,
          ...e.recipients.map(
            (r) =>
              `  ${r.address} ${r.state} attempts=${r.attempts}${r.last_response ? ` last: ${r.last_code} ${r.last_response}` : ''}`,
          ),
        ]
        output(io, e, lines.join('\n'), values.json === true)
        return 0
      })
    },
  },
  retry: {
    usage: 'retry <id>',
    help: 'Try a queued, deferred or held message again now.',
    async run(args, io) {
      return withAdmin(args, io, {}, async ({ ctx, p, values, positionals }) => {
        const e = await rescheduleEmail(queueCtx(ctx), p, needId(positionals[0], 'retry'), null)
        output(io, e, `${e.id} will be tried again now`, values.json === true)
        return 0
      })
    },
  },
  cancel: {
    usage: 'cancel <id>',
    help: 'Cancel a message that has not been sent (its pending recipients become cancelled).',
    async run(args, io) {
      return withAdmin(args, io, {}, async ({ ctx, p, values, positionals }) => {
        const e = await cancelEmail(queueCtx(ctx), p, needId(positionals[0], 'cancel'))
        output(io, e, `${e.id} cancelled`, values.json === true)
        return 0
      })
    },
  },
  pause: {
    usage: 'pause',
    help: 'Pause delivery of the organisation’s mail; it stays queued.',
    async run(args, io) {
      return withAdmin(args, io, {}, async ({ ctx, p, values }) => {
        const s = await setQueuePaused(queueCtx(ctx), p, true)
        output(io, s, 'delivery paused', values.json === true)
        return 0
      })
    },
  },
  resume: {
    usage: 'resume',
    help: 'Resume delivery.',
    async run(args, io) {
      return withAdmin(args, io, {}, async ({ ctx, p, values }) => {
        const s = await setQueuePaused(queueCtx(ctx), p, false)
        output(io, s, 'delivery resumed', values.json === true)
        return 0
      })
    },
  },
})
