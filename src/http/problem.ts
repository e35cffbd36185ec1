// The one place HTTP errors are made: RFC 9457 problem details (application/problem+json)
// for every error the API returns. Validation errors list their fields; 5xx never show
// internals (the detail names the request id to quote instead, and the error is logged).

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { ServiceError, type ServiceErrorKind } from '../services/errors.ts'

export interface Problem {
  type: string
  title: string
  status: number
  detail?: string
  code?: string
  request_id?: string
  errors?: { field: string; message: string }[]
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
}

const KIND_STATUS: Record<ServiceErrorKind, number> = {
  invalid: 422,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  temporary: 503,
  internal: 500,
}

const slug = (code: string) => code.toLowerCase().replaceAll('_', '-')

export function problem(
  status: number,
  code: string,
  detail?: string,
  extra: Partial<Problem> = {},
): Problem {
  return {
    type: `/problems/${slug(code)}`,
    title: TITLES[status] ?? (status >= 500 ? 'Server Error' : 'Client Error'),
    status,
    code,
    ...(detail === undefined ? {} : { detail }),
    ...extra,
  }
}

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  p.request_id = String(reply.request.id)
  return reply.code(p.status).type('application/problem+json').send(JSON.stringify(p))
}

/** Fastify validation entries -> [{ field, message }] with dotted field paths. */
function fieldErrors(err: FastifyError): { field: string; message: string }[] {
  return (err.validation ?? []).map((v) => {
    const base = (v.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.')
    const missing = (v.params as { missingProperty?: string })?.missingProperty
    const extra = (v.params as { additionalProperty?: string })?.additionalProperty
    const field = [err.validationContext, base, missing ?? extra].filter(Boolean).join('.')
    return {
      field: field || String(err.validationContext ?? 'request'),
      message: extra ? 'is not allowed' : (v.message ?? 'is invalid'),
    }
  })
}

/** Maps any error thrown while handling a request to a problem, once. */
export function toProblem(err: unknown, req: FastifyRequest): Problem {
  if (err instanceof ServiceError) {
    const status = KIND_STATUS[err.kind]
    if (status >= 500 && err.kind === 'internal') return problem(500, 'INTERNAL', internalDetail(req))
    return problem(status, err.code, err.message, err.details ? { errors: err.details } : {})
  }
  const e = err as FastifyError
  if (e.validation)
    return problem(400, 'VALIDATION_FAILED', 'The request has invalid fields; see errors.', {
      errors: fieldErrors(e),
    })
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return problem(400, 'INVALID_JSON', `The body is not valid JSON: ${e.message}`)
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return problem(
        413,
        'BODY_TOO_LARGE',
        'The request body is larger than this server accepts (http.body_limit_bytes).',
      )
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return problem(
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        `Send a body as application/json (got ${req.headers['content-type'] ?? 'none'}).`,
      )
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return problem(400, 'INVALID_CONTENT_LENGTH', 'Content-Length does not match the body.')
  }
  if (e instanceof SyntaxError && typeof e.statusCode === 'number' && e.statusCode === 400)
    return problem(400, 'INVALID_JSON', `The body is not valid JSON: ${e.message}`)
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500
  if (status >= 400 && status < 500) return problem(status, e.code ?? 'BAD_REQUEST', e.message)
  return problem(Math.max(status, 500), 'INTERNAL', internalDetail(req))
}

const internalDetail = (req: FastifyRequest) =>
  `Something went wrong on our side. It has been logged; quote request id ${req.id} if you report it.`

export function notFoundProblem(req: FastifyRequest): Problem {
  return problem(
    404,
    'ROUTE_NOT_FOUND',
    `No route ${req.method} ${req.url.split('?')[0]}; see /v1/openapi.json for the routes.`,
  )
}
