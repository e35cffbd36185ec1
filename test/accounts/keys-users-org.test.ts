// API keys, users (invite, claim, roles, disable) and the organisation, over real HTTP.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer } from '../helpers/server.ts'
import { addMailbox, events, PASSWORD, setupOwner, tokenFromMail } from './helpers.ts'

for (const dialect of DIALECTS) {
  describe(`API keys (${dialect})`, () => {
    it('creates keys shown once, stored hashed, accepted as Bearer and X-API-Key, and revoked', async () => {
      const s = await startTestServer(dialect)
      try {
        const owner = await setupOwner(s)
        const created = await owner.post('/v1/api-keys', { name: 'deploy', scope: 'admin' })
        assert.equal(created.status, 201, created.text)
        const key = created.body.key as string
        assert.match(key, /^pst_/)
        assert.equal(created.body.prefix, key.slice(0, 12))
        const rows = await s.postern.store.db.selectFrom('api_keys').selectAll().execute()
        assert.ok(!JSON.stringify(rows).includes(key), 'the key itself is not stored')
        const listed = await owner.get('/v1/api-keys')
        assert.ok(!listed.text.includes(key), 'the key is never shown again')
        assert.equal(listed.body.data[0].last_used_at, null)
        const bearer = new Api(s.url).withKey(key)
        assert.equal((await bearer.get('/v1/users')).status, 200)
        const xkey = await fetch(`${s.url}/v1/users`, { headers: { 'x-api-key': key } })
        assert.equal(xkey.status, 200)
        // Keys need no CSRF header: they are not ambient credentials.
        const noHeader = await fetch(`${s.url}/v1/org`, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: '{"name":"Acme 2"}',
        })
        assert.equal(noHeader.status, 200)
        assert.notEqual((await owner.get('/v1/api-keys')).body.data[0].last_used_at, null)
        assert.equal((await owner.delete(`/v1/api-keys/${created.body.id}`)).status, 204)
        const revoked = await bearer.get('/v1/users')
        assert.equal(revoked.status, 401)
        assert.equal(revoked.body.code, 'INVALID_API_KEY')
        assert.equal((await owner.delete(`/v1/api-keys/${created.body.id}`)).status, 404)
        assert.equal((await events(s, 'api_key.created')).length, 1)
        assert.equal((await events(s, 'api_key.revoked')).length, 1)
      } finally {
        await s.close()
      }
    })

    it('enforces scopes, expiry and the mailbox binding', async () => {
      const s = await startTestServer(dialect)
      try {
        const owner = await setupOwner(s)
        const me = (await owner.get('/v1/me')).body
        const send = new Api(s.url).withKey(
          (await owner.post('/v1/api-keys', { name: 's', scope: 'send' })).body.key,
        )
        const r = await send.get('/v1/users')
        assert.equal(r.status, 403)
        assert.equal(r.body.code, 'MISSING_SCOPE')
        assert.match(r.body.detail, /admin scope; this key has send/)
        const meByKey = await send.get('/v1/me')
        assert.equal(meByKey.status, 403)
        assert.match(meByKey.body.detail, /session/)
        const past = await owner.post('/v1/api-keys', {
          name: 'old',
          scope: 'read',
          expires_at: '2001-01-01T00:00:00Z',
        })
        assert.equal(past.status, 422)
        const soon = await owner.post('/v1/api-keys', {
          name: 'soon',
          scope: 'read',
          expires_at: new Date(Date.now() + 1500).toISOString(),
        })
        const reader = new Api(s.url).withKey(soon.body.key)
        assert.equal((await reader.get('/v1/org')).status, 200)
        await new Promise((r) => setTimeout(r, 1600))
        assert.equal((await reader.get('/v1/org')).status, 401, 'an expired key is refused')
        assert.equal((await owner.post('/v1/api-keys', { name: 'm', scope: 'mailbox' })).status, 422)
        assert.equal(
          (await owner.post('/v1/api-keys', { name: 'm', scope: 'mailbox', mailbox_id: 'mbx_nope' })).status,
          404,
        )
        const mbx = await addMailbox(s, me.org_id, me.id, 'team')
        assert.equal(
          (await owner.post('/v1/api-keys', { name: 'a', scope: 'admin', mailbox_id: mbx })).status,
          422,
        )
        const mk = await owner.post('/v1/api-keys', { name: 'm', scope: 'mailbox', mailbox_id: mbx })
        assert.equal(mk.status, 201)
        assert.equal(mk.body.mailbox_id, mbx)
        assert.equal((await new Api(s.url).withKey(mk.body.key).get('/v1/api-keys')).status, 403)
        const bad = await owner.post('/v1/api-keys', { name: 'x', scope: 'superuser' })
        assert.equal(bad.status, 400)
        assert.equal(bad.body.errors[0].field.startsWith('body.scope'), true)
      } finally {
        await s.close()
      }
    })
  })

  describe(`users and organisation (${dialect})`, () => {
    it('invites a user who claims with a single-use token; roles keep at least one owner', async () => {
      const s = await startTestServer(dialect)
      try {
        const owner = await setupOwner(s)
        const inv = await owner.post('/v1/users/invite', {
          email: 'Admin@Example.com',
          role: 'admin',
          name: 'Ada',
        })
        assert.equal(inv.status, 201, inv.text)
        assert.equal(inv.body.invited, true)
        assert.equal(
          (await owner.post('/v1/users/invite', { email: 'admin@example.com', role: 'member' })).status,
          409,
        )
        const token = await tokenFromMail(s, 'admin@example.com', 'invite', /pst_invite_[A-Za-z0-9_-]+/)
        const admin = new Api(s.url)
        const claim = await admin.post('/v1/auth/claim', { token, password: PASSWORD })
        assert.equal(claim.status, 200, claim.text)
        assert.equal(claim.body.user.role, 'admin')
        assert.equal(claim.body.user.email_verified, true)
        assert.equal(
          (await new Api(s.url).post('/v1/auth/claim', { token, password: PASSWORD })).status,
          422,
          'single use',
        )
        // An admin cannot make or unmake owners, nor invite one.
        const ownerId = (await owner.get('/v1/me')).body.id
        const adminId = claim.body.user.id
        assert.equal((await admin.patch(`/v1/users/${adminId}`, { role: 'owner' })).status, 403)
        assert.equal((await admin.patch(`/v1/users/${ownerId}`, { role: 'member' })).status, 403)
        assert.equal(
          (await admin.post('/v1/users/invite', { email: 'o2@example.com', role: 'owner' })).status,
          403,
        )
        // The last owner cannot step down or be disabled.
        const last = await owner.patch(`/v1/users/${ownerId}`, { role: 'admin' })
        assert.equal(last.status, 409)
        assert.equal(last.body.code, 'LAST_OWNER')
        assert.equal((await owner.patch(`/v1/users/${ownerId}`, { disabled: true })).status, 409)
        // With a second owner it works.
        assert.equal((await owner.patch(`/v1/users/${adminId}`, { role: 'owner' })).body.role, 'owner')
        assert.equal((await owner.patch(`/v1/users/${ownerId}`, { role: 'admin' })).body.role, 'admin')
        const changes = await events(s, 'user.role_changed')
        assert.deepEqual(
          changes.map((e) => JSON.parse(e.payload)),
          [
            { from: 'admin', to: 'owner' },
            { from: 'owner', to: 'admin' },
          ],
        )
        assert.equal((await owner.patch('/v1/users/usr_missing', { role: 'member' })).status, 404)
        const users = await admin.get('/v1/users')
        assert.equal(users.body.data.length, 2)
      } finally {
        await s.close()
      }
    })

    it('disabling a user ends their sessions, keys and app passwords; re-enabling allows log-in again', async () => {
      const s = await startTestServer(dialect)
      try {
        const owner = await setupOwner(s)
        await owner.post('/v1/users/invite', { email: 'bob@example.com', role: 'admin' })
        const token = await tokenFromMail(s, 'bob@example.com', 'invite', /pst_invite_[A-Za-z0-9_-]+/)
        const bob = new Api(s.url)
        const claimed = await bob.post('/v1/auth/claim', { token, password: PASSWORD })
        const bobKey = (await bob.post('/v1/api-keys', { name: 'bob', scope: 'admin' })).body.key
        const disabled = await owner.patch(`/v1/users/${claimed.body.user.id}`, { disabled: true })
        assert.equal(disabled.body.disabled, true)
        assert.equal((await bob.get('/v1/me')).status, 401)
        assert.equal((await new Api(s.url).withKey(bobKey).get('/v1/users')).status, 401)
        const login = await new Api(s.url).post('/v1/auth/login', {
          email: 'bob@example.com',
          password: PASSWORD,
        })
        assert.equal(login.status, 403)
        assert.equal(login.body.code, 'ACCOUNT_DISABLED')
        await owner.patch(`/v1/users/${claimed.body.user.id}`, { disabled: false })
        assert.equal(
          (await new Api(s.url).post('/v1/auth/login', { email: 'bob@example.com', password: PASSWORD }))
            .status,
          200,
        )
      } finally {
        await s.close()
      }
    })

    it('reads and patches the org; soft delete stops sign-in; hard delete removes its rows', async () => {
      const s = await startTestServer(dialect)
      try {
        const owner = await setupOwner(s)
        const org = await owner.get('/v1/org')
        assert.equal(org.body.name, 'Acme')
        const patched = await owner.patch('/v1/org', {
          name: 'Acme Ltd',
          settings: { locale: 'en-GB', theme: 'dark' },
        })
        assert.deepEqual(patched.body.settings, { locale: 'en-GB', theme: 'dark' })
        const merged = await owner.patch('/v1/org', { settings: { theme: null } })
        assert.deepEqual(merged.body.settings, { locale: 'en-GB' })
        const key = (await owner.post('/v1/api-keys', { name: 'k', scope: 'admin' })).body.key
        await owner.post('/v1/users/invite', { email: 'adm@example.com', role: 'admin' })
        const token = await tokenFromMail(s, 'adm@example.com', 'invite', /pst_invite_[A-Za-z0-9_-]+/)
        const admin = new Api(s.url)
        await admin.post('/v1/auth/claim', { token, password: PASSWORD })
        assert.equal((await admin.delete('/v1/org')).status, 403, 'only the owner deletes the org')
        assert.equal(
          (await new Api(s.url).withKey(key).delete('/v1/org')).status,
          403,
          'a key is not the owner',
        )
        assert.equal((await owner.delete('/v1/org')).status, 204)
        assert.equal((await owner.get('/v1/me')).status, 401)
        assert.equal((await new Api(s.url).withKey(key).get('/v1/org')).status, 401)
        assert.equal(
          (await new Api(s.url).post('/v1/auth/login', { email: 'owner@example.com', password: PASSWORD }))
            .status,
          403,
        )
        const rows = await s.postern.store.db.selectFrom('orgs').select(['id', 'deleted_at']).execute()
        assert.equal(rows.length, 1)
        assert.notEqual(rows[0]?.deleted_at, null)
      } finally {
        await s.close()
      }
      const h = await startTestServer(dialect)
      try {
        const owner = await setupOwner(h)
        const me = (await owner.get('/v1/me')).body
        await addMailbox(h, me.org_id, me.id, 'inbox')
        await owner.post('/v1/api-keys', { name: 'k', scope: 'admin' })
        assert.equal((await owner.delete('/v1/org?hard=true')).status, 204)
        const db = h.postern.store.db
        for (const table of ['orgs', 'users', 'sessions', 'api_keys', 'mailboxes', 'domains'] as const)
          assert.equal((await db.selectFrom(table).selectAll().execute()).length, 0, `${table} emptied`)
      } finally {
        await h.close()
      }
    })
  })
}
