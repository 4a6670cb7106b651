/**
 * The routes' schemas are compiled on each route's first request, without checking them against
 * the JSON Schema meta-schema (src/schema-compilers.ts: a large piece of the start-up). This test
 * does both for every schema of every route the app has, so that a broken schema fails here, not
 * at a user's first request.
 */
import { Ajv } from 'ajv'
import fastJson from 'fast-json-stringify'
import t, { type Test } from 'tap'
import { buildApp } from '../src/app.js'
import { validatorCompiler } from '../src/schema-compilers.js'
import { sidecarEnv, startEmulator, tempDir } from './fixtures/harness.js'
import { LogCapture } from './fixtures/logs.js'

const PARTS = ['querystring', 'body', 'params', 'headers'] as const

interface Found {
  inputs: Array<{ where: string, method: string, url: string, part: typeof PARTS[number], schema: object }>
  outputs: Array<{ where: string, schema: object }>
}

/** Every input and response schema of every route of a whole app. */
async function everySchema (t: Test): Promise<Found> {
  const emulator = await startEmulator(t)
  const app = buildApp({ env: sidecarEnv(emulator), cwd: tempDir(t), logStream: new LogCapture() })
  t.teardown(() => app.close())
  const found: Found = { inputs: [], outputs: [] }
  app.addHook('onRoute', (route) => {
    const name = `${String(route.method)} ${route.url}`
    for (const part of PARTS) {
      const schema = route.schema?.[part] as object | undefined
      if (schema !== undefined) found.inputs.push({ where: `${name} ${part}`, method: String(route.method), url: route.url, part, schema })
    }
    const responses = (route.schema?.response ?? {}) as Record<string, { content?: Record<string, { schema: object }> }>
    for (const [status, response] of Object.entries(responses)) {
      if (response.content === undefined) found.outputs.push({ where: `${name} ${status}`, schema: response })
      else for (const [type, { schema }] of Object.entries(response.content)) found.outputs.push({ where: `${name} ${status} ${type}`, schema })
    }
  })
  await app.ready()
  return found
}

t.test('every route\'s schemas are valid JSON Schema and compile', async (t) => {
  const { inputs, outputs } = await everySchema(t)
  t.ok(inputs.some(({ where }) => where === 'GET /token querystring'), 'the /token query schema is among them')
  t.ok(inputs.some(({ where }) => where === 'POST /token body'), 'and the POST body schema')
  t.ok(outputs.some(({ where }) => where === 'GET /token 200 application/json'), 'and the token\'s JSON')
  t.ok(outputs.length > 20, 'and every error answer')
  const ajv = new Ajv({ allowUnionTypes: true })
  for (const { where, method, url, part, schema } of inputs) {
    t.ok(ajv.validateSchema(schema), `${where}: valid`, { errors: ajv.errors })
    // The app's own compiler, called once so that it compiles (strict mode: unknown keywords throw).
    const validate = validatorCompiler({ schema, method, url, httpPart: part })
    t.doesNotThrow(() => validate({}), `${where}: compiles`)
  }
  for (const { where, schema } of outputs) {
    t.doesNotThrow(() => fastJson(schema as Parameters<typeof fastJson>[0]), `${where}: compiles`)
  }
})

t.test('the checks of this test catch a broken schema', async (t) => {
  const ajv = new Ajv()
  t.notOk(ajv.validateSchema({ type: 'object', properties: { ttl: { type: 'integer', minimum: 'one' } } }), 'a minimum that is not a number')
  t.notOk(ajv.validateSchema({ type: 'strng' }), 'a type that does not exist')
  const validate = validatorCompiler({ schema: { type: 'object', properties: { ttl: { type: 'integer', minimun: 1 } } }, method: 'GET', url: '/x', httpPart: 'querystring' })
  t.throws(() => validate({}), /unknown keyword: "minimun"/, 'an unknown keyword, on first use')
  t.throws(() => fastJson({ type: 'object', properties: { a: { $ref: '#/nowhere' } } }), 'a response schema that does not resolve')
})

t.test('a validator compiled on first use reports its errors as Ajv does', async (t) => {
  const validate = validatorCompiler({ schema: { type: 'object', properties: { ttl: { type: 'integer' } } }, method: 'GET', url: '/x', httpPart: 'querystring' })
  t.equal(validate({ ttl: 'x' }), false)
  t.match(validate.errors, [{ instancePath: '/ttl', message: 'must be integer' }])
  t.equal(validate({ ttl: '5' }), true, 'query strings are coerced')
  t.equal(validate.errors, null, 'no errors left from the call before')
})
