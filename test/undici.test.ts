import { createRequire } from 'node:module'
import t from 'tap'
import * as undici from 'undici'
import { EnvHttpProxyAgent } from '../src/undici.js'
import { tempDir } from './fixtures/harness.js'
import { spawnEntry } from './fixtures/process.js'

t.test('the deep imports are the very class and methods undici\'s index exports', async (t) => {
  t.equal(EnvHttpProxyAgent, undici.EnvHttpProxyAgent)
  const api = createRequire(import.meta.url)('undici/lib/api/index.js') as Record<string, unknown>
  for (const method of ['request', 'stream', 'pipeline', 'upgrade', 'connect']) {
    t.type(api[method], 'function', `undici's api has ${method}`)
    t.equal((undici.Dispatcher.prototype as unknown as Record<string, unknown>)[method], api[method], `Dispatcher.prototype.${method}`)
  }
})

t.test('alone, src/undici.ts makes a real request without loading undici\'s index', async (t) => {
  const run = await spawnEntry(new URL('./fixtures/undici-alone.ts', import.meta.url), [], {}, tempDir(t)).exited
  t.equal(run.code, 0, run.stderr)
  const report = JSON.parse(run.stdout) as { status: number, body: string, loaded: string[] }
  t.equal(report.status, 200)
  t.equal(report.body, 'POST /v1/users/me?x=1')
  t.ok(report.loaded.some((file) => file.endsWith('/undici/lib/dispatcher/env-http-proxy-agent.js')), 'the agent came from its own file')
  t.notOk(report.loaded.some((file) => file.endsWith('/undici/index.js')), 'undici/index.js was never loaded')
  t.notOk(report.loaded.some((file) => file.includes('/undici/lib/web/fetch/')), 'nor fetch')
})
