// Large messages: their text goes to a spool file while it arrives (protocol/data-reader.ts),
// and at most `concurrency` of them are delivered at once. A large message waiting for its turn
// sits on disk, not in memory, so the memory used by ten 20 MB messages arriving together is
// that of `concurrency` deliveries, not ten. Small messages (under the spool threshold) never
// wait here.
// Invariant: a turn is always given back (the delivery's outcome, even an exception, ends it),
// and turns are given in arrival order.

import type { MessageSpool } from './protocol/data-reader.ts'

export interface LargeMessageOptions {
  spool: MessageSpool
  /** Large messages delivered at once. */
  concurrency: number
}

export interface LargeMessages {
  spool: MessageSpool
  /** Runs `deliver` when a turn is free. */
  inTurn<T>(deliver: () => Promise<T>): Promise<T>
}

export function createLargeMessages(opts: LargeMessageOptions): LargeMessages {
  let running = 0
  const waiting: (() => void)[] = []
  return {
    spool: opts.spool,
    async inTurn(deliver) {
      if (running >= opts.concurrency) await new Promise<void>((resolve) => waiting.push(resolve))
      else running++
      try {
        return await deliver()
      } finally {
        const next = waiting.shift()
        if (next)
          next() // the turn passes on; running stays the same
        else running--
      }
    },
  }
}
