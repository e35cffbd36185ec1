// Log-in, sessions, CSRF, password change and reset, throttling and rate limits, over real HTTP.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { manualClock } from '../../src/time/clock.ts'
import { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer } from '../helpers/server.ts'
import { events, PASSWORD, PASSWORD2, setupOwner, tokenFromMail } from './helpers.ts'

const login = (
  s: { url: string },
  email: string,
  password: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) => {
  const api = new Api(s.url, { headers })
  return api.post('/v1/auth/login', { email, password, ...extra }).then((r) => ({ r, api }))
}

for (const dialect of DIALECTS) {
  describe(`log-in and sessions (${dialect})`, () => {
    it('logs in with a cookie session, enforces X-Requested-With on writes, and logs out', async () => {
      const s = await startTestServer(dialect)
      try {
        await setupOwner(s)
        const { r, api } = await login(s, 'OWNER@example.com', PASSWORD)
        assert.equal(r.status, 200, r.text)
        assert.match(r.headers.get('set-cookie') ?? '', /HttpOnly; SameSite=Lax/)
        assert.equal(r.body.user.email, 'owner@example.com')
        assert.ok(!r.text.includes('password_hash') && !r.text.includes('$argon2'))
        assert.equal((await api.get('/v1/me')).status, 200)
        const noCsrf = new Api(s.url, { csrfHeader: false })
        noCsrf.cookie = api.cookie
        const refused = await noCsrf.patch('/v1/me', { name: 'X' })
        assert.equal(refused.status, 403)
        assert.equal(refused.body.code, 'CSRF_HEADER_MISSING')
        assert.equal((await api.patch('/v1/me', { name: 'Olive' })).body.name, 'Olive')
        const out = await api.post('/v1/auth/logout')
        assert.equal(out.status, 204)
        assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/)
        const after = new Api(s.url)
        after.cookie = noCsrf.cookie
        const dead = await after.get('/v1/me')
        assert.equal(dead.status, 401)
        assert.equal(dead.body.code, 'SESSION_EXPIRED')
        assert.equal((await events(s, 'auth.login_succeeded')).length, 1)
      } finally {
        await s.close()
      }
    })

    it('answers the same for a wrong password and an unknown email, and verifies a password for both', async () => {
      const s = await startTestServer(dialect)
      try {
        await setupOwner(s)
        const before = s.postern.accounts.hasher.verifications
        const a = (await login(s, 'owner@example.com', 'wrong-password-123')).r
        const b = (await login(s, 'nobody@example.com', 'wrong-password-123')).r
        assert.equal(
          s.postern.accounts.hasher.verifications - before,
          2,
          'one argon2 verification each, account or not',
        )
        assert.equal(a.status, 401)
        assert.equal(b.status, 401)
        assert.equal(a.body.code, b.body.code)
        assert.equal(a.body.detail, b.body.detail)
        const failed = await events(s, 'auth.login_failed')
        assert.equal(failed.length, 2)
        assert.ok(failed.every((e) => e.ip === '127.0.0.1'))
        assert.ok(!JSON.stringify(failed).includes('wrong-password-123'))
      } finally {
        await s.close()
      }
    })

    it('lists and revokes sessions; a password change ends the other sessions', async () => {
      const s = await startTestServer(dialect)
      try {
        const first = await setupOwner(s)
        const { api: second } = await login(
          s,
          'owner@example.com',
          PASSWORD,
          {},
          { 'user-agent': 'second-device' },
        )
        const { api: third } = await login(s, 'owner@example.com', PASSWORD)
        const list = await second.get('/v1/me/sessions')
        assert.equal(list.body.data.length, 3)
        assert.equal(list.body.data.filter((x: { current: boolean }) => x.current).length, 1)
        assert.equal(list.body.data.find((x: { current: boolean }) => x.current).user_agent, 'second-device')
        const thirdId = (await third.get('/v1/me/sessions')).body.data.find(
          (x: { current: boolean }) => x.current,
        ).id
        assert.equal((await second.delete(`/v1/me/sessions/${thirdId}`)).status, 204)
        assert.equal((await third.get('/v1/me')).status, 401)
        assert.equal((await second.delete(`/v1/me/sessions/${thirdId}`)).status, 404)
        const wrong = await second.patch('/v1/me/password', {
          current_password: 'nope-nope-nope',
          new_password: PASSWORD2,
        })
        assert.equal(wrong.status, 403)
        const weak = await second.patch('/v1/me/password', {
          current_password: PASSWORD,
          new_password: 'password123',
        })
        assert.equal(weak.status, 422)
        const changed = await second.patch('/v1/me/password', {
          current_password: PASSWORD,
          new_password: PASSWORD2,
        })
        assert.deepEqual(changed.body, { sessions_ended: 1 })
        assert.equal((await first.get('/v1/me')).status, 401, 'the other session ended')
        assert.equal((await second.get('/v1/me')).status, 200, 'this session stays')
        assert.equal((await login(s, 'owner@example.com', PASSWORD)).r.status, 401)
        assert.equal((await login(s, 'owner@example.com', PASSWORD2)).r.status, 200)
      } finally {
        await s.close()
      }
    })

    it('expires sessions after auth.session_days', async () => {
      const clock = manualClock(Date.now())
      const s = await startTestServer(dialect, { clock, env: { POSTERN_AUTH_SESSION_DAYS: '1' } })
      try {
        const api = await setupOwner(s)
        clock.advance(23 * 3_600_000)
        assert.equal((await api.get('/v1/me')).status, 200)
        clock.advance(2 * 3_600_000)
        const r = await api.get('/v1/me')
        assert.equal(r.status, 401)
        assert.equal(r.body.code, 'SESSION_EXPIRED')
      } finally {
        await s.close()
      }
    })

    it('resets a forgotten password with a single-use token, and never reveals accounts', async () => {
      const s = await startTestServer(dialect)
      try {
        const owner = await setupOwner(s)
        const anon = new Api(s.url)
        const unknown = await anon.post('/v1/auth/forgot-password', { email: 'ghost@example.com' })
        const known = await anon.post('/v1/auth/forgot-password', { email: 'owner@example.com' })
        assert.equal(unknown.status, 202)
        assert.equal(known.status, 202)
        assert.deepEqual(unknown.body, known.body)
        const token = await tokenFromMail(
          s,
          'owner@example.com',
          'reset_password',
          /pst_reset_[A-Za-z0-9_-]+/,
        )
        const stored = await s.postern.store.db.selectFrom('one_time_tokens').select('token_hash').execute()
        assert.ok(!JSON.stringify(stored).includes(token), 'only the hash is stored')
        const weak = await anon.post('/v1/auth/reset-password', { token, password: 'abc' })
        assert.equal(weak.status, 422)
        assert.equal((await anon.post('/v1/auth/reset-password', { token, password: PASSWORD2 })).status, 204)
        const reused = await anon.post('/v1/auth/reset-password', { token, password: PASSWORD2 })
        assert.equal(reused.status, 422)
        assert.equal(reused.body.code, 'INVALID_TOKEN')
        assert.equal((await owner.get('/v1/me')).status, 401, 'a reset ends every session')
        assert.equal((await login(s, 'owner@example.com', PASSWORD2)).r.status, 200)
      } finally {
        await s.close()
      }
    })

    it('refuses a reset token after its hour', async () => {
      const clock = manualClock(Date.now())
      const s = await startTestServer(dialect, { clock })
      try {
        await setupOwner(s)
        await new Api(s.url).post('/v1/auth/forgot-password', { email: 'owner@example.com' })
        const token = await tokenFromMail(
          s,
          'owner@example.com',
          'reset_password',
          /pst_reset_[A-Za-z0-9_-]+/,
        )
        clock.advance(61 * 60_000)
        const late = await new Api(s.url).post('/v1/auth/reset-password', { token, password: PASSWORD2 })
        assert.equal(late.status, 422)
        assert.equal(late.body.code, 'INVALID_TOKEN')
      } finally {
        await s.close()
      }
    })

    it('slows down and then locks out repeated failed log-ins per account', async () => {
      const s = await startTestServer(dialect, {
        env: {
          POSTERN_AUTH_SLOWDOWN_AFTER: '2',
          POSTERN_AUTH_LOCKOUT_AFTER: '3',
          POSTERN_RATE_LIMITS_LOGIN_IP: '100/15m',
          POSTERN_RATE_LIMITS_LOGIN_EMAIL: '100/15m',
        },
      })
      try {
        await setupOwner(s)
        for (let i = 0; i < 2; i++)
          assert.equal((await login(s, 'owner@example.com', 'bad-password-123')).r.status, 401)
        const t0 = performance.now()
        const third = (await login(s, 'owner@example.com', 'bad-password-123')).r
        assert.ok(performance.now() - t0 >= 200, 'the attempt after slowdown_after failures is delayed')
        assert.equal(third.status, 429)
        assert.equal(third.body.code, 'LOGIN_LOCKED')
        assert.ok(Number(third.headers.get('retry-after')) > 0)
        const right = (await login(s, 'owner@example.com', PASSWORD)).r
        assert.equal(right.status, 429, 'locked even with the right password')
        assert.equal(right.body.code, 'LOGIN_LOCKED')
      } finally {
        await s.close()
      }
    })

    it('rate limits log-ins per address with X-RateLimit headers, and ignores X-Forwarded-For unless trusted', async () => {
      const s = await startTestServer(dialect, { env: { POSTERN_RATE_LIMITS_LOGIN_IP: '3/15m' } })
      try {
        await setupOwner(s)
        const statuses: number[] = []
        for (let i = 0; i < 4; i++) {
          const { r } = await login(
            s,
            `user${i}@example.com`,
            'whatever-pass-1',
            {},
            { 'x-forwarded-for': `203.0.113.${i}` },
          )
          statuses.push(r.status)
          if (i === 0) {
            assert.equal(r.headers.get('x-ratelimit-limit'), '3')
            assert.equal(r.headers.get('x-ratelimit-remaining'), '2')
            const reset = Number(r.headers.get('x-ratelimit-reset'))
            assert.ok(
              reset > Date.now() / 1000 && reset <= Date.now() / 1000 + 15 * 60 + 1,
              'a Unix time within the window',
            )
          }
          if (i === 3) {
            assert.equal(r.body.code, 'RATE_LIMITED')
            assert.ok(Number(r.headers.get('retry-after')) > 0)
          }
        }
        assert.deepEqual(statuses, [401, 401, 401, 429], 'a forged X-Forwarded-For does not evade the limit')
      } finally {
        await s.close()
      }
      const trusted = await startTestServer(dialect, {
        env: { POSTERN_RATE_LIMITS_LOGIN_IP: '1/15m', POSTERN_HTTP_TRUST_PROXY: 'true' },
      })
      try {
        const a = await login(
          trusted,
          'a@example.com',
          'whatever-pass-1',
          {},
          { 'x-forwarded-for': '203.0.113.7' },
        )
        const b = await login(
          trusted,
          'b@example.com',
          'whatever-pass-1',
          {},
          { 'x-forwarded-for': '203.0.113.8' },
        )
        assert.deepEqual(
          [a.r.status, b.r.status],
          [401, 401],
          'behind a trusted proxy each client address has its own limit',
        )
        const failed = await events(trusted, 'auth.login_failed')
        assert.deepEqual(failed.map((e) => e.ip).sort(), ['203.0.113.7', '203.0.113.8'])
      } finally {
        await trusted.close()
      }
    })

    it('keeps passwords, tokens and keys out of every log line', async () => {
      const lines: string[] = []
      const s = await startTestServer(dialect, { logLines: lines })
      try {
        const owner = await setupOwner(s)
        await login(s, 'owner@example.com', 'Wrong-Secret-Pass-42')
        const key = (await owner.post('/v1/api-keys', { name: 'ci', scope: 'admin' })).body.key as string
        await new Api(s.url).withKey(key).get('/v1/users')
        await new Api(s.url).post('/v1/auth/forgot-password', { email: 'owner@example.com' })
        const reset = await tokenFromMail(
          s,
          'owner@example.com',
          'reset_password',
          /pst_reset_[A-Za-z0-9_-]+/,
        )
        const all = lines.join('\n')
        assert.ok(lines.length > 5, 'requests were logged')
        for (const secret of [
          PASSWORD,
          'Wrong-Secret-Pass-42',
          key,
          reset,
          s.postern.setupToken ?? 'x',
          (owner.cookie ?? '=x').split('=')[1] as string,
        ])
          assert.ok(!all.includes(secret), `a secret reached the logs: ${secret.slice(0, 8)}...`)
      } finally {
        await s.close()
      }
    })
  })
}
