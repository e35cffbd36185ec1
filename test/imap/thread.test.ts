// THREAD=REFERENCES as a pure function: chains, branches, missing parents, subject merges,
// loops in References, duplicates.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type ThreadInput, threadReferences } from '../../src/imap/thread.ts'

const m = (n: number, id: string | null, refs: string[] = [], subject = 'Topic', date = n): ThreadInput => ({
  n,
  messageId: id ? `<${id}>` : null,
  inReplyTo: null,
  references: refs.map((r) => `<${r}>`),
  subject,
  date,
})

describe('THREAD=REFERENCES', () => {
  it('writes a chain inline and a branch as sub-threads', () => {
    assert.equal(threadReferences([m(1, 'a'), m(2, 'b', ['a']), m(3, 'c', ['a', 'b'])]), '(1 2 3)')
    assert.equal(threadReferences([m(1, 'a'), m(2, 'b', ['a']), m(3, 'c', ['a'])]), '(1 (2)(3))')
  })

  it('keeps threads apart, in date order, and promotes children of a missing parent', () => {
    assert.equal(
      threadReferences([
        m(1, 'x', [], 'Other'),
        m(2, 'b', ['gone'], 'Re: Topic'),
        m(3, 'c', ['gone'], 'Re: Topic'),
      ]),
      '(1)((2)(3))',
    )
  })

  it('gathers roots by base subject under the original', () => {
    assert.equal(threadReferences([m(1, 'a', [], 'Lunch'), m(2, 'b', [], 'Re: Lunch')]), '(1 2)')
  })

  it('survives reference loops, duplicate ids and messages without ids', () => {
    const out = threadReferences([m(1, 'a', ['b']), m(2, 'b', ['a']), m(3, 'a'), m(4, null, [], 'Solo')])
    for (const n of ['1', '2', '3', '4'])
      assert.equal(out.split(/[() ]/).filter((x) => x === n).length, 1, out)
  })
})
