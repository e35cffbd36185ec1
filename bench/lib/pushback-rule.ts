// The push-back rule of the outbound benchmark's receiving side (pushback-sink.ts), shared with
// the runs that must know in advance what the sink will do: by the number in a recipient's
// local part, n % 50 == 7 is refused with a 550 always (2%), n % 20 == 3 gets a 451 on its first
// RCPT and a 250 after (5%). The classes are disjoint (one needs n odd at n % 10 == 7, the
// other n % 10 == 3).

export const REJECT = (n: number) => n % 50 === 7
export const DEFER_ONCE = (n: number) => n % 20 === 3

/** The number in a recipient's local part (u123@remote.test -> 123), or null. */
export function recipientNumber(address: string): number | null {
  const m = /^<?[a-z]*(\d+)@/i.exec(address)
  return m ? Number(m[1]) : null
}

/** How many of the recipients numbered 0..n-1 match `rule`. */
export function countAmong(n: number, rule: (i: number) => boolean): number {
  let k = 0
  for (let i = 0; i < n; i++) if (rule(i)) k++
  return k
}
