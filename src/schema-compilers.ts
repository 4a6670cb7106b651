/**
 * How the routes' schemas become validators and serializers: Ajv and fast-json-stringify, as
 * Fastify would use them, but each compiled on the route's first request rather than at start.
 *
 * Compiling every schema of every route (two dozen routes, a dozen error statuses each) was the
 * largest piece of the start-up after loading the code (issue 12), for routes most sidecars never
 * serve (the page, its assets, /status, /token/rights) and error answers most never send. A
 * compile error then shows at that first request instead of at start: test/route-schemas.test.ts
 * compiles every schema of every route with these very compilers, so one cannot reach a release.
 *
 * Validation: unknown fields are refused, not silently dropped (Fastify's default). Query strings
 * and headers are text, so they are coerced to the schema's types; JSON bodies are not: a `[1]`
 * where strings belong is an error, not `["1"]` sent on to Coze.
 *
 * @example
 * app.setValidatorCompiler(validatorCompiler)
 * app.setSerializerCompiler(serializerCompiler)
 */
import type { FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify'
import { Ajv, type ValidateFunction } from 'ajv'
import fastJson from 'fast-json-stringify'

// validateSchema: false spares each instance compiling the JSON Schema meta-schema (about a tenth
// of the start-up, issue 12); the routes' schemas are checked against it by the test instead, and
// strict mode still refuses unknown keywords here.
const AJV_OPTIONS = { removeAdditional: false, useDefaults: true, allErrors: false, allowUnionTypes: true, validateSchema: false } as const
const textAjv = new Ajv({ ...AJV_OPTIONS, coerceTypes: 'array' })
const bodyAjv = new Ajv({ ...AJV_OPTIONS, coerceTypes: false })

/**
 * A validator that compiles `schema` when first called. Fastify reads `errors` off the validator
 * after a failed call, as Ajv leaves them there.
 */
function onFirstUse (compile: () => ValidateFunction): ValidateFunction {
  let validate: ValidateFunction | undefined
  const check = ((data: unknown) => {
    validate ??= compile()
    const valid = validate(data)
    check.errors = validate.errors
    return valid
  }) as ValidateFunction
  return check
}

export const validatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) =>
  onFirstUse(() => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema))

type Serialize = (data: unknown) => string

/** fast-json-stringify with Fastify's defaults (the service adds no shared schemas), compiled when first called. */
export const serializerCompiler: FastifySerializerCompiler<object> = ({ schema }) => {
  let serialize: Serialize | undefined
  return (data: unknown) => (serialize ??= fastJson(schema as Parameters<typeof fastJson>[0]) as Serialize)(data)
}
