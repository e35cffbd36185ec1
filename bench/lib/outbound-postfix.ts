// The Postfix peer of the outbound benchmark: /work/shared/bench-peers/bench-postfix-relay.sh
// run once (BENCH_RUNS=1) with the same message count. It configures Postfix as a relay on
// 127.0.0.1:2525, starts smtp-sink -c on 127.0.0.1:2526, injects N messages of about 5 KB for
// user1@remote.test with smtp-source over 20 sessions (a new connection per message), and times
// the accept (smtp-source done) and the end to end (the sink counted N); then stops Postfix.
// Needs root (it edits Postfix's config). Its key=value output is parsed.

import { runPeerScript } from './peers.ts'

export interface PostfixRelayRun {
  accepted_per_s: number
  delivered_per_s: number
  /** Every key=value the script printed (last one wins): accept_secs, relay_secs, postfix_cpu_s, loaded_rss_kb... */
  fields: Record<string, string>
  output: string
  rc: number | null
}

export async function runPostfixRelay(o: {
  messages: number
  sessions: number
  timeoutMs: number
}): Promise<PostfixRelayRun> {
  const r = await runPeerScript('bench-postfix-relay.sh', o)
  return {
    ...r,
    accepted_per_s: Number(r.fields.median_accept_msgs_per_sec ?? Number.NaN),
    delivered_per_s: Number(r.fields.median_relayed_msgs_per_sec ?? Number.NaN),
  }
}
