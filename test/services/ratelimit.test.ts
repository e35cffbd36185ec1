import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { loadConfig } from '../../src/config/load.ts'
import { ServiceError } from '../../src/services/errors.ts'
import {
  type AuthThrottleSettings,
  authThrottleSettings,
  createAuthThrottle,
} from '../../src/services/ratelimit/auth-throttle.ts'
import {
  createRateLimiter,
  type RateLimitDecision,
  rateLimitedError,
  rateLimitHeaders,
} from '../../src/services/ratelimit/limiter.ts'
import { parseRate, type RateLimitRule, rulesFromConfig } from '../../src/services/ratelimit/rules.ts'
import { manualClock } from '../../src/time/clock.ts'
import { runChild } from '../helpers/child.ts'
import { DIALECTS, testDatabase } from '../helpers/dialects.ts'
import { openTestStore, type TestStore } from '../helpers/store.ts'

const MIN = 60_000

describe('rate rules', () => {
  it('parses <count>/<window> with units s, m, h, d', () => {
    assert.deepEqual(parseRate('10/15m'), { limit: 10, windowMs: 15 * MIN })
    assert.deepEqual(parseRate('20/60s'), { limit: 20, windowMs: 60_000 })
    assert.deepEqual(parseRate('5/1h'), { limit: 5, windowMs: 3_600_000 })
    assert.deepEqual(parseRate('100/2d'), { limit: 100, windowMs: 2 * 86_400_000 })
    assert.deepEqual(parseRate(' 3/1h '), { limit: 3, windowMs: 3_600_000 })
  })

  it('refuses malformed and zero rates', () => {
    for (const bad of [
      '',
      '10',
      '10/',
      '/15m',
      '10/15',
      '10/15x',
      '10 / 15m',
      '-1/1m',
      '1.5/1m',
      '0/1m',
      '1/0s',
    ])
      assert.throws(() => parseRate(bad), /invalid rate/, bad)
  })

  it('builds every rule from the config defaults, and names the key that is wrong', () => {
    const { config } = loadConfig({ env: {}, args: [] })
    const rules = rulesFromConfig(config)
    assert.deepEqual(rules.login_ip, { name: 'login_ip', limit: 10, windowMs: 15 * MIN })
    assert.deepEqual(rules.send_ip, { name: 'send_ip', limit: 20, windowMs: 60_000 })
    assert.deepEqual(rules.forward_alias, { name: 'forward_alias', limit: 100, windowMs: 60 * MIN })
    assert.deepEqual(rules.tracking_message, { name: 'tracking_message', limit: 200, windowMs: 60 * MIN })
    assert.equal(Object.keys(rules).length, 13)
    for (const [name, rule] of Object.entries(rules)) assert.equal(rule.name, name)
    const broken = { ...config, rate_limits: { ...config.rate_limits, setup: '0/1m' } }
    assert.throws(() => rulesFromConfig(broken), /rate_limits\.setup: invalid rate/)
  })
})

describe('rate-limit headers and error', () => {
  const refused: RateLimitDecision = {
    allowed: false,
    limit: 10,
    remaining: 0,
    resetAt: 1_000_000,
    resetInS: 840,
    retryAfterS: 840,
  }

  it('gives limit, remaining and the Unix time of the reset, and Retry-After only when refused', () => {
    assert.deepEqual(rateLimitHeaders({ ...refused, allowed: true, remaining: 3, retryAfterS: 0 }), {
      'X-RateLimit-Limit': '10',
      'X-RateLimit-Remaining': '3',
      'X-RateLimit-Reset': '1000',
    })
    assert.deepEqual(rateLimitHeaders(refused), {
      'X-RateLimit-Limit': '10',
      'X-RateLimit-Remaining': '0',
      'X-RateLimit-Reset': '1000',
      'Retry-After': '840',
    })
  })

  it('builds a rate_limited ServiceError saying what and when', () => {
    const e = rateLimitedError(refused, 'log-in attempts from this address')
    assert.ok(e instanceof ServiceError)
    assert.equal(e.kind, 'rate_limited')
    assert.equal(e.code, 'RATE_LIMITED')
    assert.equal(e.retryAfter, 840)
    assert.equal(e.message, 'Too many log-in attempts from this address; try again in 14 minutes.')
    assert.match(rateLimitedError({ ...refused, retryAfterS: 1 }, 'x').message, /in 1 second\.$/)
    assert.match(rateLimitedError({ ...refused, retryAfterS: 45 }, 'x').message, /in 45 seconds\.$/)
    assert.match(rateLimitedError({ ...refused, retryAfterS: 3 * 3600 }, 'x').message, /in 3 hours\.$/)
  })
})

for (const dialect of DIALECTS) {
  describe(`rate limiter (${dialect})`, () => {
    let t: TestStore
    before(async () => {
      t = await openTestStore(dialect)
    })
    after(async () => {
      await t.close()
    })
    const setup = () => {
      const clock = manualClock()
      return { clock, limiter: createRateLimiter({ store: t.store, clock }) }
    }
    const rule = (name: string, limit: number, windowMs = 15 * MIN): RateLimitRule => ({
      name,
      limit,
      windowMs,
    })

    it('counts remaining down, then refuses with a retry-after until the window resets', async () => {
      const { clock, limiter } = setup()
      const r = rule('countdown', 3)
      const start = clock.now()
      for (const remaining of [2, 1, 0]) {
        const d = await limiter.hit(r, '192.0.2.1')
        assert.deepEqual(d, {
          allowed: true,
          limit: 3,
          remaining,
          resetAt: start + 15 * MIN,
          resetInS: 900,
          retryAfterS: 0,
        })
        assert.equal(typeof d.resetAt, 'number')
      }
      clock.advance(60_000)
      const refused = await limiter.hit(r, '192.0.2.1')
      assert.deepEqual(refused, {
        allowed: false,
        limit: 3,
        remaining: 0,
        resetAt: start + 15 * MIN,
        resetInS: 840,
        retryAfterS: 840,
      })
      clock.advance(839_500)
      assert.equal((await limiter.hit(r, '192.0.2.1')).retryAfterS, 1, 'rounded up, never 0 when refused')
    })

    it('starts a new window after windowMs', async () => {
      const { clock, limiter } = setup()
      const r = rule('window', 2, 10_000)
      await limiter.hit(r, 'a')
      await limiter.hit(r, 'a')
      assert.equal((await limiter.hit(r, 'a')).allowed, false)
      clock.advance(9_999)
      assert.equal((await limiter.hit(r, 'a')).allowed, false, 'refused hits do not free a slot')
      clock.advance(1)
      const d = await limiter.hit(r, 'a')
      assert.equal(d.allowed, true)
      assert.equal(d.remaining, 1)
      assert.equal(d.resetAt, clock.now() + 10_000, 'the new window starts at this hit')
    })

    it('hitAll refuses when either rule is exhausted and returns the most restrictive decision', async () => {
      const { limiter } = setup()
      const ip = rule('all_ip', 5)
      const email = rule('all_email', 2, 60 * MIN)
      const both = [
        { rule: ip, subject: '192.0.2.9' },
        { rule: email, subject: 'Ann@Example.test' },
      ]
      let d = await limiter.hitAll(both)
      assert.equal(d.allowed, true)
      assert.equal(d.limit, 2, 'the one with fewer remaining')
      assert.equal(d.remaining, 1)
      await limiter.hitAll(both)
      d = await limiter.hitAll(both)
      assert.equal(d.allowed, false, 'email rule exhausted')
      assert.equal(d.limit, 2)
      assert.equal(d.retryAfterS, 3600)
      // Another email from the same address: the address rule still counts every hit.
      const other = [
        { rule: ip, subject: '192.0.2.9' },
        { rule: email, subject: 'bob@example.test' },
      ]
      assert.equal((await limiter.hitAll(other)).allowed, true)
      assert.equal((await limiter.hitAll(other)).allowed, true, 'address: 5 of 5')
      d = await limiter.hitAll([
        { rule: ip, subject: '192.0.2.9' },
        { rule: email, subject: 'cid@example.test' },
      ])
      assert.equal(d.allowed, false, 'address rule exhausted, email rule fresh')
      assert.equal(d.limit, 5)
      assert.equal(d.retryAfterS, 900)
      await assert.rejects(limiter.hitAll([]), /at least one/)
    })

    it('keeps subjects and rules independent; subjects are case-insensitive and long ones bounded', async () => {
      const { limiter } = setup()
      const r = rule('indep', 1)
      assert.equal((await limiter.hit(r, 'ann@example.test')).allowed, true)
      assert.equal((await limiter.hit(r, 'ANN@example.test')).allowed, false, 'same subject, other case')
      assert.equal((await limiter.hit(r, 'bob@example.test')).allowed, true)
      assert.equal((await limiter.hit(rule('indep2', 1), 'ann@example.test')).allowed, true)
      const long = 'x'.repeat(5000)
      assert.equal((await limiter.hit(r, long)).allowed, true)
      assert.equal((await limiter.hit(r, long.toUpperCase())).allowed, false)
      assert.equal((await limiter.hit(r, `${long}y`)).allowed, true)
      const keys = await t.store.db
        .selectFrom('rate_limits')
        .select('key')
        .where('key', 'like', 'indep:%')
        .execute()
      const names = keys.map((k) => k.key).sort()
      assert.equal(names.length, 4)
      assert.deepEqual(names.slice(0, 2), ['indep:ann@example.test', 'indep:bob@example.test'])
      for (const k of names.slice(2)) assert.match(k, /^indep:sha256:[0-9a-f]{64}$/)
    })

    it('reset forgets one counter', async () => {
      const { limiter } = setup()
      const r = rule('reset', 1)
      await limiter.hit(r, 'a')
      await limiter.hit(r, 'b')
      assert.equal((await limiter.hit(r, 'a')).allowed, false)
      await limiter.reset(r, 'A')
      assert.equal((await limiter.hit(r, 'a')).allowed, true)
      assert.equal((await limiter.hit(r, 'b')).allowed, false, 'other subject untouched')
    })

    it('prune deletes only expired rows', async () => {
      await t.store.db.deleteFrom('rate_limits').execute()
      const { clock, limiter } = setup()
      await limiter.hit(rule('short', 5, 1_000), 'a')
      await limiter.hit(rule('short', 5, 1_000), 'b')
      await limiter.hit(rule('long', 5, 60 * MIN), 'a')
      assert.equal(await limiter.prune(), 0)
      clock.advance(1_000)
      const n = await limiter.prune()
      assert.equal(n, 2)
      assert.equal(typeof n, 'number')
      const left = await t.store.db.selectFrom('rate_limits').select('key').execute()
      assert.deepEqual(
        left.map((r) => r.key),
        ['long:a'],
      )
      assert.equal(await limiter.prune(), 0)
    })

    it('gives exactly the limit across two processes hammering one key', async () => {
      const tdb = testDatabase(dialect)
      const shared = await openTestStore(dialect, tdb.env) // creates and migrates the shared database
      try {
        const env = { ...tdb.env, POSTERN_LOG_LEVEL: 'silent' }
        const fixture = new URL('../fixtures/rate-hitter.ts', import.meta.url)
        const kids = [
          runChild(fixture, ['hit', '30', '25'], env),
          runChild(fixture, ['hit', '30', '25'], env),
        ]
        await Promise.all(kids.map((k) => k.waitFor(/ready/)))
        for (const k of kids) k.proc.stdin?.end('go\n')
        for (const k of kids) assert.equal(await k.exited, 0, k.stderr())
        const allowed = kids.map((k) => Number(k.stdout().match(/allowed (\d+)/)?.[1]))
        assert.equal(allowed[0]! + allowed[1]!, 25, `allowed per process: ${allowed.join(', ')}`)
        const row = await shared.store.db
          .selectFrom('rate_limits')
          .selectAll()
          .where('key', '=', 'hammer:shared-key')
          .executeTakeFirstOrThrow()
        assert.equal(row.count, 60, 'every hit counted')
      } finally {
        await shared.close()
        await tdb.drop()
      }
    })
  })

  describe(`auth throttle (${dialect})`, () => {
    let t: TestStore
    before(async () => {
      t = await openTestStore(dialect)
    })
    after(async () => {
      await t.close()
    })
    const settings: AuthThrottleSettings = {
      slowdownAfter: 3,
      lockoutAfter: 10,
      lockoutIpAfter: 50,
      windowMs: 15 * MIN,
      lockMs: 15 * MIN,
    }
    const setup = (over: Partial<AuthThrottleSettings> = {}) => {
      const clock = manualClock()
      return {
        clock,
        throttle: createAuthThrottle({ store: t.store, clock, settings: { ...settings, ...over } }),
      }
    }

    it('reads its settings from the config', () => {
      const { config } = loadConfig({ env: {}, args: [] })
      assert.deepEqual(authThrottleSettings(config), settings)
    })

    it('delays nothing before slowdownAfter failures, then 250 ms doubling, capped at 3 s', async () => {
      const { throttle } = setup({ lockoutAfter: 100 })
      const keys = { account: 'slow@example.test', ip: '198.51.100.1' }
      assert.deepEqual(await throttle.check(keys), { locked: false, retryAfterS: 0, delayMs: 0 })
      const delays: number[] = []
      for (let i = 0; i < 9; i++) {
        delays.push((await throttle.recordFailure(keys)).delayMs)
        assert.equal((await throttle.check(keys)).delayMs, delays.at(-1), 'check agrees')
      }
      assert.deepEqual(delays, [0, 0, 250, 500, 1000, 2000, 3000, 3000, 3000])
    })

    it('locks the account after lockoutAfter failures and unlocks when the lock has passed', async () => {
      const { clock, throttle } = setup()
      const keys = { account: 'Locked@Example.test', ip: '198.51.100.2' }
      for (let i = 1; i < 10; i++)
        assert.equal((await throttle.recordFailure(keys)).locked, false, `failure ${i}`)
      const s = await throttle.recordFailure(keys)
      assert.equal(s.locked, true)
      assert.equal(s.retryAfterS, 15 * 60)
      clock.advance(5 * MIN)
      const c = await throttle.check({ account: 'locked@example.test' })
      assert.equal(c.locked, true, 'the account is locked whatever the address or case')
      assert.equal(c.retryAfterS, 10 * 60)
      assert.equal((await throttle.recordFailure(keys)).retryAfterS, 10 * 60, 'failures do not extend a lock')
      await throttle.recordSuccess(keys)
      assert.equal((await throttle.check(keys)).locked, true, 'a success does not lift a live lock')
      assert.equal((await throttle.check({ ip: '198.51.100.2' })).locked, false, 'the address is not locked')
      clock.advance(10 * MIN)
      assert.deepEqual(await throttle.check(keys), { locked: false, retryAfterS: 0, delayMs: 0 })
      const next = await throttle.recordFailure({ account: keys.account })
      assert.deepEqual(
        next,
        { locked: false, retryAfterS: 0, delayMs: 0 },
        'a lapsed lock starts a new count',
      )
    })

    it('forgets failures once the window has passed', async () => {
      const { clock, throttle } = setup()
      const keys = { account: 'window@example.test' }
      for (let i = 0; i < 9; i++) await throttle.recordFailure(keys)
      clock.advance(15 * MIN)
      assert.equal((await throttle.check(keys)).delayMs, 0)
      assert.equal((await throttle.recordFailure(keys)).locked, false)
      const row = await t.store.db
        .selectFrom('auth_failures')
        .selectAll()
        .where('key', '=', 'account:window@example.test')
        .executeTakeFirstOrThrow()
      assert.equal(row.failures, 1)
      assert.equal(row.first_failed_at, clock.now())
    })

    it('a success clears the account counter but the address keeps counting', async () => {
      const { throttle } = setup({ lockoutIpAfter: 8 })
      const keys = { account: 'ok@example.test', ip: '::ffff:198.51.100.3' }
      for (let i = 0; i < 5; i++) await throttle.recordFailure(keys)
      assert.equal((await throttle.check({ account: keys.account })).delayMs, 1000)
      await throttle.recordSuccess(keys)
      assert.equal((await throttle.check({ account: keys.account })).delayMs, 0, 'account cleared')
      assert.equal((await throttle.check({ ip: '198.51.100.3' })).delayMs, 1000, 'address kept (mapped IPv4)')
      for (let i = 0; i < 2; i++) await throttle.recordFailure(keys)
      const s = await throttle.recordFailure(keys)
      assert.equal(s.locked, true, 'address locked at 8 failures although the account has 3')
      const rows = await t.store.db
        .selectFrom('auth_failures')
        .select(['key', 'failures'])
        .where('key', 'in', ['account:ok@example.test', 'ip:198.51.100.3'])
        .orderBy('key')
        .execute()
      assert.deepEqual(
        rows.map((r) => ({ ...r })),
        [
          { key: 'account:ok@example.test', failures: 3 },
          { key: 'ip:198.51.100.3', failures: 8 },
        ],
      )
    })

    it('locks an address independently of any account', async () => {
      const { clock, throttle } = setup({ lockoutIpAfter: 5 })
      const ip = '2001:DB8::1'
      for (let i = 0; i < 4; i++)
        assert.equal((await throttle.recordFailure({ account: `user${i}@example.test`, ip })).locked, false)
      const s = await throttle.recordFailure({ account: 'user4@example.test', ip })
      assert.equal(s.locked, true)
      assert.equal(s.retryAfterS, 900)
      const c = await throttle.check({ account: 'fresh@example.test', ip: '2001:db8::1' })
      assert.equal(c.locked, true, 'any account from that address')
      assert.equal((await throttle.check({ account: 'user0@example.test', ip: '2001:db8::2' })).locked, false)
      clock.advance(15 * MIN)
      assert.equal((await throttle.check({ ip })).locked, false)
    })

    it('ignores missing keys, and prune deletes only rows that no longer count', async () => {
      await t.store.db.deleteFrom('auth_failures').execute()
      const { clock, throttle } = setup({ lockoutAfter: 2, windowMs: 10 * MIN, lockMs: 30 * MIN })
      assert.deepEqual(await throttle.recordFailure({ account: null, ip: '' }), {
        locked: false,
        retryAfterS: 0,
        delayMs: 0,
      })
      await throttle.recordFailure({ account: 'a@example.test' })
      await throttle.recordFailure({ account: 'locked@example.test' })
      await throttle.recordFailure({ account: 'locked@example.test' })
      clock.advance(5 * MIN)
      await throttle.recordFailure({ account: 'b@example.test' })
      assert.equal(await throttle.prune(), 0)
      clock.advance(5 * MIN)
      const n = await throttle.prune()
      assert.equal(n, 1, 'a: window over; locked: still locked; b: window running')
      assert.equal(typeof n, 'number')
      clock.advance(20 * MIN)
      assert.equal(await throttle.prune(), 2)
      assert.equal((await t.store.db.selectFrom('auth_failures').select('key').execute()).length, 0)
    })

    it('counts every failure from two processes at once', async () => {
      const tdb = testDatabase(dialect)
      const shared = await openTestStore(dialect, tdb.env)
      try {
        const env = { ...tdb.env, POSTERN_LOG_LEVEL: 'silent' }
        const fixture = new URL('../fixtures/rate-hitter.ts', import.meta.url)
        const kids = [runChild(fixture, ['fail', '30'], env), runChild(fixture, ['fail', '30'], env)]
        await Promise.all(kids.map((k) => k.waitFor(/ready/)))
        for (const k of kids) k.proc.stdin?.end('go\n')
        for (const k of kids) assert.equal(await k.exited, 0, k.stderr())
        const rows = await shared.store.db
          .selectFrom('auth_failures')
          .select(['key', 'failures'])
          .orderBy('key')
          .execute()
        assert.deepEqual(
          rows.map((r) => ({ ...r })),
          [
            { key: 'account:victim@example.test', failures: 60 },
            { key: 'ip:192.0.2.7', failures: 60 },
          ],
        )
      } finally {
        await shared.close()
        await tdb.drop()
      }
    })
  })
}
