// Python's imaplib as a second independent client: a whole flow over STARTTLS.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { DIALECTS } from '../helpers/dialects.ts'
import { needs, requireTool, TOOLS } from '../helpers/tools.ts'
import { imapFixture, PASSWORD } from './helpers.ts'

const SCRIPT = fileURLToPath(new URL('./fixtures/imaplib-flow.py', import.meta.url))

for (const dialect of DIALECTS) {
  describe(`IMAP with Python imaplib (${dialect})`, () => {
    it('runs a whole client flow over STARTTLS', needs(TOOLS.python3), async () => {
      requireTool(TOOLS.python3)
      const f = await imapFixture(dialect)
      try {
        // Asynchronously: the server runs in this process.
        const stdout = await new Promise<string>((resolve, reject) =>
          execFile(
            '/usr/bin/python3',
            [SCRIPT, '127.0.0.1', String(f.imapPort), f.ann.address, PASSWORD],
            { encoding: 'utf8', timeout: 60_000 },
            (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)),
          ),
        )
        const out = JSON.parse(stdout)
        assert.equal(out.login, 'OK')
        assert.ok(out.caps.includes('STARTTLS') === false, 'capabilities were re-read after TLS')
        assert.ok(out.list.some((l: string) => l.endsWith('"INBOX"')))
        assert.equal(out.append[0], 'OK')
        assert.match(out.append[1], /^\[APPENDUID \d+ 1\] APPEND completed\.$/)
        assert.equal(out.select[0], 'OK')
        assert.equal(out.select[1], '1')
        assert.equal(out.search, '1')
        assert.equal(out.fetch_equal, true)
        assert.match(out.fetch_meta, /FLAGS \(\\Seen \\Draft \\Recent\)|FLAGS \(\\Draft \\Recent\)/)
        assert.match(out.store, /\\Deleted/)
        assert.equal(out.copy, 'OK')
        assert.deepEqual(out.expunge, ['1'])
        assert.equal(out.status, '"Drafts" (MESSAGES 1)')
      } finally {
        await f.close()
      }
    })
  })
}
