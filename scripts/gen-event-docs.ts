// Writes docs/events.md from src/services/events/types.ts (`npm run docs:events`). A test fails
// when the committed file differs from what this renders, so the list never goes stale.

import { writeFileSync } from 'node:fs'
import { CHANGE_TOPICS } from '../src/services/events/changes.ts'
import { EVENT_TYPES } from '../src/services/events/types.ts'

export function renderEventDocs(): string {
  const lines = [
    '# Event types',
    '',
    '<!-- Generated from src/services/events/types.ts by `npm run docs:events`; do not edit by hand. -->',
    '',
    'Every change Postern makes is an event: a row with its type, organisation, actor, source address,',
    'subject id, payload and time, written in the same transaction as the change. The events API,',
    'webhooks, the live feed, traces and analytics use these names and no others.',
    '',
    '| type | subject_id is | meaning |',
    '|---|---|---|',
  ]
  for (const [type, d] of Object.entries(EVENT_TYPES)) lines.push(`| \`${type}\` | ${d.subject} | ${d.doc} |`)
  lines.push('')
  lines.push('Internal change notes (not events; processes use them to refresh sessions and caches):')
  lines.push(`${CHANGE_TOPICS.map((t) => `\`${t}\``).join(', ')}.`)
  lines.push('')
  return lines.join('\n')
}

if (import.meta.main) {
  writeFileSync(new URL('../docs/events.md', import.meta.url), renderEventDocs())
  process.stdout.write('wrote docs/events.md\n')
}
