// Installation-wide jobs over HTTP: only administrators of the operating org (the one created
// at setup) may list or run them; other orgs' owners may not, whatever their role.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Api } from '../helpers/api.ts'
import { DIALECTS } from '../helpers/dialects.ts'
import { startTestServer } from '../helpers/server.ts'
import { PASSWORD, setupOwner } from './helpers.ts'

for (const dialect of DIALECTS) {
  describe(`admin jobs (${dialect})`, () => {
    it('lists jobs with their last and next run and runs one now, for the operating org only', async () => {
      const s = await startTestServer(dialect, {
        env: { POSTERN_AUTH_SIGNUP: 'open', POSTERN_RATE_LIMITS_ADMIN_JOBS: '2/60s' },
      })
      try {
        const operator = await setupOwner(s)
        const list = await operator.get('/v1/admin/jobs')
        assert.equal(list.status, 200, list.text)
        const names = list.body.data.map((j: { name: string }) => j.name)
        for (const n of ['blob-collect', 'changes-prune', 'rate-limit-prune']) assert.ok(names.includes(n), n)
        const blob = list.body.data.find((j: { name: string }) => j.name === 'blob-collect')
        assert.equal(blob.last_finished_at, null)
        assert.match(blob.next_run_at, /^\d{4}-\d\d-\d\dT/)
        const run = await operator.post('/v1/admin/jobs/blob-collect/run')
        assert.equal(run.status, 200, run.text)
        assert.equal(run.body.run_count, 1)
        assert.equal(run.body.last_status, 'ok')
        assert.equal(run.headers.get('x-ratelimit-remaining'), '1')
        assert.equal((await operator.post('/v1/admin/jobs/nope/run')).status, 404)
        assert.equal((await operator.post('/v1/admin/jobs/blob-collect/run')).status, 429)
        const key = (await operator.post('/v1/api-keys', { name: 'ops', scope: 'admin' })).body.key
        assert.equal((await new Api(s.url).withKey(key).get('/v1/admin/jobs')).status, 200)

        const stranger = new Api(s.url)
        assert.equal(
          (await stranger.post('/v1/auth/signup', { email: 'x@other.example', password: PASSWORD })).status,
          201,
        )
        const refused = await stranger.get('/v1/admin/jobs')
        assert.equal(refused.status, 403, 'the owner of another org does not operate the installation')
        assert.equal(refused.body.code, 'MISSING_SCOPE')
        assert.match(refused.body.detail, /operates this installation/)
        assert.equal((await stranger.post('/v1/admin/jobs/blob-collect/run')).status, 403)
      } finally {
        await s.close()
      }
    })
  })
}
