// First-run setup, sign-up policies and email verification, over real HTTP.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { Api } from '../helpers/api.ts'
import { DIALECTS, testDatabase } from '../helpers/dialects.ts'
import { startTestServer } from '../helpers/server.ts'
import { events, lastMail, PASSWORD } from './helpers.ts'

for (const dialect of DIALECTS) {
  describe(`setup and sign-up (${dialect})`, () => {
    it('creates the first owner only with the printed token, once', async () => {
      const s = await startTestServer(dialect, { env: { POSTERN_RATE_LIMITS_SETUP: '10/15m' } })
      try {
        const anon = new Api(s.url)
        assert.deepEqual((await anon.get('/v1/setup/status')).body, { needs_setup: true })
        const body = { org_name: 'Acme', email: 'Owner@Example.com', password: PASSWORD }
        const wrong = await anon.post('/v1/setup', { ...body, setup_token: 'pst_setup_nope' })
        assert.equal(wrong.status, 403)
        assert.equal(wrong.body.code, 'INVALID_SETUP_TOKEN')
        const weak = await anon.post('/v1/setup', {
          ...body,
          password: 'short',
          setup_token: s.postern.setupToken,
        })
        assert.equal(weak.status, 422)
        assert.equal(weak.body.code, 'WEAK_PASSWORD')
        assert.equal(weak.body.errors[0].field, 'password')
        const ok = await anon.post('/v1/setup', { ...body, setup_token: s.postern.setupToken })
        assert.equal(ok.status, 201, ok.text)
        assert.equal(ok.body.user.email, 'owner@example.com')
        assert.equal(ok.body.user.role, 'owner')
        assert.equal(ok.body.user.email_verified, true)
        const cookie = ok.headers.get('set-cookie') ?? ''
        assert.match(cookie, /^postern_session=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=604800$/)
        assert.equal((await anon.get('/v1/me')).body.org_name, 'Acme')
        assert.deepEqual((await anon.get('/v1/setup/status')).body, { needs_setup: false })
        const again = await new Api(s.url).post('/v1/setup', {
          ...body,
          email: 'other@example.com',
          setup_token: s.postern.setupToken,
        })
        assert.equal(again.status, 409)
        assert.equal(again.body.code, 'SETUP_DONE')
        assert.equal((await events(s, 'setup.completed')).length, 1)
      } finally {
        await s.close()
      }
    })

    it('refuses sign-up when closed (the default) and invite-only', async () => {
      for (const policy of ['closed', 'invite']) {
        const s = await startTestServer(dialect, { env: { POSTERN_AUTH_SIGNUP: policy } })
        try {
          const r = await new Api(s.url).post('/v1/auth/signup', {
            email: 'new@example.com',
            password: PASSWORD,
          })
          assert.equal(r.status, 403)
          assert.equal(r.body.code, 'SIGNUP_CLOSED')
        } finally {
          await s.close()
        }
      }
    })

    it('signs up when open, mails a 6-digit code and verifies it (single use, bounded attempts)', async () => {
      const s = await startTestServer(dialect, { env: { POSTERN_AUTH_SIGNUP: 'open' } })
      try {
        const api = new Api(s.url)
        const r = await api.post('/v1/auth/signup', {
          email: 'Dana@Example.org',
          password: PASSWORD,
          name: 'Dana',
        })
        assert.equal(r.status, 201, r.text)
        assert.equal(r.body.user.email_verified, false)
        assert.equal(r.body.org.name, 'example.org')
        assert.equal((await api.get('/v1/me')).status, 200)
        const dup = await new Api(s.url).post('/v1/auth/signup', {
          email: 'dana@example.org',
          password: PASSWORD,
        })
        assert.equal(dup.status, 409)
        const mail = await lastMail(s, 'dana@example.org', 'verify_email')
        const code = mail?.text.match(/\b(\d{6})\b/)?.[1] as string
        assert.match(code, /^\d{6}$/)
        assert.ok(
          !(await s.postern.store.db.selectFrom('one_time_tokens').selectAll().execute()).some((t) =>
            t.token_hash.includes(code),
          ),
          'code stored hashed',
        )
        const bad = await api.post('/v1/auth/verify-email', {
          email: 'dana@example.org',
          code: code === '000000' ? '111111' : '000000',
        })
        assert.equal(bad.status, 422)
        assert.equal(bad.body.code, 'INVALID_CODE')
        const good = await api.post('/v1/auth/verify-email', { email: 'dana@example.org', code })
        assert.equal(good.status, 200, good.text)
        assert.equal(good.body.email_verified, true)
        // Resending to a verified address is refused.
        assert.equal((await api.post('/v1/me/verify-email/resend')).status, 409)
      } finally {
        await s.close()
      }
    })

    it('locks a verification code after five wrong attempts', async () => {
      const s = await startTestServer(dialect, {
        env: { POSTERN_AUTH_SIGNUP: 'open', POSTERN_RATE_LIMITS_VERIFY_EMAIL: '100/15m' },
      })
      try {
        const api = new Api(s.url)
        await api.post('/v1/auth/signup', { email: 'eve@example.org', password: PASSWORD })
        const code = (await lastMail(s, 'eve@example.org', 'verify_email'))?.text.match(
          /\b(\d{6})\b/,
        )?.[1] as string
        const wrongCode = code === '123456' ? '654321' : '123456'
        for (let i = 0; i < 5; i++)
          assert.equal(
            (await api.post('/v1/auth/verify-email', { email: 'eve@example.org', code: wrongCode })).status,
            422,
          )
        const late = await api.post('/v1/auth/verify-email', { email: 'eve@example.org', code })
        assert.equal(late.status, 422, 'the right code no longer works after five misses')
        assert.equal((await api.post('/v1/me/verify-email/resend')).status, 202)
        const fresh = (await lastMail(s, 'eve@example.org', 'verify_email'))?.text.match(
          /\b(\d{6})\b/,
        )?.[1] as string
        assert.equal(
          (await api.post('/v1/auth/verify-email', { email: 'eve@example.org', code: fresh })).status,
          200,
        )
      } finally {
        await s.close()
      }
    })
  })
}

describe('postern init --owner-email', () => {
  it('creates the first owner from the command line, who can then sign in', async () => {
    const tdb = testDatabase('sqlite')
    try {
      const bin = new URL('../../bin/postern.mjs', import.meta.url).pathname
      const r = spawnSync(
        process.execPath,
        [bin, 'init', '--owner-email', 'root@example.com', '--org', 'Root Org', '--json'],
        {
          env: {
            PATH: process.env.PATH ?? '',
            ...tdb.env,
            POSTERN_LOG_LEVEL: 'silent',
            POSTERN_AUTH_ARGON2_MEMORY_KIB: '64',
            POSTERN_AUTH_ARGON2_TIME_COST: '1',
          },
          encoding: 'utf8',
        },
      )
      assert.equal(r.status, 0, r.stderr)
      const out = JSON.parse(r.stdout)
      assert.equal(out.owner.email, 'root@example.com')
      assert.ok(out.owner.password.length >= 20)
      assert.equal(out.setup_token, null)
      const s = await startTestServer('sqlite', { env: { ...tdb.env } })
      try {
        const api = new Api(s.url)
        const login = await api.post('/v1/auth/login', {
          email: 'root@example.com',
          password: out.owner.password,
        })
        assert.equal(login.status, 200, login.text)
        assert.equal(login.body.org.name, 'Root Org')
        assert.equal(s.postern.setupToken, null)
      } finally {
        await s.close()
      }
    } finally {
      await tdb.drop()
    }
  })
})
