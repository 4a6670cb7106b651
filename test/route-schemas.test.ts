/**
 * The routes' validators are compiled without checking their schemas against the JSON Schema
 * meta-schema (src/app.ts: a tenth of the start-up); this test makes that check instead, for
 * every schema of every route the app has.
 */
import { Ajv } from 'ajv'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { sidecarEnv, startEmulator, tempDir } from './fixtures/harness.js'
import { LogCapture } from './fixtures/logs.js'

const PARTS = ['querystring', 'body', 'params', 'headers'] as const

t.test('every route\'s input schemas are valid JSON Schema', async (t) => {
  const emulator = await startEmulator(t)
  const app = buildApp({ env: sidecarEnv(emulator), cwd: tempDir(t), logStream: new LogCapture() })
  t.teardown(() => app.close())
  const schemas: Array<{ where: string, schema: unknown }> = []
  app.addHook('onRoute', (route) => {
    for (const part of PARTS) {
      const schema = route.schema?.[part]
      if (schema !== undefined) schemas.push({ where: `${String(route.method)} ${route.url} ${part}`, schema })
    }
  })
  await app.ready()
  t.ok(schemas.some(({ where }) => where === 'GET /token querystring'), 'the /token query schema is among them')
  t.ok(schemas.some(({ where }) => where === 'POST /token body'), 'and the POST body schema')
  const ajv = new Ajv({ allowUnionTypes: true })
  for (const { where, schema } of schemas) {
    t.ok(ajv.validateSchema(schema as object), where, { errors: ajv.errors })
  }
})

t.test('the meta-schema check in this test catches a broken schema', async (t) => {
  const ajv = new Ajv()
  t.notOk(ajv.validateSchema({ type: 'object', properties: { ttl: { type: 'integer', minimum: 'one' } } }), 'a minimum that is not a number')
  t.notOk(ajv.validateSchema({ type: 'strng' }), 'a type that does not exist')
})
