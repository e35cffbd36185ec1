// IDLE across processes: a second `postern serve` process (only the smtp role) on the same
// database and data folder takes a delivery; the IMAP session held by this process hears it
// through the change bus (LISTEN/NOTIFY on PostgreSQL, the polled change log on SQLite).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { mail } from '../delivery/helpers.ts'
import { runChild } from '../helpers/child.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { loopbackEnv } from '../helpers/server.ts'
import { imapFixture, RawImap, smtpDeliver } from './helpers.ts'

const BIN = new URL('../../bin/postern.mjs', import.meta.url)

for (const dialect of DIALECTS) {
  describe(`IMAP IDLE across processes (${dialect})`, () => {
    it('hears a delivery taken by another process on the same store', async () => {
      const f = await imapFixture(dialect)
      const { config } = f.s
      const env: Record<string, string> = {
        ...loopbackEnv(),
        POSTERN_DATA_DIR: config.data_dir,
        POSTERN_DNS_SERVERS: f.s.dns.servers.join(','),
        POSTERN_ROLES: 'smtp',
        POSTERN_SMTP_VERIFY_AUTH: 'false',
        POSTERN_LOG_LEVEL: 'warn',
        ...(config.database.url
          ? { POSTERN_DATABASE_URL: config.database.url, POSTERN_DATABASE_SCHEMA: config.database.schema }
          : {}),
      }
      const other = runChild(BIN, ['serve'], env)
      try {
        const port = Number((await other.waitFor(/smtp-mx +smtp:\/\/127\.0\.0\.1:(\d+)/, 60_000))[1])
        const { c } = await RawImap.open(f.imapPort)
        await c.login(f.ann.address)
        await c.cmd('i1', 'SELECT INBOX')
        c.write('i2 IDLE\r\n')
        assert.equal(await c.readLine(), '+ idling\r\n')
        await smtpDeliver(
          port,
          'someone@sender.example',
          f.ann.address,
          mail({ from: 'someone@sender.example', to: f.ann.address, subject: 'From the other process' }),
        )
        assert.equal(await c.readLine(15_000), '* 1 EXISTS\r\n')
        assert.equal(await c.readLine(), '* 1 RECENT\r\n')
        c.write('DONE\r\n')
        assert.equal(await c.until('i2'), 'i2 OK IDLE terminated.\r\n')
        assert.match(
          await c.cmd('f1', 'FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])'),
          /Subject: From the other process/,
        )
        c.close()
      } finally {
        other.proc.kill('SIGTERM')
        await other.exited
        await f.close()
      }
    })
  })
}
