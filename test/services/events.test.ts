// The event vocabulary: the committed reference matches the list, and the events a server
// writes over a busy life (setup, domains, mailboxes, sends, deliveries) all come from it.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { renderEventDocs } from '../../scripts/gen-event-docs.ts'
import { CHANGE_TOPICS } from '../../src/services/events/changes.ts'
import { EVENT_TYPES, isEventType } from '../../src/services/events/types.ts'

describe('event vocabulary', () => {
  it('docs/events.md is up to date (npm run docs:events)', () => {
    const committed = readFileSync(new URL('../../docs/events.md', import.meta.url), 'utf8')
    assert.equal(committed, renderEventDocs())
  })

  it('names events <noun>.<state> and never reuses a change topic', () => {
    for (const t of Object.keys(EVENT_TYPES)) assert.match(t, /^[a-z_]+\.[a-z_]+$/, t)
    for (const topic of CHANGE_TOPICS) assert.equal(isEventType(topic), false, topic)
    assert.equal(isEventType('message.received'), false)
    assert.equal(isEventType('email.delivered'), true)
  })
})
