// GET /v1/setup/status: whether the installation still needs its first owner. (POST /v1/setup,
// which consumes the printed setup token, belongs to the accounts capability.)

import { Type } from 'typebox'
import { errorResponses } from '../schemas/common.ts'
import type { RoutePlugin } from '../types.ts'

export const setupRoutes: RoutePlugin = async (app, deps) => {
  app.get(
    '/v1/setup/status',
    {
      schema: {
        tags: ['service'],
        summary: 'Whether first-run setup is still needed',
        response: { 200: Type.Object({ needs_setup: Type.Boolean() }), ...errorResponses },
      },
    },
    async () => ({ needs_setup: await deps.setup.needsSetup() }),
  )
}
