// Schemas of the warm-up routes (routes/warmups.ts): a ramp as the API shows it, and the
// bodies that make and change one.

import { Type } from 'typebox'

const Time = Type.String({ format: 'date-time' })
const TimeOrNull = Type.Union([Time, Type.Null()])
const IntOrNull = Type.Union([Type.Integer(), Type.Null()])
const Cap = Type.Integer({ minimum: 1, maximum: 10_000_000 })

export const Warmup = Type.Object({
  id: Type.String(),
  object: Type.Literal('alias_warmup'),
  token: Type.String({ description: 'The ramp’s public handle (wmt_...), accepted wherever its id is' }),
  address: Type.String({ description: 'The sender (From) address the ramp caps' }),
  alias_id: Type.Union([Type.String(), Type.Null()]),
  curve: Type.Union([Type.Literal('default'), Type.Literal('custom')]),
  schedule: Type.Array(Type.Integer(), { description: 'Daily recipient caps, day 1 first' }),
  days: Type.Integer({ description: 'N: the ramp completes after this many 24-hour days' }),
  day: Type.Union([Type.Integer(), Type.Null()], { description: 'Day n of N (1-based); null once complete' }),
  status: Type.Union([Type.Literal('warming'), Type.Literal('completed')]),
  today_cap: IntOrNull,
  used_today: Type.Integer({ description: 'Recipients handed to delivery today' }),
  remaining_today: IntOrNull,
  resets_at: TimeOrNull,
  started_at: Time,
  ends_at: Time,
  created_at: Time,
  updated_at: Time,
})

const curveFields = {
  schedule: Type.Optional(
    Type.Array(Cap, { minItems: 1, maxItems: 365, description: 'A custom list of daily caps, day 1 first' }),
  ),
  days: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 365, description: 'Default curve: its length (30)' }),
  ),
  start_cap: Type.Optional({ ...Cap, description: 'Default curve: day 1’s cap (20)' }),
  target_cap: Type.Optional({ ...Cap, description: 'Default curve: the last day’s cap (1000)' }),
}

export const WarmupCreate = Type.Object(
  {
    address: Type.Optional(Type.String({ minLength: 3, maxLength: 320 })),
    alias_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    ...curveFields,
  },
  { additionalProperties: false },
)

export const WarmupUpdate = Type.Object(
  {
    ...curveFields,
    restart: Type.Optional(Type.Boolean({ description: 'Start again at day 1 now' })),
  },
  { additionalProperties: false },
)
