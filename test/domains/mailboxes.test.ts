// Mailboxes and aliases over real HTTP: creation within limits, the once-shown password and
// mailbox key, visibility by scope and grant, odd but valid addresses, aliases and routing.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { resolveRecipient } from '../../src/services/mailboxes/resolve.ts'
import { PASSWORD, setupOwner, tokenFromMail } from '../accounts/helpers.ts'
import { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer } from '../helpers/server.ts'
import { verifiedDomain } from './helpers.ts'

for (const dialect of DIALECTS) {
  describe(`mailboxes (${dialect})`, () => {
    it('creates a mailbox with folders, a once-shown password and a key that reads only that mailbox', async () => {
      const s = await startTestServer(dialect)
      try {
        const api = await setupOwner(s)
        await api.post('/v1/domains', { name: 'example.com' })
        const r = await api.post('/v1/mailboxes', { domain: 'example.com', local_part: 'Ann', name: 'Ann' })
        assert.equal(r.status, 201, r.text)
        assert.equal(r.body.mailbox.address, 'ann@example.com')
        assert.match(r.body.password, /^[a-z]{4}(-[a-z]{4}){7}$/)
        assert.match(r.body.api_key.key, /^pst_/)
        const row = await s.postern.store.db
          .selectFrom('mailboxes')
          .select('password_hash')
          .where('id', '=', r.body.mailbox.id)
          .executeTakeFirstOrThrow()
        assert.match(row.password_hash ?? '', /^\$argon2id\$/)
        assert.equal(
          await s.postern.accounts.hasher.verify(row.password_hash as string, r.body.password),
          true,
          'the returned password is the login password',
        )
        const folders = await s.postern.store.db
          .selectFrom('folders')
          .select(['name', 'role', 'uidvalidity', 'uidnext'])
          .where('mailbox_id', '=', r.body.mailbox.id)
          .orderBy('name')
          .execute()
        assert.deepEqual(folders.map((f) => `${f.name}:${f.role}`).sort(), [
          'Archive:archive',
          'Drafts:drafts',
          'INBOX:inbox',
          'Junk:junk',
          'Sent:sent',
          'Trash:trash',
        ])
        assert.ok(folders.every((f) => f.uidvalidity > 0 && f.uidnext === 1))
        const given = await api.post('/v1/mailboxes', {
          domain: 'example.com',
          local_part: 'bob',
          password: 'correct-horse-battery-7',
        })
        assert.equal(given.body.password, null, 'a given password is not echoed')
        assert.equal(
          (
            await api.post('/v1/mailboxes', {
              domain: 'example.com',
              local_part: 'weak',
              password: 'password',
            })
          ).status,
          422,
        )

        const key = new Api(s.url).withKey(r.body.api_key.key)
        const own = await key.get('/v1/mailboxes')
        assert.deepEqual(
          own.body.data.map((m: { address: string }) => m.address),
          ['ann@example.com'],
        )
        assert.equal((await key.get(`/v1/mailboxes/${r.body.mailbox.id}`)).status, 200)
        assert.equal(
          (await key.get('/v1/mailboxes/bob@example.com')).status,
          404,
          'a mailbox key sees no other mailbox',
        )
        assert.equal((await key.patch(`/v1/mailboxes/${r.body.mailbox.id}`, { quota_mb: 1 })).status, 403)
        assert.equal((await key.get('/v1/domains')).status, 403)

        assert.equal(
          (await api.get('/v1/mailboxes/ANN@EXAMPLE.COM')).body.id,
          r.body.mailbox.id,
          'addresses match case-insensitively',
        )
        assert.equal(
          (await api.post('/v1/mailboxes', { domain: 'example.com', local_part: 'ANN' })).status,
          409,
        )
      } finally {
        await s.close()
      }
    })

    it('accepts odd but valid addresses and refuses invalid ones', async () => {
      const s = await startTestServer(dialect)
      try {
        const api = await setupOwner(s)
        await api.post('/v1/domains', { name: 'bücher.example', max_mailboxes: 20 })
        for (const [local, address] of [
          ['"john doe"', '"john doe"@xn--bcher-kva.example'],
          ["o'reilly", "o'reilly@xn--bcher-kva.example"],
          ['δοκιμή', 'δοκιμή@xn--bcher-kva.example'],
          ['a.b-c_d+e', 'a.b-c_d+e@xn--bcher-kva.example'],
        ] as const) {
          const r = await api.post('/v1/mailboxes', { domain: 'BÜCHER.example', local_part: local })
          assert.equal(r.status, 201, `${local}: ${r.text}`)
          assert.equal(r.body.mailbox.address, address)
        }
        for (const local of ['a..b', '.a', 'a.', 'a b', 'a@b', 'a,b', 'x'.repeat(65), 'a\r\nRCPT TO:<x@y>']) {
          const r = await api.post('/v1/mailboxes', { domain: 'bücher.example', local_part: local })
          assert.equal(r.status, 422, `${JSON.stringify(local)} must be refused: ${r.text}`)
          assert.equal(r.body.code, 'INVALID_ADDRESS')
        }
      } finally {
        await s.close()
      }
    })

    it('enforces the domain limits: count, per-mailbox quota and total quota', async () => {
      const s = await startTestServer(dialect)
      try {
        const api = await setupOwner(s)
        await api.post('/v1/domains', {
          name: 'small.example',
          max_mailboxes: 3,
          default_quota_mb: 100,
          max_quota_mb: 200,
          total_quota_mb: 350,
        })
        const over = await api.post('/v1/mailboxes', {
          domain: 'small.example',
          local_part: 'big',
          quota_mb: 201,
        })
        assert.equal(over.status, 422)
        assert.equal(over.body.code, 'QUOTA_ABOVE_MAX')
        assert.equal(
          (await api.post('/v1/mailboxes', { domain: 'small.example', local_part: 'a', quota_mb: 200 }))
            .status,
          201,
        )
        assert.equal(
          (await api.post('/v1/mailboxes', { domain: 'small.example', local_part: 'b' })).status,
          201,
        )
        const total = await api.post('/v1/mailboxes', {
          domain: 'small.example',
          local_part: 'c',
          quota_mb: 100,
        })
        assert.equal(total.status, 409)
        assert.equal(total.body.code, 'DOMAIN_QUOTA_EXCEEDED')
        assert.equal(
          (await api.post('/v1/mailboxes', { domain: 'small.example', local_part: 'c', quota_mb: 50 }))
            .status,
          201,
        )
        const count = await api.post('/v1/mailboxes', {
          domain: 'small.example',
          local_part: 'd',
          quota_mb: 0,
        })
        assert.equal(count.status, 409)
        assert.equal(count.body.code, 'DOMAIN_MAILBOX_LIMIT')
        assert.equal(
          (await api.patch('/v1/mailboxes/b@small.example', { quota_mb: 150 })).body.code,
          'DOMAIN_QUOTA_EXCEEDED',
        )
        const ok = await api.patch('/v1/mailboxes/b@small.example', {
          quota_mb: 90,
          name: 'Bee',
          tls_enforce_in: true,
          active: false,
        })
        assert.equal(ok.status, 200)
        assert.deepEqual(
          [ok.body.quota_mb, ok.body.name, ok.body.tls_enforce_in, ok.body.active],
          [90, 'Bee', true, false],
        )
        assert.equal((await api.get('/v1/domains/small.example')).body.quota_allocated_mb, 340)
        const me = (await api.get('/v1/me')).body
        assert.equal(
          (await api.patch('/v1/mailboxes/a@small.example', { owner_user_id: me.id })).body.owner_user_id,
          me.id,
        )
        const cleared = await api.patch('/v1/mailboxes/a@small.example', { owner_user_id: null })
        assert.equal(cleared.status, 200, `null clears the owner (not coerced to ""): ${cleared.text}`)
        assert.equal(cleared.body.owner_user_id, null)
        assert.equal(
          (await api.post('/v1/mailboxes', { domain: 'nope.example', local_part: 'x' })).status,
          404,
        )
      } finally {
        await s.close()
      }
    })

    it('changes passwords, grants members access, and deletes mailboxes', async () => {
      const s = await startTestServer(dialect)
      try {
        const api = await setupOwner(s)
        await api.post('/v1/domains', { name: 'team.example' })
        const m = (await api.post('/v1/mailboxes', { domain: 'team.example', local_part: 'support' })).body
          .mailbox
        await api.post('/v1/mailboxes', { domain: 'team.example', local_part: 'private' })
        await api.patch(`/v1/mailboxes/${m.id}`, { password: 'a-new-Strong-password-1' })
        const row = await s.postern.store.db
          .selectFrom('mailboxes')
          .select('password_hash')
          .where('id', '=', m.id)
          .executeTakeFirstOrThrow()
        assert.equal(
          await s.postern.accounts.hasher.verify(row.password_hash as string, 'a-new-Strong-password-1'),
          true,
        )
        const audit = await s.postern.store.db
          .selectFrom('events')
          .select('payload')
          .where('type', '=', 'mailbox.updated')
          .execute()
        assert.ok(!JSON.stringify(audit).includes('a-new-Strong-password-1'), 'no password in the audit log')

        await api.post('/v1/users/invite', { email: 'mem@example.com', role: 'member' })
        const token = await tokenFromMail(s, 'mem@example.com', 'invite', /pst_invite_[A-Za-z0-9_-]+/)
        const member = new Api(s.url)
        const claimed = await member.post('/v1/auth/claim', { token, password: PASSWORD })
        assert.deepEqual(
          (await member.get('/v1/mailboxes')).body.data,
          [],
          'a member sees no mailbox until granted',
        )
        const granted = await api.post(`/v1/mailboxes/${m.id}/grants`, { user_id: claimed.body.user.id })
        assert.deepEqual(
          granted.body.data.map((g: { email: string }) => g.email),
          ['mem@example.com'],
        )
        assert.deepEqual(
          (await member.get('/v1/mailboxes')).body.data.map((x: { address: string }) => x.address),
          ['support@team.example'],
        )
        assert.equal((await member.get('/v1/mailboxes/private@team.example')).status, 404)
        assert.equal(
          (await member.post('/v1/me/app-passwords', { name: 'phone', mailbox_id: m.id })).status,
          201,
        )
        assert.equal((await api.delete(`/v1/mailboxes/${m.id}/grants/${claimed.body.user.id}`)).status, 204)
        assert.deepEqual((await member.get('/v1/mailboxes')).body.data, [])
        assert.deepEqual(
          (await member.get('/v1/me/app-passwords')).body.data,
          [],
          'losing access revokes the app passwords',
        )
        assert.equal((await api.post(`/v1/mailboxes/${m.id}/grants`, { user_id: 'usr_other' })).status, 404)

        assert.equal((await api.delete(`/v1/mailboxes/${m.id}`)).status, 204)
        assert.equal((await api.get(`/v1/mailboxes/${m.id}`)).status, 404)
        assert.equal(
          (
            await s.postern.store.db
              .selectFrom('folders')
              .selectAll()
              .where('mailbox_id', '=', m.id)
              .execute()
          ).length,
          0,
        )
      } finally {
        await s.close()
      }
    })
  })

  describe(`aliases (${dialect})`, () => {
    it('creates aliases and catch-alls within limits, never over a mailbox, and routes by them', async () => {
      const s = await startTestServer(dialect)
      try {
        const api = await setupOwner(s)
        await verifiedDomain(api, s.dns, 'corp.example')
        await api.patch('/v1/domains/corp.example', { max_aliases: 3 })
        const ann = (await api.post('/v1/mailboxes', { domain: 'corp.example', local_part: 'ann' })).body
          .mailbox
        const sales = await api.post('/v1/aliases', {
          address: 'Sales@corp.example',
          targets: ['ANN@corp.example', 'partner@elsewhere.example'],
        })
        assert.equal(sales.status, 201, sales.text)
        assert.deepEqual(sales.body.targets, ['ann@corp.example', 'partner@elsewhere.example'])
        const missingTarget = await api.post('/v1/aliases', {
          address: 'x@corp.example',
          targets: ['ghost@corp.example'],
        })
        assert.equal(missingTarget.status, 422, 'a local target must be a mailbox')
        assert.equal(missingTarget.body.errors[0].field, 'targets.0')
        assert.equal(
          (
            await api.post('/v1/aliases', {
              address: 'ann@corp.example',
              targets: ['partner@elsewhere.example'],
            })
          ).body.code,
          'ADDRESS_TAKEN',
        )
        assert.equal(
          (await api.post('/v1/mailboxes', { domain: 'corp.example', local_part: 'sales' })).body.code,
          'ADDRESS_TAKEN',
        )
        assert.equal(
          (await api.post('/v1/aliases', { address: 'x@notmine.example', targets: ['ann@corp.example'] }))
            .status,
          404,
        )
        assert.equal(
          (
            await api.post('/v1/aliases', {
              address: 'bad address@corp.example',
              targets: ['ann@corp.example'],
            })
          ).status,
          422,
        )
        const catchAll = await api.post('/v1/aliases', {
          address: '@corp.example',
          targets: ['ann@corp.example'],
        })
        assert.equal(catchAll.status, 201)
        assert.equal(catchAll.body.catch_all, true)
        await api.post('/v1/aliases', { address: 'info@corp.example', targets: ['ann@corp.example'] })
        assert.equal(
          (await api.post('/v1/aliases', { address: 'more@corp.example', targets: ['ann@corp.example'] }))
            .body.code,
          'DOMAIN_ALIAS_LIMIT',
        )

        const route = (a: string) => resolveRecipient(s.postern.store, a)
        assert.equal((await route('Ann@Corp.Example')).kind, 'mailbox')
        const viaPlus = await route('ann+newsletters@corp.example')
        assert.equal(
          viaPlus.kind === 'mailbox' && viaPlus.mailbox_id,
          ann.id,
          'plus-addressing reaches the mailbox',
        )
        const alias = await route('sales+x@corp.example')
        assert.equal(alias.kind === 'alias' && alias.alias_id, sales.body.id)
        const caught = await route('whoever@corp.example')
        assert.equal(caught.kind === 'alias' && caught.alias_id, catchAll.body.id)
        await api.patch(`/v1/aliases/${catchAll.body.id}`, { active: false })
        assert.deepEqual(await route('whoever@corp.example'), { kind: 'none', reason: 'unknown_recipient' })
        assert.deepEqual(await route('not an address'), { kind: 'none', reason: 'invalid' })

        const def = await api.post(`/v1/aliases/${sales.body.id}/default`)
        assert.equal(def.status, 200)
        const user = await s.postern.store.db
          .selectFrom('users')
          .select('default_alias_id')
          .executeTakeFirstOrThrow()
        assert.equal(user.default_alias_id, sales.body.id)
        assert.equal((await api.post(`/v1/aliases/${catchAll.body.id}/default`)).status, 422)
        assert.equal((await api.delete(`/v1/aliases/${sales.body.id}`)).status, 204)
        assert.equal(
          (await s.postern.store.db.selectFrom('users').select('default_alias_id').executeTakeFirstOrThrow())
            .default_alias_id,
          null,
        )
        assert.deepEqual(
          (await api.get('/v1/aliases?domain=corp.example')).body.data
            .map((a: { address: string }) => a.address)
            .sort(),
          ['@corp.example', 'info@corp.example'],
        )
      } finally {
        await s.close()
      }
    })
  })
}
