// `postern queue` against a running server's store: status, list, show, pause, resume,
// retry and cancel act on the same queue the API shows.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { describe, it } from 'node:test'
import { DIALECTS } from '../helpers/dialects.ts'
import { type DnsServer, startDnsServer } from '../helpers/dns-server.ts'
import { startSender } from './helpers.ts'

for (const dialect of DIALECTS) {
  describe(`postern queue (${dialect})`, () => {
    it('shows, pauses, resumes, retries and cancels queued mail', async () => {
      const dns: DnsServer = await startDnsServer({})
      const a = await startSender(dialect, dns, 9) // nothing listens on port 9: deliveries defer
      try {
        const s = a.server
        const env: Record<string, string> = {
          PATH: process.env.PATH ?? '',
          POSTERN_DATA_DIR: s.config.data_dir,
          POSTERN_HOSTNAME: s.config.hostname as string,
          POSTERN_DNS_SERVERS: dns.servers.join(','),
          POSTERN_LOG_LEVEL: 'silent',
        }
        if (s.config.database.url)
          Object.assign(env, {
            POSTERN_DATABASE_URL: s.config.database.url,
            POSTERN_DATABASE_SCHEMA: s.config.database.schema,
          })
        const bin = new URL('../../bin/postern.mjs', import.meta.url).pathname
        const cli = (...args: string[]) =>
          new Promise<string>((resolve, reject) =>
            execFile(
              process.execPath,
              [
                '--import',
                new URL('../helpers/guard-preload.ts', import.meta.url).pathname,
                bin,
                'queue',
                ...args,
              ],
              { env, encoding: 'utf8', timeout: 60_000 },
              (err, stdout, stderr) =>
                err
                  ? reject(new Error(`postern queue ${args.join(' ')}: ${stderr || err.message}`))
                  : resolve(stdout),
            ),
          )
        assert.match(await cli('--help'), /status[\s\S]*retry[\s\S]*cancel/)
        const later = new Date(Date.now() + 3_600_000).toISOString()
        const r = await a.send.post('/v1/emails', {
          from: 'alice@a.example',
          to: 'x@nowhere.example',
          subject: 'Later',
          text: 'hi',
          scheduled_at: later,
        })
        assert.equal(r.status, 202, r.text)
        assert.match(await cli('list'), new RegExp(`${r.body.id}\\s+scheduled`))
        assert.match(await cli('status'), /delivery: running[\s\S]*scheduled 1/)
        assert.match(await cli('pause'), /delivery paused/)
        assert.equal((await a.api.get('/v1/queue')).body.paused, true, 'the server sees the pause')
        assert.match(await cli('resume'), /delivery resumed/)
        assert.match(await cli('show', r.body.id), /x@nowhere\.example queued/)
        const shown = JSON.parse(await cli('cancel', r.body.id, '--json'))
        assert.equal(shown.status, 'cancelled')
        assert.equal((await a.api.get(`/v1/emails/${r.body.id}`)).body.status, 'cancelled')
        await assert.rejects(cli('cancel', r.body.id), /only scheduled, queued or held/)
        await assert.rejects(cli('retry'), /give the email id/)
      } finally {
        await a.server.close()
        await dns.close()
      }
    })
  })
}
