// Child process of bench/outbound.ts: runs one configuration (runOne in outbound-run.ts) with
// Postern inside this process, answers { row } or { error } over IPC, and exits. A fresh
// process per configuration: peak RSS and JIT state are not carried from one variant to the next.

import { type RunOptions, runOne } from './outbound-run.ts'

process.on('disconnect', () => process.exit(1))
process.once('message', async (o: RunOptions) => {
  try {
    const row = await runOne(o)
    process.send?.({ row }, () => process.exit(0))
  } catch (err) {
    process.send?.({ error: (err as Error).stack ?? String(err) }, () => process.exit(1))
  }
})
process.send?.({ ready: true })
