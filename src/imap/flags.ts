// The flags of one message as a session shows them: system flags in RFC order, then keywords
// sorted, then \Recent (session state, never stored). One order everywhere, so FETCH answers
// are stable.

const SYSTEM = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft']

export function imapFlags(stored: readonly string[], recent: boolean): string[] {
  const system = SYSTEM.filter((f) => stored.includes(f))
  const keywords = stored.filter((f) => !SYSTEM.includes(f) && f.toLowerCase() !== '\\recent').sort()
  return recent ? [...system, ...keywords, '\\Recent'] : [...system, ...keywords]
}
