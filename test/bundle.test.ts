/**
 * dist/server.js is the service bundled into one file (scripts/bundle.mjs, the last step of
 * `npm run build`, which `npm test` runs before tap). The rest of the suite drives src/; this
 * drives the bundle as users start it, through every path that reaches outside it or that a
 * bundler could break: a file read beside it (the page's assets, package.json's version), the
 * parts it loads only when needed (@fastify/swagger, the demo's emulator), undici's request API
 * (the gateway), and a real signal.
 */
import { existsSync, readFileSync } from 'node:fs'
import { isBuiltin } from 'node:module'
import t from 'tap'
import { request } from 'undici'
import { VERSION } from '../src/package-files.js'
import { sidecarEnv, startEmulator, tempDir } from './fixtures/harness.js'
import { spawnEntry } from './fixtures/process.js'

const BUNDLE = new URL('../dist/server.js', import.meta.url)

if (!existsSync(BUNDLE)) throw new Error('dist/server.js is missing: run `npm run build` first (npm test does)')

t.test('one file: every package is inside it, but for what it loads only when needed', async (t) => {
  // esbuild's own account of the bundle (scripts/bundle.mjs writes it beside).
  const meta = JSON.parse(readFileSync(new URL('../dist/server.meta.json', import.meta.url), 'utf8')) as {
    inputs: Record<string, unknown>
    outputs: Record<string, { imports: Array<{ path: string, kind: string, external?: boolean }> }>
  }
  const inputs = Object.keys(meta.inputs)
  for (const name of ['fastify', 'undici', 'jose', 'pino', 'prom-client', 'ws', 'env-schema']) {
    t.ok(inputs.some((input) => input.startsWith(`node_modules/${name}/`)), `${name} is inside`)
  }
  t.notOk(inputs.some((input) => input.startsWith('node_modules/undici/index.js')), 'undici\'s index is not: only the parts src/undici.ts imports')
  const outside = (meta.outputs['dist/server.js']?.imports ?? []).filter((file) => !file.path.startsWith('node:') && !isBuiltin(file.path))
  t.same(outside.map((file) => `${file.kind} ${file.path}`).sort(), [
    'dynamic-import ./emulator/plugin.js',
    'dynamic-import ./emulator/state.js',
    'dynamic-import @fastify/swagger',
    // ws's optional native add-ons, tried in a try/catch; none is installed.
    'require-call bufferutil',
    'require-call utf-8-validate'
  ], 'loaded only when needed: the demo\'s emulator and the OpenAPI builder')
})

t.test('serves a token, the page and its assets, /openapi.json and the gateway; SIGTERM exits 0', async (t) => {
  const emulator = await startEmulator(t)
  const { exited, output } = spawnEntry(BUNDLE, [], sidecarEnv(emulator, { PORT: '0' }), tempDir(t))
  const [, address] = await output(/Server listening at (http:\/\/[\d.:]+)/)
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const response = await request(`${address}${path}`, { headers })
    return { status: response.statusCode, type: String(response.headers['content-type']), body: await response.body.text() }
  }

  const token = await get('/token')
  t.equal(token.status, 200)
  t.match(JSON.parse(token.body), { access_token: /^czs_/, token_type: 'Bearer' })
  t.equal((await get('/token', { accept: 'text/plain' })).type, 'text/plain; charset=utf-8', 'Accept is negotiated')

  const page = await get('/')
  t.equal(page.status, 200)
  t.match(page.body, `coze-token-sidecar ${VERSION}<`, 'the version, read from package.json')
  const css = await get('/assets/page.css')
  t.equal(css.status, 200)
  t.equal(css.body, readFileSync(new URL('../src/views/assets/page.css', import.meta.url), 'utf8'), 'the stylesheet, read from dist/views/assets')

  const openapi = await get('/openapi.json')
  t.equal(openapi.status, 200)
  t.match(JSON.parse(openapi.body), { openapi: '3.1.0', info: { version: VERSION }, paths: { '/token': { get: {} } } }, '@fastify/swagger, loaded on the first request')

  const bad = await get('/token?ttl=abc')
  t.equal(bad.status, 400)
  t.match(JSON.parse(bad.body), { code: 'INVALID_PARAMETER', field: 'ttl' }, 'a validator compiled on its first use')

  const me = await get('/v1/users/me')
  t.equal(me.status, 200, 'the gateway: undici\'s request API on the bundled dispatcher')
  t.match(JSON.parse(me.body), { code: 0 })

  const stopped = exited
  process.kill(Number((await output(/"pid":(\d+)/))[1]), 'SIGTERM')
  t.equal((await stopped).code, 0)
})

t.test('demo mode: the emulator, loaded from dist/ beside the bundle', async (t) => {
  const { exited, output, child } = spawnEntry(BUNDLE, [], { SIDECAR_DEMO: 'true', PORT: '0' }, tempDir(t))
  const [, address] = await output(/Server listening at (http:\/\/[\d.:]+)/)
  const response = await request(`${address}/token?format=text`)
  t.equal(response.statusCode, 200)
  t.match(await response.body.text(), /^czs_/)
  child.kill('SIGTERM')
  t.equal((await exited).code, 0)
})
