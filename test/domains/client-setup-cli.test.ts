// Client set-up documents (autoconfig, autodiscover, MTA-STS over HTTPS with SNI) and the admin
// CLI verbs working against a running server.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import { request } from 'node:https'
import { describe, it } from 'node:test'
import { createTransport } from 'nodemailer'
import type { ChangeEvent } from '../../src/store/change-bus.ts'
import { setupOwner } from '../accounts/helpers.ts'
import { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { publish, verifiedDomain } from './helpers.ts'

function httpsGet(
  s: TestServer,
  servername: string,
  path: string,
): Promise<{ status: number; body: string }> {
  const port = s.postern.listeners.find((l) => l.name === 'https')?.port
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        servername,
        headers: { host: servername },
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        let body = ''
        res.on('data', (d) => {
          body += d
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

/** Runs `postern <args>` in a child process against the test server's store. */
function cliOf(s: TestServer) {
  const bin = new URL('../../bin/postern.mjs', import.meta.url).pathname
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    POSTERN_DATA_DIR: s.config.data_dir,
    POSTERN_HOSTNAME: 'mx.postern.test',
    POSTERN_DNS_SERVERS: s.dns.servers.join(','),
    POSTERN_LOG_LEVEL: 'silent',
    POSTERN_AUTH_ARGON2_MEMORY_KIB: '64',
    POSTERN_AUTH_ARGON2_TIME_COST: '1',
    POSTERN_SMTP_MX_PORT: '0',
    POSTERN_SMTP_SUBMISSION_PORT: '0',
    POSTERN_SMTP_SUBMISSIONS_PORT: '0',
    POSTERN_IMAP_PORT: '0',
    POSTERN_IMAP_TLS_PORT: '0',
  }
  if (s.config.database.url)
    Object.assign(env, {
      POSTERN_DATABASE_URL: s.config.database.url,
      POSTERN_DATABASE_SCHEMA: s.config.database.schema,
    })
  // Asynchronous: this process serves the loopback DNS the CLI asks while it runs.
  const cli = (...args: string[]) =>
    new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--import', new URL('../helpers/guard-preload.ts', import.meta.url).pathname, bin, ...args],
        { env, encoding: 'utf8', timeout: 60_000 },
        (err, stdout, stderr) =>
          err ? reject(new Error(`postern ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
      ),
    )
  return { cli, env }
}

for (const dialect of DIALECTS) {
  describe(`client set-up (${dialect})`, () => {
    it('serves autoconfig, autodiscover and the MTA-STS policy for verified domains only', async () => {
      const s = await startTestServer(dialect, {
        env: { POSTERN_HTTPS_ENABLED: 'true', POSTERN_DOMAINS_MTA_STS_MODE: 'enforce' },
      })
      try {
        const api = await setupOwner(s)
        await verifiedDomain(api, s.dns, 'mail.example')
        await api.post('/v1/domains', { name: 'pending.example' })
        const auto = await fetch(
          `${s.url}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ann@mail.example`,
        )
        assert.equal(auto.status, 200)
        assert.match(auto.headers.get('content-type') ?? '', /xml/)
        const xml = await auto.text()
        assert.match(xml, /<emailProvider id="mail\.example">/)
        assert.match(xml, /<hostname>mx\.postern\.test<\/hostname>/)
        assert.match(xml, /<incomingServer type="imap">[\s\S]*<socketType>SSL<\/socketType>/)
        assert.equal(
          (await fetch(`${s.url}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=x@pending.example`))
            .status,
          404,
        )
        // Thunderbird asks http://autoconfig.<domain>/mail/config-v1.1.xml (fetch cannot set Host).
        const byHost = await new Promise<number>((resolve, reject) => {
          httpRequest(
            {
              host: '127.0.0.1',
              port: new URL(s.url).port,
              path: '/mail/config-v1.1.xml',
              headers: { host: 'autoconfig.mail.example' },
            },
            (res) => {
              res.resume()
              resolve(res.statusCode ?? 0)
            },
          )
            .on('error', reject)
            .end()
        })
        assert.equal(byHost, 200)

        const disc = await fetch(`${s.url}/autodiscover/autodiscover.xml`, {
          method: 'POST',
          headers: { 'content-type': 'text/xml' },
          body: '<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>ann@mail.example</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>',
        })
        assert.equal(disc.status, 200)
        const dx = await disc.text()
        assert.match(dx, /<Type>IMAP<\/Type>[\s\S]*<LoginName>ann@mail\.example<\/LoginName>/)
        assert.match(dx, /<Type>SMTP<\/Type>/)
        const noAddr = await fetch(`${s.url}/autodiscover/autodiscover.xml`, {
          method: 'POST',
          headers: { 'content-type': 'text/xml' },
          body: '<x/>',
        })
        assert.equal(noAddr.status, 400)

        const sts = await httpsGet(s, 'mta-sts.mail.example', '/.well-known/mta-sts.txt')
        assert.equal(sts.status, 200)
        assert.equal(
          sts.body,
          'version: STSv1\r\nmode: enforce\r\nmx: mx.postern.test\r\nmax_age: 604800\r\n',
        )
        assert.equal((await httpsGet(s, 'mta-sts.pending.example', '/.well-known/mta-sts.txt')).status, 404)
        assert.equal((await httpsGet(s, 'mail.example', '/.well-known/mta-sts.txt')).status, 404)
      } finally {
        await s.close()
      }
    })

    it('admin verbs of the CLI change the running server at once', async () => {
      const s = await startTestServer(dialect)
      try {
        const api = await setupOwner(s)
        const seen: ChangeEvent[] = []
        s.postern.bus.subscribe('*', (e) => seen.push(e))
        const { cli, env } = cliOf(s)
        const added = JSON.parse(await cli('domain', 'add', 'cli.example', '--max-mailboxes', '5', '--json'))
        assert.equal(added.name, 'cli.example')
        assert.equal(
          (await api.get('/v1/domains/cli.example')).body.max_mailboxes,
          5,
          'the server sees the CLI change at once',
        )
        const zone = await cli('domain', 'dns', 'cli.example')
        assert.match(zone, /^_postern\.cli\.example\.\s+3600\s+IN\s+TXT\s+"postern-verification=[0-9a-f]+"$/m)
        publish(s.dns, (await api.get('/v1/domains/cli.example/dns-records')).body.records)
        assert.match(await cli('domain', 'verify', 'cli.example'), /cli\.example is verified/)
        assert.match(await cli('domain', 'list'), /cli\.example\s+verified/)
        const mbx = JSON.parse(await cli('mailbox', 'add', 'joe@cli.example', '--name', 'Joe', '--json'))
        assert.ok(mbx.password && mbx.api_key.key)
        const joe = new Api(s.url).withKey(mbx.api_key.key)
        assert.equal(
          (await joe.get(`/v1/mailboxes/${mbx.mailbox.id}`)).body.name,
          'Joe',
          'the CLI-made key works against the server',
        )
        env.POSTERN_MAILBOX_PASSWORD = 'changed-by-the-Cli-42'
        await cli('mailbox', 'passwd', 'joe@cli.example')
        const row = await s.postern.store.db
          .selectFrom('mailboxes')
          .select('password_hash')
          .where('id', '=', mbx.mailbox.id)
          .executeTakeFirstOrThrow()
        assert.equal(
          await s.postern.accounts.hasher.verify(row.password_hash as string, 'changed-by-the-Cli-42'),
          true,
        )
        assert.match(await cli('mailbox', 'list'), /joe@cli\.example/)
        await cli('alias', 'add', 'team@cli.example', 'joe@cli.example')
        assert.match(await cli('alias', 'list', '--json'), /"team@cli\.example"/)
        const key = JSON.parse(await cli('key', 'create', '--scope', 'read', '--name', 'ro', '--json'))
        assert.equal((await new Api(s.url).withKey(key.key).get('/v1/aliases')).status, 200)
        assert.equal(key.test, false)
        const testKey = JSON.parse(await cli('key', 'create', '--scope', 'send', '--test', '--json'))
        assert.match(testKey.key, /^pst_test_/)
        assert.equal(testKey.test, true)
        assert.match(
          await cli('key', 'create', '--scope', 'read', '--test'),
          /key: pst_test_\S+ .*\n.*test mode/,
        )
        const until = Date.now() + 5000
        while (Date.now() < until && !seen.some((e) => e.topic === 'alias.changed'))
          await new Promise((r) => setTimeout(r, 20))
        const topics = new Set(seen.map((e) => e.topic))
        for (const t of ['domain.changed', 'mailbox.changed', 'alias.changed'])
          assert.ok(topics.has(t), `the server heard ${t} from the CLI`)
        const events = await s.postern.store.db
          .selectFrom('events')
          .select(['type', 'actor'])
          .where('actor', '=', 'cli')
          .execute()
        assert.ok(
          events.some((e) => e.type === 'domain.created'),
          'CLI actions are audited as cli',
        )
      } finally {
        await s.close()
      }
    })

    it('receives a first mail for a domain the operator vouched for, with no DNS published', async () => {
      const s = await startTestServer(dialect, { env: { POSTERN_AUTH_SIGNUP: 'open' } })
      try {
        const api = await setupOwner(s)
        const { cli } = cliOf(s)
        await cli('domain', 'add', 'local.example')
        // Nothing is published: the HTTP API cannot verify it, whatever the body says.
        const refused = await api.post('/v1/domains/local.example/verify', { trust_operator: true })
        assert.equal(refused.status, 409, refused.text)
        assert.equal(refused.body.code, 'DNS_NOT_READY')
        assert.match(
          await cli('domain', 'verify', 'local.example', '--trust-operator'),
          /local\.example is verified on the operator's word/,
        )
        const ev = await s.postern.store.db
          .selectFrom('events')
          .select(['actor', 'payload'])
          .where('type', '=', 'domain.verified')
          .executeTakeFirstOrThrow()
        assert.equal(ev.actor, 'cli')
        assert.equal(JSON.parse(ev.payload).trusted_by_operator, true)

        const mbx = JSON.parse(await cli('mailbox', 'add', 'ann@local.example', '--json'))
        const mx = s.postern.listeners.find((l) => l.name === 'smtp-mx')?.port as number
        const transport = createTransport({ host: '127.0.0.1', port: mx, secure: false, ignoreTLS: true })
        await transport.sendMail({
          from: 'friend@elsewhere.example',
          to: 'ann@local.example',
          subject: 'First mail',
          text: 'Hello without DNS',
        })
        const ann = new Api(s.url).withKey(mbx.api_key.key)
        const list = await ann.get('/v1/messages')
        assert.equal(list.status, 200, list.text)
        assert.deepEqual(
          list.body.data.map((m: { subject: string }) => m.subject),
          ['First mail'],
        )

        // A name another organisation has added is not the operator's to hand out.
        const other = new Api(s.url)
        const signup = await other.post('/v1/auth/signup', {
          email: 'owner@other.example',
          password: 'correct-horse-battery-9',
          org_name: 'Other',
        })
        assert.equal(signup.status, 201, signup.text)
        assert.equal((await other.post('/v1/domains', { name: 'taken.example' })).status, 201)
        await cli('domain', 'add', 'taken.example')
        await assert.rejects(
          cli('domain', 'verify', 'taken.example', '--trust-operator'),
          /added by another organisation/,
        )
        assert.equal((await api.get('/v1/domains/taken.example')).body.status, 'pending')
      } finally {
        await s.close()
      }
    })
  })
}
