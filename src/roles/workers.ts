// The workers role: the job runner (purges, DNS re-checks, key retirement, ...), the outbound
// queue worker and the webhook sender. Later workers join this list.

import { drainSystemMail } from '../services/outbound/system-mail.ts'
import { createQueueWorker, type QueueWorker } from '../services/outbound/worker.ts'
import { createWebhookSender, type WebhookSender } from '../services/webhooks/sender.ts'
import type { Component } from './component.ts'
import type { RoleContext } from './context.ts'

export function workerComponents(ctx: RoleContext): Component[] {
  return [jobsComponent(ctx), queueComponent(ctx), webhookComponent(ctx)]
}

function jobsComponent(ctx: RoleContext): Component {
  return {
    name: 'jobs',
    async start() {
      await ctx.jobs.start()
      return []
    },
    stop: (deadlineMs) =>
      within(ctx.jobs.stop(), deadlineMs, () => ctx.log.warn('jobs still running at the deadline')),
  }
}

function queueComponent(ctx: RoleContext): Component {
  const { outbound, bus, setup } = ctx
  let worker: QueueWorker | null = null
  let unsubscribe = () => {}
  return {
    name: 'outbound-queue',
    async start() {
      const w = createQueueWorker(outbound, {
        periodic: () => drainSystemMail(outbound, () => setup.operatorOrgId()),
      })
      worker = w
      outbound.wake = () => w.wake()
      // Sends accepted by another process wake this one's worker too.
      unsubscribe = bus.subscribe('queue.changed', () => w.wake())
      w.start()
      return []
    },
    async stop(deadlineMs) {
      unsubscribe()
      const w = worker
      if (!w) return
      // Deliveries still running at the deadline keep their lease; it expires and another
      // process (or the next start) claims the message again.
      await within(w.stop(), deadlineMs, () =>
        ctx.log.warn('outbound deliveries still running at the deadline'),
      )
    },
  }
}

function webhookComponent(ctx: RoleContext): Component {
  let sender: WebhookSender | null = null
  return {
    name: 'webhook-sender',
    async start() {
      sender = createWebhookSender(ctx.http.webhooks)
      sender.start()
      return []
    },
    async stop(deadlineMs) {
      const s = sender
      if (!s) return
      // Attempts still running at the deadline keep their lease; it expires and the delivery
      // is attempted again by another process (or the next start).
      await within(s.stop(), deadlineMs, () => ctx.log.warn('webhook attempts still running at the deadline'))
    },
  }
}

/** Waits for `p` at most `ms`; calls onLate when the deadline passes first. */
async function within(p: Promise<void>, ms: number, onLate: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      onLate()
      resolve()
    }, ms)
  })
  try {
    await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}
