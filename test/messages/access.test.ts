// Who reads which mail (services/messages/access.ts) over real HTTP: a mailbox key only its
// mailbox; sessions only owned or granted mailboxes, admins and owners included; org-wide
// read keys read but do not write; send keys read nothing; another org's ids are 404
// everywhere, in paths, query strings and bodies.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import type { TestServer } from '../helpers/server.ts'
import { inviteAndClaim, PASSWORD } from '../security/orgs.ts'
import {
  createMailbox,
  deliver,
  type MailOrg,
  mailOrg,
  startMailServer,
  type TestMailbox,
  textMail,
} from './fixtures.ts'

for (const dialect of DIALECTS) {
  describe(`who reads which mail (${dialect})`, () => {
    let s: TestServer
    let org: MailOrg
    let mine: TestMailbox
    let team: TestMailbox
    let mineMsg: string
    let teamMsg: string
    let teamThread: string

    before(async () => {
      ;({ s } = await startMailServer(dialect, { POSTERN_AUTH_SIGNUP: 'open' }))
      org = await mailOrg(s)
      mine = await org.mailbox('mine')
      team = await org.mailbox('team', { owned: false })
      mineMsg = await deliver(s, mine, textMail({ subject: 'Mine' }))
      teamMsg = await deliver(s, team, textMail({ subject: 'Team' }))
      teamThread = (await org.api.withKey(team.key).get(`/v1/messages/${teamMsg}`)).body.thread_id
    })
    after(() => s.close())

    it('a mailbox key reaches only its mailbox', async () => {
      const key = org.api.withKey(mine.key)
      assert.equal((await key.get(`/v1/messages/${mineMsg}`)).status, 200)
      for (const path of [
        `/v1/messages/${teamMsg}`,
        `/v1/messages/${teamMsg}/raw`,
        `/v1/messages/${teamMsg}/attachments/0`,
        `/v1/messages?mailbox=${team.id}`,
        `/v1/messages?mailbox=${team.address}`,
        `/v1/threads/${teamThread}`,
        `/v1/threads?mailbox=${team.id}`,
        `/v1/search?q=team&mailbox=${team.id}`,
        `/v1/labels?mailbox=${team.id}`,
        `/v1/mailboxes/${team.id}/folders`,
      ]) {
        const r = await key.get(path)
        assert.equal(r.status, 404, `${path}: ${r.status} ${r.text}`)
      }
      assert.equal((await key.patch(`/v1/messages/${teamMsg}`, { seen: true })).status, 404)
      assert.equal((await key.delete(`/v1/messages/${teamMsg}`)).status, 404)
      assert.equal((await key.patch(`/v1/threads/${teamThread}`, { trash: true })).status, 404)
      assert.equal((await key.post(`/v1/mailboxes/${team.id}/folders`, { name: 'X' })).status, 404)
      const bulk = await key.post('/v1/threads/bulk', { ids: [teamThread], action: { read: true } })
      assert.equal(bulk.body.results[0].status, 404)
      const list = await key.get('/v1/messages')
      assert.deepEqual(
        list.body.data.map((m: { id: string }) => m.id),
        [mineMsg],
      )
      assert.equal(
        (await org.api.withKey(team.key).get(`/v1/messages/${teamMsg}`)).body.seen,
        false,
        'unchanged',
      )
    })

    it('sessions read only owned or granted mailboxes, whatever their role', async () => {
      // The owner owns `mine` but not `team`.
      assert.equal((await org.api.get(`/v1/messages/${mineMsg}`)).status, 200)
      assert.equal(
        (await org.api.get(`/v1/messages/${teamMsg}`)).status,
        404,
        'the owner role alone reads no mail',
      )
      assert.equal((await org.api.get(`/v1/mailboxes/${team.id}`)).status, 200, 'but manages the mailbox')

      const admin = await inviteAndClaim(s, org.api, 'admin@mail.example', 'admin')
      assert.equal(
        (await admin.api.get(`/v1/mailboxes/${team.id}`)).status,
        200,
        'an admin sees the settings',
      )
      for (const path of [
        `/v1/messages/${teamMsg}`,
        `/v1/messages/${teamMsg}/raw`,
        `/v1/messages?mailbox=${team.id}`,
        `/v1/threads/${teamThread}`,
        `/v1/mailboxes/${team.id}/folders`,
        `/v1/labels?mailbox=${team.id}`,
      ])
        assert.equal((await admin.api.get(path)).status, 404, `an admin without a grant: ${path}`)
      for (const path of ['/v1/messages', '/v1/threads', '/v1/labels', '/v1/search?q=team'])
        assert.deepEqual((await admin.api.get(path)).body.data, [], `an admin without a grant: ${path}`)
      assert.equal((await admin.api.patch(`/v1/messages/${teamMsg}`, { seen: true })).status, 404)

      const member = await inviteAndClaim(s, org.api, 'member@mail.example', 'member')
      assert.equal((await member.api.get(`/v1/messages/${teamMsg}`)).status, 404)
      const grant = await org.api.post(`/v1/mailboxes/${team.id}/grants`, { user_id: member.userId })
      assert.equal(grant.status, 200, grant.text)
      const granted = await member.api.get('/v1/messages')
      assert.deepEqual(
        granted.body.data.map((m: { id: string }) => m.id),
        [teamMsg],
        'the one granted mailbox',
      )
      const flagged = await member.api.patch(`/v1/messages/${teamMsg}`, { flagged: true })
      assert.equal(flagged.status, 200, flagged.text)
      assert.equal(
        (await admin.api.get(`/v1/messages/${teamMsg}`)).status,
        404,
        'still no grant for the admin',
      )
      await org.api.delete(`/v1/mailboxes/${team.id}/grants/${member.userId}`)
      assert.equal((await member.api.get(`/v1/messages/${teamMsg}`)).status, 404, 'revoked')
    })

    it('org-wide keys: read reads every mailbox and writes nothing, write writes, send reads nothing', async () => {
      const make = async (scope: string) =>
        org.api.withKey((await org.api.post('/v1/api-keys', { name: scope, scope })).body.key)
      const read = await make('read')
      const write = await make('write')
      const send = await make('send')
      const adminKey = await make('admin')
      for (const api of [read, write, adminKey]) {
        assert.equal((await api.get(`/v1/messages/${teamMsg}`)).status, 200)
        assert.equal((await api.get(`/v1/messages/${mineMsg}`)).status, 200)
        assert.equal((await api.get('/v1/messages')).body.code, 'MAILBOX_REQUIRED')
      }
      const denied = await read.patch(`/v1/messages/${teamMsg}`, { seen: true })
      assert.equal(denied.status, 403)
      assert.equal(denied.body.code, 'MISSING_SCOPE')
      assert.equal((await read.delete(`/v1/messages/${teamMsg}`)).status, 403)
      assert.equal((await read.post(`/v1/labels?mailbox=${team.id}`, { name: 'x' })).status, 403)
      assert.equal((await write.patch(`/v1/messages/${teamMsg}`, { answered: true })).status, 200)
      assert.equal((await send.get(`/v1/messages/${teamMsg}`)).status, 403)
      assert.equal((await send.get('/v1/threads')).status, 403)
    })

    it("another org reaches none of this org's mail, by path, query or body", async () => {
      const other = new Api(s.url)
      const signup = await other.post('/v1/auth/signup', {
        email: 'eve@evil.example',
        password: PASSWORD,
        org_name: 'Evil',
      })
      assert.equal(signup.status, 201, signup.text)
      const evilAdmin = other.withKey(
        (await other.post('/v1/api-keys', { name: 'k', scope: 'admin' })).body.key,
      )
      await other.post('/v1/domains', { name: 'evil.example' })
      const evilBox = await createMailbox(s, other, 'evil.example', 'eve', signup.body.user.id)
      const evilMsg = await deliver(s, evilBox, textMail())
      const ownFolders = (await other.get(`/v1/mailboxes/${evilBox.id}/folders`)).body.data
      assert.equal(ownFolders.length, 6)
      const teamFolders = (await org.api.withKey(team.key).get(`/v1/mailboxes/${team.id}/folders`)).body.data
      const teamInbox = teamFolders.find((f: { role: string }) => f.role === 'inbox').id
      for (const api of [other, evilAdmin]) {
        for (const path of [
          `/v1/messages/${teamMsg}`,
          `/v1/messages/${teamMsg}/raw`,
          `/v1/messages?mailbox=${team.id}`,
          `/v1/messages?folder=${teamInbox}`,
          `/v1/messages?thread=${teamThread}`,
          `/v1/threads?mailbox=${team.address}`,
          `/v1/search?q=x&mailbox=${team.id}`,
          `/v1/labels?mailbox=${team.id}`,
        ])
          assert.equal((await api.get(path)).status, 404, path)
        assert.equal((await api.post(`/v1/labels?mailbox=${team.id}`, { name: 'x' })).status, 404)
        const bulk = await api.post('/v1/threads/bulk', { ids: [teamThread], action: { trash: true } })
        assert.equal(bulk.body.results[0].code, 'THREAD_NOT_FOUND')
        const move = await api.patch(`/v1/messages/${evilMsg}`, { folders: [teamInbox] })
        assert.equal(move.status, 404, 'a folder of another org cannot be named in a body')
        const label = await api.patch(`/v1/messages/${evilMsg}`, { labels: { add: [teamInbox] } })
        assert.equal(label.status, 404)
        const own = await api.get(`/v1/messages?mailbox=${evilBox.id}`)
        assert.ok(!own.text.includes(teamMsg))
      }
      const teamView = await org.api.withKey(team.key).get(`/v1/messages/${teamMsg}`)
      assert.deepEqual(
        teamView.body.folders.map((f: { role: string }) => f.role),
        ['inbox'],
        'nothing moved',
      )
    })
  })
}
