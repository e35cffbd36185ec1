// Route schemas compiled on first use. Fastify compiles every route's validators (ajv) and
// response serializers (fast-json-stringify) when the route is added; with over a hundred
// routes that generated code is about a fifth of an idle server's heap, for routes most
// installations never call. These factories hand Fastify the same compilers it uses by default
// (taken from Fastify's own dependencies, so the versions always match), wrapped so each
// schema is compiled when its first request needs it and the result is kept.
// Invariants:
// - Validation and serialization behave exactly as with the default compilers: the wrapper
//   forwards the input, the result and ajv's `errors` (which Fastify reads after a failed call).
// - A schema the compiler rejects fails its first request with a 500 instead of failing start;
//   the route tests (and the OpenAPI document test, which walks every schema) catch that.

import { createRequire } from 'node:module'

interface RouteSchema {
  schema: unknown
  method: string
  url: string
  httpPart?: string
}
type Validate = ((data: unknown) => unknown) & { errors?: unknown }
type Serialize = (data: unknown) => string
type Factory<T> = (externalSchemas: unknown, options: unknown) => (route: RouteSchema) => T

const fromFastify = createRequire(import.meta.resolve('fastify'))
const defaultValidators = (fromFastify('@fastify/ajv-compiler') as () => Factory<Validate>)()
const defaultSerializers = (
  fromFastify('@fastify/fast-json-stringify-compiler') as () => Factory<Serialize>
)()

function lazyValidator(compile: () => Validate): Validate {
  let fn: Validate | null = null
  const validate: Validate = (data) => {
    fn ??= compile()
    const result = fn(data)
    validate.errors = fn.errors
    return result
  }
  return validate
}

function lazySerializer(compile: () => Serialize): Serialize {
  let fn: Serialize | null = null
  return (data) => {
    fn ??= compile()
    return fn(data)
  }
}

/** Fastify's `schemaController.compilersFactory`, compiling each schema on first use. */
export const lazyCompilersFactory = {
  buildValidator(externalSchemas: unknown, options: unknown) {
    const compile = defaultValidators(externalSchemas, options)
    return (route: RouteSchema) => lazyValidator(() => compile(route))
  },
  buildSerializer(externalSchemas: unknown, options: unknown) {
    const compile = defaultSerializers(externalSchemas, options)
    return (route: RouteSchema) => lazySerializer(() => compile(route))
  },
}
