import { join } from 'node:path'
import t from 'tap'
import { main, USAGE } from '../src/print-token.js'
import { ACCOUNT_ID, APP_ID, sidecarEnv, startEmulator, tempDir } from './fixtures/harness.js'
import { fakeProcess, spawnEntry } from './fixtures/process.js'
import { until } from './fixtures/flush.js'
import { DEMO_ENTERPRISE_ID } from '../src/demo.js'

t.test('prints one token and exits 0; the selectors become the request', async (t) => {
  const emulator = await startEmulator(t)
  const { proc, fake } = fakeProcess(t, sidecarEnv(emulator))
  t.equal(await main([], proc), 0)
  t.match(fake.stdout, /^czs_[A-Za-z0-9]{64}\n$/)
  t.equal(fake.stderr, '')
  const token = fake.stdout.trim()
  t.equal(emulator.state.tokens.get(token)?.appId, APP_ID, 'a token Coze (the emulator) issued')

  const other = fakeProcess(t, sidecarEnv(emulator))
  t.equal(await main(['--session-name', 'user-42', '--account-id', ACCOUNT_ID, '--ttl', '600', '--device-id', 'd1', '--json'], other.proc), 0)
  const json = JSON.parse(other.fake.stdout)
  t.match(json, { access_token: /^czs_/, token_type: 'Bearer', expires_in: Number, expires_at: String })
  t.match(emulator.state.records.at(-1), {
    path: `/api/permission/oauth2/account/${ACCOUNT_ID}/token`,
    body: { duration_seconds: 600 },
    claims: { session_name: 'user-42', session_context: { device_info: { device_id: 'd1' } } }
  })
})

t.test('the service\'s errors, on stderr, with exit 1', async (t) => {
  const emulator = await startEmulator(t)
  const refused = fakeProcess(t, sidecarEnv(emulator))
  t.equal(await main(['--account-id', '999'], refused.proc), 1)
  t.equal(refused.fake.stdout, '')
  t.match(refused.fake.stderr, /^coze-token: COZE_ACCESS_DENY: Coze denied access: .* \(Coze logid \d{14}[0-9A-F]{20}\)\n$/)
  const bad = fakeProcess(t, sidecarEnv(emulator))
  t.equal(await main(['--ttl', '0'], bad.proc), 1)
  t.equal(bad.fake.stderr, 'coze-token: INVALID_PARAMETER: ttl must be >= 1\n')
  const unknown = fakeProcess(t, sidecarEnv(emulator))
  t.equal(await main(['--app', 'com'], unknown.proc), 1)
  t.equal(unknown.fake.stderr, 'coze-token: INVALID_PARAMETER: app "com" is not configured (configured: default)\n')
  const named = fakeProcess(t, sidecarEnv(emulator))
  t.equal(await main(['--app', 'default'], named.proc), 0, '--app names the credential')
})

t.test('the same configuration as the service, with its guard settings', async (t) => {
  const emulator = await startEmulator(t)
  const config = fakeProcess(t, { COZE_KEY_ID: 'k' })
  t.equal(await main([], config.proc), 78)
  t.match(config.fake.stderr, /^coze-token: COZE_APP_ID: is required/)
  const guarded = fakeProcess(t, sidecarEnv(emulator, { SIDECAR_AUTH_TOKEN: 'a-caller-secret-0123456789', SIDECAR_REQUIRE_HEADER: 'Metadata-Flavor: Coze' }))
  t.equal(await main([], guarded.proc), 0, 'it sends the secret and the required header itself')
  // A callers file does not bind the command that holds the key: it would have every right anyway.
  const dir = tempDir(t)
  const withCallers = fakeProcess(t, sidecarEnv(emulator, { SIDECAR_CALLERS_FILE: join(dir, 'callers.json'), HOST: '0.0.0.0' }), dir)
  t.equal(await main(['--session-name', 'anyone', '--ttl', '3600'], withCallers.proc), 0, 'any token, the file not even read')
  t.match(withCallers.fake.stdout, /^czs_/)
})

t.test('SIDECAR_DEMO=true: a token from the demo\'s emulator, which then stops', async (t) => {
  const before = process.getActiveResourcesInfo().filter((name) => name === 'TCPServerWrap').length
  const cwd = tempDir(t)
  const demo = fakeProcess(t, { SIDECAR_DEMO: 'true' }, cwd)
  t.equal(await main(['--enterprise-id', DEMO_ENTERPRISE_ID], demo.proc), 0)
  t.match(demo.fake.stdout, /^czs_[A-Za-z0-9]{64}\n$/)
  t.equal(demo.fake.stderr, '')
  const bad = fakeProcess(t, { SIDECAR_DEMO: 'true', COZE_TOKEN_TTL: '0' }, cwd)
  t.equal(await main([], bad.proc), 78)
  t.match(bad.fake.stderr, /^coze-token: COZE_TOKEN_TTL: is invalid/)
  await until(() => process.getActiveResourcesInfo().filter((name) => name === 'TCPServerWrap').length <= before, 'the emulators to close', 2_000)
})

t.test('usage', async (t) => {
  const help = fakeProcess(t, {})
  t.equal(await main(['--help'], help.proc), 0)
  t.equal(help.fake.stdout, USAGE)
  const wrong = fakeProcess(t, {})
  t.equal(await main(['--sesion-name', 'x'], wrong.proc), 64)
  t.match(wrong.fake.stderr, /^coze-token: Unknown option '--sesion-name'/)
  t.same(wrong.fake.exits, [64])
})

t.test('as a process: the token on stdout, nothing else', async (t) => {
  const emulator = await startEmulator(t)
  const run = await spawnEntry(new URL('../src/print-token.ts', import.meta.url), [], sidecarEnv(emulator), tempDir(t)).exited
  t.equal(run.code, 0)
  t.match(run.stdout, /^czs_[A-Za-z0-9]{64}\n$/)
})
