// The command framer: whole commands out of arbitrary chunks, literal decisions, limits.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CommandFramer, type Frame } from '../../../src/imap/protocol/framing.ts'

const b = (s: string) => Buffer.from(s, 'latin1')
const text = (f: Frame | null) => (f && f.kind === 'command' ? f.raw.toString('latin1') : f)

describe('IMAP command framer', () => {
  it('splits commands across and within chunks, CRLF or bare LF', () => {
    const f = new CommandFramer({ maxLineBytes: 100 })
    f.feed(b('a1 NOOP\r\na2 CAPA'))
    assert.equal(text(f.take()), 'a1 NOOP')
    assert.equal(f.take(), null)
    f.feed(b('BILITY\r\na3 LOGOUT\n'))
    assert.equal(text(f.take()), 'a2 CAPABILITY')
    assert.equal(text(f.take()), 'a3 LOGOUT')
    assert.equal(f.take(), null)
  })

  it('waits for a decision on a literal, then buffers it into the command', () => {
    const f = new CommandFramer({ maxLineBytes: 100 })
    f.feed(b('a LOGIN {3}\r\n'))
    const lit = f.take()
    assert.equal(lit?.kind, 'literal')
    if (lit?.kind !== 'literal') return
    assert.deepEqual([lit.size, lit.nonSync, lit.binary, lit.at], [3, false, false, 8])
    assert.equal(f.take(), null, 'nothing until the session decides')
    f.accept()
    f.feed(b('f\r\n pass\r\n'))
    assert.equal(text(f.take()), 'a LOGIN {3}\r\nf\r\n pass', 'the literal may hold CRLF')
  })

  it('assembles literals with CRLF inside them and LITERAL+ / literal8 announcements', () => {
    const f = new CommandFramer({ maxLineBytes: 100 })
    f.feed(b('a LOGIN {4}\r\n'))
    assert.equal(f.take()?.kind, 'literal')
    f.accept()
    f.feed(b('x\r\ny {2+}\r\npw\r\n'))
    const second = f.take()
    assert.equal(second?.kind, 'literal')
    if (second?.kind === 'literal') assert.equal(second.nonSync, true)
    f.accept()
    assert.equal(text(f.take()), 'a LOGIN {4}\r\nx\r\ny {2+}\r\npw')
    f.feed(b('b APPEND INBOX ~{1}\r\n'))
    const bin = f.take()
    assert.equal(bin?.kind === 'literal' && bin.binary, true)
  })

  it('streams a literal out and continues the command after it', () => {
    const f = new CommandFramer({ maxLineBytes: 100 })
    f.feed(b('a APPEND INBOX {10}\r\n01234'))
    const lit = f.take()
    assert.equal(lit?.kind, 'literal')
    f.stream()
    assert.equal(f.takeStream()?.toString(), '01234')
    assert.equal(f.takeStream(), null)
    f.feed(b('56789\r\nb NOOP\r\n'))
    assert.equal(f.takeStream()?.toString(), '56789')
    assert.equal(f.takeStream()?.length, 0, 'the end of the literal')
    const rest = f.take()
    assert.equal(rest?.kind, 'command')
    if (rest?.kind === 'command') {
      assert.equal(rest.raw.toString(), 'a APPEND INBOX ')
      assert.equal(rest.streamedAt, 15)
    }
    assert.equal(text(f.take()), 'b NOOP')
  })

  it('refuses a synchronizing literal without reading it, and drops a non-synchronizing one', () => {
    const f = new CommandFramer({ maxLineBytes: 100 })
    f.feed(b('a LOGIN {5}\r\nb NOOP\r\n'))
    assert.equal(f.take()?.kind, 'literal')
    f.refuse()
    assert.equal(text(f.take()), 'b NOOP', 'the client did not send the literal')
    f.feed(b('c LOGIN {5+}\r\nc NOOP rest\r\nd NOOP\r\n'))
    assert.equal(f.take()?.kind, 'literal')
    f.refuse()
    assert.equal(text(f.take()), 'd NOOP', 'the literal and the rest of its command are dropped')
  })

  it('refuses lines over the limit, with their tag, and keeps going', () => {
    const f = new CommandFramer({ maxLineBytes: 20 })
    f.feed(b(`t1 NOOP ${'x'.repeat(40)}\r\nt2 NOOP\r\n`))
    assert.deepEqual(f.take(), { kind: 'too-long', tag: 't1' })
    assert.equal(text(f.take()), 't2 NOOP')
    f.feed(b(`t3 ${'y'.repeat(40)}`))
    assert.deepEqual(f.take(), { kind: 'too-long', tag: 't3' })
    f.feed(b('yyyy\r\nt4 NOOP\r\n'))
    assert.equal(text(f.take()), 't4 NOOP', 'the rest of the long line is skipped')
    assert.ok(f.buffered < 100)
  })

  it('reads raw lines for IDLE and AUTHENTICATE', () => {
    const f = new CommandFramer({ maxLineBytes: 100 })
    f.feed(b('DO'))
    assert.equal(f.takeLine(), null)
    f.feed(b('NE\r\na NOOP\r\n'))
    assert.equal(f.takeLine()?.toString(), 'DONE')
    assert.equal(text(f.take()), 'a NOOP')
  })
})
