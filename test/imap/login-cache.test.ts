// Mail-client log-ins remember a verified password for a while (services/mail-login/
// verified-cache.ts): reconnecting costs no Argon2id verification, a wrong password always
// does, and a changed password makes the old one fail at once.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createVerifiedLogins } from '../../src/services/mail-login/verified-cache.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { imapFixture, PASSWORD, RawImap } from './helpers.ts'

describe('verified log-in cache (unit)', () => {
  it('matches only the same stored hash and secret, within the TTL, and stays bounded', () => {
    let now = 1_000
    const c = createVerifiedLogins({ ttlMs: 60_000, now: () => now, max: 3 })
    c.add('$argon2id$a', 'secret-1')
    assert.equal(c.has('$argon2id$a', 'secret-1'), true)
    assert.equal(c.has('$argon2id$a', 'secret-2'), false)
    assert.equal(
      c.has('$argon2id$b', 'secret-1'),
      false,
      'a new stored hash (password changed) never matches',
    )
    now += 60_000
    assert.equal(c.has('$argon2id$a', 'secret-1'), false, 'expired')
    for (const s of ['1', '2', '3', '4']) c.add('$h', s)
    assert.equal(c.has('$h', '1'), false, 'the oldest is dropped beyond max')
    assert.equal(c.has('$h', '4'), true)
    const off = createVerifiedLogins({ ttlMs: 0, now: () => now })
    off.add('$h', 'x')
    assert.equal(off.has('$h', 'x'), false, 'a TTL of 0 turns it off')
  })
})

for (const dialect of DIALECTS) {
  describe(`IMAP log-in cache (${dialect})`, () => {
    it('verifies a password once across reconnects, and never remembers a wrong or replaced one', async () => {
      const f = await imapFixture(dialect)
      const hasher = f.s.postern.accounts.hasher
      const login = async (password: string) => {
        const { c } = await RawImap.open(f.imapPort)
        try {
          return await c.cmd('l', `LOGIN "${f.ann.address}" "${password}"`)
        } finally {
          c.close()
        }
      }
      try {
        const v0 = hasher.verifications
        for (let i = 0; i < 4; i++) assert.match(await login(PASSWORD), /^l OK/m)
        assert.equal(hasher.verifications - v0, 1, 'one verification for four log-ins')
        const v1 = hasher.verifications
        assert.match(await login('not-the-password'), /^l NO/m)
        assert.match(await login('not-the-password'), /^l NO/m)
        assert.equal(hasher.verifications - v1, 2, 'each wrong password is verified')
        const r = await f.api.patch(`/v1/mailboxes/${f.ann.id}`, { password: 'a-brand-new-passphrase-7' })
        assert.equal(r.status, 200)
        assert.match(await login(PASSWORD), /^l NO/m, 'the old password fails at once')
        assert.match(await login('a-brand-new-passphrase-7'), /^l OK/m)
      } finally {
        await f.close()
      }
    })
  })
}
