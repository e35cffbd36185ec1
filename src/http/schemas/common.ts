// Schemas shared by many routes: the problem body and the standard error responses.

import { Type } from 'typebox'

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
    code: Type.Optional(Type.String()),
    request_id: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
  },
  { description: 'RFC 9457 problem details (application/problem+json)' },
)

/** Error responses every route may give. */
export const errorResponses = { '4xx': ProblemSchema, '5xx': ProblemSchema } as const
