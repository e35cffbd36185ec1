// Two-factor log-in (TOTP and recovery codes), app passwords and preferences, over real HTTP.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { base32Decode, totpAt } from '../../src/services/accounts/totp.ts'
import { manualClock } from '../../src/time/clock.ts'
import { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer } from '../helpers/server.ts'
import { addMailbox, events, PASSWORD, setupOwner } from './helpers.ts'

for (const dialect of DIALECTS) {
  describe(`two-factor log-in (${dialect})`, () => {
    it('enrols, confirms, requires a code at log-in, refuses replays, accepts each recovery code once, and turns off', async () => {
      const clock = manualClock(Date.now())
      const s = await startTestServer(dialect, {
        clock,
        env: { POSTERN_RATE_LIMITS_LOGIN_IP: '100/15m', POSTERN_RATE_LIMITS_LOGIN_EMAIL: '100/15m' },
      })
      try {
        const owner = await setupOwner(s)
        assert.deepEqual((await owner.get('/v1/me/totp')).body, {
          enabled: false,
          pending: false,
          recovery_codes_left: 0,
        })
        const enrol = await owner.post('/v1/me/totp')
        assert.equal(enrol.status, 201)
        assert.match(
          enrol.body.otpauth_uri,
          /^otpauth:\/\/totp\/mx\.postern\.test:owner%40example\.com\?secret=[A-Z2-7]+&issuer=mx\.postern\.test/,
        )
        const stored = await s.postern.store.db
          .selectFrom('users')
          .select('totp_secret_enc')
          .executeTakeFirstOrThrow()
        assert.ok(
          stored.totp_secret_enc && !stored.totp_secret_enc.includes(enrol.body.secret),
          'the secret is sealed at rest',
        )
        const secret = base32Decode(enrol.body.secret)
        assert.equal(
          (
            await owner.post('/v1/me/totp/confirm', {
              code: '000000' === totpAt(secret, clock.now()) ? '111111' : '000000',
            })
          ).status,
          422,
        )
        const confirm = await owner.post('/v1/me/totp/confirm', { code: totpAt(secret, clock.now()) })
        assert.equal(confirm.status, 200, confirm.text)
        const codes = confirm.body.recovery_codes as string[]
        assert.equal(codes.length, 10)
        assert.equal((await owner.get('/v1/me')).body.totp_enabled, true)

        const tryLogin = (extra: Record<string, string>) =>
          new Api(s.url).post('/v1/auth/login', { email: 'owner@example.com', password: PASSWORD, ...extra })
        const missing = await tryLogin({})
        assert.equal(missing.status, 401)
        assert.equal(missing.body.code, 'TOTP_REQUIRED')
        clock.advance(30_000)
        const code = totpAt(secret, clock.now())
        assert.equal((await tryLogin({ totp_code: code })).status, 200)
        const replay = await tryLogin({ totp_code: code })
        assert.equal(replay.status, 401, 'the same code cannot be used twice')
        assert.equal(replay.body.code, 'INVALID_TOTP')
        clock.advance(30_000)
        assert.equal(
          (await tryLogin({ totp_code: totpAt(secret, clock.now()) })).status,
          200,
          'the next step works',
        )
        assert.equal((await tryLogin({ recovery_code: codes[0]?.toUpperCase() as string })).status, 200)
        assert.equal(
          (await tryLogin({ recovery_code: codes[0] as string })).status,
          401,
          'a recovery code works once',
        )
        assert.equal((await owner.get('/v1/me/totp')).body.recovery_codes_left, 9)
        assert.equal(
          (await owner.delete('/v1/me/totp', { password: PASSWORD })).status,
          403,
          'turning it off needs a code',
        )
        assert.equal(
          (await owner.delete('/v1/me/totp', { password: 'wrong-password-1', code: codes[1] })).status,
          403,
        )
        assert.equal((await owner.delete('/v1/me/totp', { password: PASSWORD, code: codes[1] })).status, 204)
        assert.equal((await tryLogin({})).status, 200)
        assert.equal((await events(s, 'user.totp_enabled')).length, 1)
        assert.equal((await events(s, 'user.totp_disabled')).length, 1)
      } finally {
        await s.close()
      }
    })
  })

  describe(`app passwords and preferences (${dialect})`, () => {
    it('creates app passwords only for mailboxes the user can access, shown once, stored hashed', async () => {
      const s = await startTestServer(dialect)
      try {
        const owner = await setupOwner(s)
        const me = (await owner.get('/v1/me')).body
        const own = await addMailbox(s, me.org_id, me.id, 'olive')
        const other = await addMailbox(s, me.org_id, null, 'shared')
        assert.equal(
          (await owner.post('/v1/me/app-passwords', { name: 'phone', mailbox_id: other })).status,
          404,
          'owners manage every mailbox but read only granted ones',
        )
        await s.postern.store.db
          .insertInto('mailbox_grants')
          .values({ org_id: me.org_id, mailbox_id: other, user_id: me.id, created_at: Date.now() })
          .execute()
        const granted = await owner.post('/v1/me/app-passwords', { name: 'laptop', mailbox_id: other })
        assert.equal(granted.status, 201)
        const created = await owner.post('/v1/me/app-passwords', { name: 'phone', mailbox_id: own })
        assert.equal(created.status, 201, created.text)
        assert.match(created.body.password, /^[a-z]{4}-[a-z]{4}-[a-z]{4}-[a-z]{4}$/)
        const rows = await s.postern.store.db.selectFrom('app_passwords').selectAll().execute()
        assert.ok(!JSON.stringify(rows).includes(created.body.password))
        const list = await owner.get('/v1/me/app-passwords')
        assert.equal(list.body.data.length, 2)
        assert.ok(!list.text.includes(created.body.password))
        assert.equal((await owner.delete(`/v1/me/app-passwords/${created.body.id}`)).status, 204)
        assert.equal((await owner.get('/v1/me/app-passwords')).body.data.length, 1)
        assert.equal((await owner.delete(`/v1/me/app-passwords/${created.body.id}`)).status, 404)
      } finally {
        await s.close()
      }
    })

    it('merges preferences as RFC 7396 patches', async () => {
      const s = await startTestServer(dialect)
      try {
        const owner = await setupOwner(s)
        assert.deepEqual((await owner.get('/v1/me/preferences')).body, {})
        await owner.patch('/v1/me/preferences', {
          theme: 'dark',
          inbox: { density: 'compact', preview: true },
        })
        const r = await owner.req(
          'PATCH',
          '/v1/me/preferences',
          { inbox: { preview: null, sort: 'date' } },
          { 'content-type': 'application/merge-patch+json' },
        )
        assert.equal(r.status, 200, r.text)
        assert.deepEqual(r.body, { theme: 'dark', inbox: { density: 'compact', sort: 'date' } })
        const bad = await owner.req('PATCH', '/v1/me/preferences', '{nope', {
          'content-type': 'application/merge-patch+json',
        })
        assert.equal(bad.status, 400)
        assert.equal((await owner.patch('/v1/me/preferences', { blob: 'x'.repeat(20_000) })).status, 422)
      } finally {
        await s.close()
      }
    })
  })
}
