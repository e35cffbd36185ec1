// Installation-wide background jobs, for administrators of the operating org (scope operator): GET /v1/admin/jobs lists each job with its last and next
// run; POST /v1/admin/jobs/{name}/run runs one now (rate limited).

import { Type } from 'typebox'
import type { JobStatus } from '../../services/jobs/runner.ts'
import { toIso, toIsoOrNull } from '../../time/clock.ts'
import { principalOf } from '../plugins/auth.ts'
import { enforceRateLimit } from '../rate-limit.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import type { RoutePlugin } from '../types.ts'

const Job = Type.Object({
  name: Type.String(),
  description: Type.String(),
  interval_seconds: Type.Number(),
  running: Type.Boolean(),
  last_started_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  last_finished_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  last_status: Type.Union([Type.Literal('ok'), Type.Literal('error'), Type.Null()]),
  last_error: Type.Union([Type.String(), Type.Null()]),
  last_duration_ms: Type.Union([Type.Number(), Type.Null()]),
  next_run_at: Type.String({ format: 'date-time' }),
  run_count: Type.Integer(),
})

const jobBody = (j: JobStatus) => ({
  name: j.name,
  description: j.description,
  interval_seconds: j.interval_ms / 1000,
  running: j.running,
  last_started_at: toIsoOrNull(j.last_started_at),
  last_finished_at: toIsoOrNull(j.last_finished_at),
  last_status: j.last_status,
  last_error: j.last_error,
  last_duration_ms: j.last_duration_ms,
  next_run_at: toIso(j.next_run_at),
  run_count: j.run_count,
})

export const adminJobRoutes: RoutePlugin = async (app, deps) => {
  const { jobs, limiter, rules } = deps.services
  app.get(
    '/v1/admin/jobs',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['admin'],
        summary: 'Background jobs with their last and next run',
        response: { 200: list(Job), ...errorResponses },
      },
    },
    async () => ({
      data: (await jobs.list()).map(jobBody),
      next_cursor: null,
    }),
  )

  app.post(
    '/v1/admin/jobs/:name/run',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['admin'],
        summary: 'Run a job now',
        params: Type.Object({ name: Type.String({ maxLength: 100 }) }),
        response: { 200: Job, ...errorResponses },
      },
    },
    async (req, reply) => {
      const p = principalOf(req)
      await enforceRateLimit(limiter, reply, 'manual job runs', [
        { rule: rules.admin_jobs, subject: p.user_id ?? p.key_id },
      ])
      return jobBody(await jobs.runNow(req.params.name))
    },
  )
}
