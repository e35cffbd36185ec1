// Benchmark `submission`: the outbound benchmark's load (N messages of about 5 KB to
// user1@remote.test, delivered end to end to Postfix's smtp-sink through MX lookup in a
// loopback DNS server) sent by mail clients through SMTP submission: --concurrency (20)
// nodemailer clients in a pooled transport, each connection saying STARTTLS and AUTH PLAIN once
// and then carrying up to 100 messages one after another, as mail clients do. Each message is
// checked (sender and From owned by the mailbox), completed (Message-ID, Date), DKIM-signed,
// queued durably, copied to Sent, and delivered by the queue worker.
// In the same run and on the same machine it also runs the API figure (variant `single`: the
// same load POSTed to /v1/emails) and, unless --no-postfix, Postfix relaying the same load to
// the same kind of sink (bench-postfix-relay.sh), and prints the ratios. Target: submission
// end to end at least 1.0x Postfix's relay rate.
// Options: those of bench/outbound.ts (--messages, --dialect, --concurrency, --warmup, ...);
// --variant defaults to submission,single; --no-postfix skips the Postfix run.

import { run as runOutbound } from './outbound.ts'

export async function run(args: string[]): Promise<void> {
  const noPostfix = args.includes('--no-postfix')
  const rest = args.filter((a) => a !== '--no-postfix')
  const extra: string[] = []
  if (!rest.some((a) => a === '--variant' || a.startsWith('--variant=')))
    extra.push('--variant', 'submission,single')
  if (!noPostfix && !rest.includes('--with-postfix')) extra.push('--with-postfix')
  await runOutbound([...extra, ...rest])
}
