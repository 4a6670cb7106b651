/**
 * The corners of named credentials: injected jitter and pool, the default app going away, a
 * credential changing kind, console-file fields of the default app, callers without `apps` when
 * there is no default, a narrow caller and a static token.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Agent } from 'undici'
import { buildApp } from '../../src/app.js'
import { ExchangeError } from '../../src/coze/exchange.js'
import type { Env } from '../../src/config.js'
import { ConfigError } from '../../src/errors.js'
import { bearer, NARROW_SECRET, sha256 } from '../fixtures/callers.js'
import { FakeClock } from '../fixtures/clock.js'
import { keys } from '../fixtures/keys.js'
import { APP_ID, KID, startEmulator, tempDir, type Emulator } from '../fixtures/harness.js'
import { LogCapture } from '../fixtures/logs.js'

const consoleFile = (emulator: Emulator, extra: Record<string, unknown> = {}): string => JSON.stringify({
  client_type: 'jwt', client_id: APP_ID, public_key_id: KID, private_key: keys.pkcs8, coze_api_base: emulator.url, ...extra
})

async function start (t: Test, env: Env, extra: Parameters<typeof buildApp>[0] extends infer O ? Partial<O> : never = {}) {
  const logs = new LogCapture()
  const app = buildApp({ env: { LOG_LEVEL: 'info', ...env }, cwd: tempDir(t), logStream: logs, clock: new FakeClock(), ...extra })
  await app.ready()
  t.teardown(() => app.close())
  return { app, logs }
}

t.test('an injected pool and jitter are the ones used', async (t) => {
  const emulator = await startEmulator(t)
  const dispatcher = new Agent()
  t.teardown(() => dispatcher.destroy())
  let draws = 0
  const { app } = await start(t, { COZE_APP_ID: APP_ID, COZE_KEY_ID: KID, COZE_PRIVATE_KEY: keys.pkcs8, COZE_API_BASE: emulator.url }, {
    dispatcher, random: () => { draws++; return 0.5 }
  })
  t.equal((await app.inject('/token')).statusCode, 200)
  t.ok(draws > 0, 'the injected random drew the refresh point')
  t.equal(app.cozeDispatcher, dispatcher)
})

t.test('the registry: the default app removed, a refused file not reported twice, a credential that changes kind, polls after close', async (t) => {
  const emulator = await startEmulator(t)
  const dir = tempDir(t)
  writeFileSync(join(dir, 'a.json'), consoleFile(emulator))
  writeFileSync(join(dir, 'b.json'), consoleFile(emulator))
  const cwd = tempDir(t)
  const { app, logs } = await start(t, { COZE_OAUTH_CONFIG_DIR: dir, SIDECAR_DEFAULT_APP: 'a' }, { cwd })
  t.equal((await app.inject('/token')).statusCode, 200)

  rmSync(join(dir, 'a.json'))
  t.equal(await app.credentials.poll(), true)
  t.equal(app.credentials.defaultName, undefined)
  t.match((await app.inject('/token')).json(), { statusCode: 400, field: 'app', message: /the default app "a" \(SIDECAR_DEFAULT_APP\) is not configured any more \(configured: b\)/ })

  writeFileSync(join(dir, 'c.json'), '{')
  t.equal(await app.credentials.poll(), false)
  t.equal(await app.credentials.poll(), true, 'the same broken file, unchanged: not reported again')
  t.equal(logs.containing('credential file refused').length, 1)

  writeFileSync(join(dir, 'b.json'), JSON.stringify({ client_type: 'static_token', access_token: 'pat_0123456789abcdef' }))
  t.equal(await app.credentials.poll(), true, 'b reloaded; c.json, still broken and unchanged, is skipped')
  t.match(logs.containing('credential reloaded').at(-1), /"app":"b".*"kind":"static"/)
  t.equal((await app.inject('/token?app=b&format=text')).body, 'pat_0123456789abcdef', 'a JWT app that became a static token')

  t.equal(app.shedWaiting(), 0, 'nobody waits for a static token')

  // The single-app settings appear at run time (a console file dropped in the working folder).
  writeFileSync(join(cwd, 'coze_oauth_config.json'), consoleFile(emulator))
  await app.credentials.reload()
  t.match(logs.containing('credential added').at(-1), /"app":"default"/)
  t.same(app.credentials.names(), ['b', 'c', 'default'].filter((name) => name !== 'c'))

  await app.close()
  t.equal(await app.credentials.poll(), true, 'a poll after close does nothing')
})

t.test('the default app from a console file: each missing or bad field named in the file', async (t) => {
  const emulator = await startEmulator(t)
  const table: Array<[Record<string, unknown>, RegExp]> = [
    [{ client_id: undefined }, /has no client_id \(the OAuth app id\); add it from the Coze console, or set COZE_APP_ID/],
    [{ private_key: undefined }, /has no private_key \(the PEM private key\); add it from the Coze console, or set COZE_PRIVATE_KEY_FILE/],
    [{ coze_api_base: 'ftp://api.coze.cn' }, /coze_oauth_config\.json: coze_api_base must be http\(s\), not ftp/],
    [{ jwt_audience: 'a\u0085b' }, /coze_oauth_config\.json: jwt_audience is invalid \(control characters/]
  ]
  for (const [fields, message] of table) {
    const cwd = tempDir(t)
    writeFileSync(join(cwd, 'coze_oauth_config.json'), consoleFile(emulator, fields))
    const app = buildApp({ env: {}, cwd, logStream: new LogCapture() })
    const error = await app.ready().then(() => undefined, (e: ConfigError) => e)
    await app.close().catch(() => {})
    t.match(error, { setting: 'COZE_OAUTH_CONFIG', message }, JSON.stringify(fields))
  }
  const dir = tempDir(t)
  writeFileSync(join(dir, 'x.json'), consoleFile(emulator, { public_key_id: 'not-this-keys' }))
  const { logs } = await start(t, { COZE_OAUTH_CONFIG_DIR: dir })
  t.match(logs.containing('does not match'), [/public_key_id of x does not match the fingerprint/])
})

t.test('callers without apps when no credential is the default; a narrow caller and a static token', async (t) => {
  const emulator = await startEmulator(t)
  const dir = tempDir(t)
  writeFileSync(join(dir, 'a.json'), consoleFile(emulator))
  writeFileSync(join(dir, 'pat.json'), JSON.stringify({ client_type: 'static_token', access_token: 'pat_0123456789abcdef' }))
  const callers = join(dir, '..', `callers-${process.pid}.json`)
  writeFileSync(callers, JSON.stringify({ callers: { narrow: { secret_sha256: sha256(NARROW_SECRET) } } }))
  t.teardown(() => rmSync(callers, { force: true }))
  const { app } = await start(t, { COZE_OAUTH_CONFIG_DIR: dir, SIDECAR_CALLERS_FILE: callers })
  const refused = await app.inject({ url: '/token?app=a', headers: bearer(NARROW_SECRET) })
  t.match(refused.json(), { statusCode: 403, code: 'CALLER_NOT_ALLOWED', field: 'app', message: 'caller narrow may not use app "a" (it may use no app)' })
  t.notMatch(refused.body, /pat/, 'the refusal names no other credential')
  t.same((await app.inject({ url: '/token/rights', headers: bearer(NARROW_SECRET) })).json().apps, [], 'no default: no app')
  const single = await start(t, { COZE_APP_ID: APP_ID, COZE_KEY_ID: KID, COZE_PRIVATE_KEY: keys.pkcs8, COZE_API_BASE: emulator.url, SIDECAR_CALLERS_FILE: callers })
  t.same((await single.app.inject({ url: '/token/rights', headers: bearer(NARROW_SECRET) })).json().apps, ['default'], 'apps absent: the default credential, by name')

  writeFileSync(callers, JSON.stringify({ callers: { narrow: { secret_sha256: sha256(NARROW_SECRET), apps: ['pat'], defaults: { app: 'pat' } } } }))
  await app.close()
  const second = await start(t, { COZE_OAUTH_CONFIG_DIR: dir, SIDECAR_CALLERS_FILE: callers })
  const token = await second.app.inject({ url: '/token?format=text', headers: bearer(NARROW_SECRET) })
  t.equal(token.body, 'pat_0123456789abcdef', 'the caller\'s default app, a static token')
  t.match((await second.app.inject({ url: '/token?session_name=x', headers: bearer(NARROW_SECRET) })).json(), { statusCode: 400, field: 'session_name' })
})

t.test('withHint keeps what the failure carried, and only that', async (t) => {
  const bare = new ExchangeError('refused', 'no').withHint('look there')
  t.match(bare, { kind: 'refused', message: 'no; look there' })
  t.same([bare.status, bare.errorCode, bare.errorMessage, bare.logid, bare.retryAfterMs], [undefined, undefined, undefined, undefined, undefined])
  const full = new ExchangeError('rate_limited', 'slow', { status: 429, errorCode: 'x', errorMessage: 'm', logid: 'L', retryAfterMs: 5 }).withHint('h')
  t.match(full, { status: 429, errorCode: 'x', errorMessage: 'm', logid: 'L', retryAfterMs: 5, retryable: true })
})
