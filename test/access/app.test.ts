import { createPublicKey } from 'node:crypto'
import { chmodSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { jwtVerify } from 'jose'
import { buildApp } from '../../src/app.js'
import { ConfigError } from '../../src/errors.js'
import { consoleFingerprint } from '../../src/emulator/state.js'
import { FakeClock } from '../fixtures/clock.js'
import { tick, until } from '../fixtures/flush.js'
import { APP_ID, KID, sidecarEnv, startEmulator, startSidecar, tempDir } from '../fixtures/harness.js'
import { keys } from '../fixtures/keys.js'
import { LogCapture } from '../fixtures/logs.js'

const SECRET = 'a-caller-secret-0123456789abcdef'
const bearer = { authorization: `Bearer ${SECRET}` }

t.test('binding: a non-loopback address needs a caller secret, or an explicit opt-out that is warned about', async (t) => {
  const emulator = await startEmulator(t)
  for (const host of ['0.0.0.0', '10.1.2.3', '::', 'sidecar.example']) {
    const app = buildApp({ env: sidecarEnv(emulator, { HOST: host }), cwd: tempDir(t), logStream: new LogCapture() })
    const error = await app.ready().then(() => undefined, (e: ConfigError) => e)
    await app.close()
    t.type(error, ConfigError, host)
    t.equal(error?.setting, 'HOST')
    t.match(error?.message, /is not a loopback address, so anyone who can reach it could take tokens; set SIDECAR_AUTH_TOKEN \(or SIDECAR_AUTH_TOKEN_FILE\).*or set SIDECAR_ALLOW_UNAUTHENTICATED=true/)
  }
  for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost']) {
    await t.resolves(startSidecar(t, emulator, { HOST: host }), `${host} needs no secret`)
  }
  await t.resolves(startSidecar(t, emulator, { HOST: '0.0.0.0', SIDECAR_AUTH_TOKEN: SECRET }))
  const { logs } = await startSidecar(t, emulator, { HOST: '0.0.0.0', SIDECAR_ALLOW_UNAUTHENTICATED: 'true' })
  t.match(logs.lines.find((line) => line.level === 40 && String(line.msg).includes('SIDECAR_ALLOW_UNAUTHENTICATED'))?.msg,
    /anyone who can reach 0\.0\.0\.0:8080 can take tokens/)
})

t.test('caller secret settings are checked, and never echoed', async (t) => {
  const emulator = await startEmulator(t)
  const dir = tempDir(t)
  writeFileSync(join(dir, 'short'), 'tiny')
  const table: Array<[Record<string, string>, string, RegExp]> = [
    [{ SIDECAR_AUTH_TOKEN: 'tiny-secret' }, 'SIDECAR_AUTH_TOKEN', /at least|fewer than 16/],
    [{ SIDECAR_AUTH_TOKEN: 'has spaces in the middle' }, 'SIDECAR_AUTH_TOKEN', /invalid/],
    [{ SIDECAR_AUTH_TOKEN: SECRET, SIDECAR_AUTH_TOKEN_FILE: 'x' }, 'SIDECAR_AUTH_TOKEN', /set only one/],
    [{ SIDECAR_AUTH_TOKEN_FILE: 'missing' }, 'SIDECAR_AUTH_TOKEN_FILE', /cannot read missing \(ENOENT\)/],
    [{ SIDECAR_AUTH_TOKEN_FILE: join(dir, 'short') }, 'SIDECAR_AUTH_TOKEN_FILE', /must hold one secret of 16/],
    [{ SIDECAR_REQUIRE_HEADER: 'no colon' }, 'SIDECAR_REQUIRE_HEADER', /Metadata-Flavor: Coze/],
    [{ SIDECAR_ALLOWED_HOSTS: 'evil/path' }, 'SIDECAR_ALLOWED_HOSTS', /comma-separated/],
    [{ SIDECAR_EXCHANGE_RATE: '0' }, 'SIDECAR_EXCHANGE_RATE', /above 0/]
  ]
  for (const [env, setting, message] of table) {
    const app = buildApp({ env: sidecarEnv(emulator, env), cwd: dir, logStream: new LogCapture() })
    const error = await app.ready().then(() => undefined, (e: ConfigError) => e)
    await app.close()
    t.equal(error?.setting, setting, JSON.stringify(env))
    t.match(error?.message, message)
    t.notMatch(error?.message, /tiny-secret|has spaces/, 'the secret is not in the message')
  }
})

t.test('with a caller secret: token routes need it, probes do not, and a 401 gives nothing away', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { SIDECAR_AUTH_TOKEN: SECRET })
  for (const [method, url] of [['GET', '/token'], ['POST', '/token'], ['DELETE', '/token'], ['GET', '/token?format=text']] as const) {
    const denied = await app.inject({ method, url })
    t.equal(denied.statusCode, 401, `${method} ${url}`)
    t.same(denied.json(), { statusCode: 401, code: 'UNAUTHORIZED', error: 'Unauthorized', message: 'a valid Authorization: Bearer <caller secret> header is required' })
    t.equal(denied.headers['www-authenticate'], 'Bearer realm="coze-token-sidecar"')
    const wrong = await app.inject({ method, url, headers: { authorization: `Bearer ${SECRET}x` } })
    t.equal(wrong.statusCode, 401)
  }
  t.equal(emulator.state.exchangeCount, 0, 'nothing reached Coze')
  const allowed = await app.inject({ url: '/token', headers: bearer })
  t.equal(allowed.statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: '/token', headers: bearer })).statusCode, 204)
  t.equal((await app.inject('/healthz')).statusCode, 200)
  t.equal((await app.inject('/readyz')).statusCode, 200)
})

t.test('browser defences on token routes: rebinding hosts and cross-site requests', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { SIDECAR_ALLOWED_HOSTS: 'sidecar.internal, My-Pod' })
  const ask = (headers: Record<string, string>) => app.inject({ url: '/token', headers })
  t.match((await ask({ host: 'evil.example:8080' })).json(), { statusCode: 403, code: 'HOST_NOT_ALLOWED', message: /Host "evil.example" is not allowed.*SIDECAR_ALLOWED_HOSTS/ })
  t.equal((await ask({ host: 'sidecar.internal:8080' })).statusCode, 200, 'allow-listed')
  t.equal((await ask({ host: 'my-pod' })).statusCode, 200, 'case-insensitive')
  t.equal((await ask({ host: '127.0.0.1:8080' })).statusCode, 200)
  t.match((await ask({ host: 'localhost', 'sec-fetch-site': 'cross-site' })).json(), { statusCode: 403, code: 'CROSS_SITE_REQUEST' })
  t.match((await ask({ host: 'localhost:8080', origin: 'https://evil.example' })).json(), { statusCode: 403, code: 'CROSS_SITE_REQUEST' })
  t.equal((await ask({ host: 'localhost:8080', origin: 'http://localhost:8080' })).statusCode, 200, 'same origin')
  t.equal((await app.inject({ url: '/healthz', headers: { host: 'evil.example' } })).statusCode, 200, 'probes are not guarded')
})

t.test('SSRF defences: a required header, and no proxied requests', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { SIDECAR_REQUIRE_HEADER: 'Metadata-Flavor: Coze', SIDECAR_REJECT_FORWARDED: 'true' })
  t.match((await app.inject('/token')).json(), { statusCode: 403, code: 'MISSING_REQUIRED_HEADER', message: 'the header metadata-flavor: Coze is required' })
  t.equal((await app.inject({ url: '/token', headers: { 'metadata-flavor': 'Coze' } })).statusCode, 200)
  t.match((await app.inject({ url: '/token', headers: { 'metadata-flavor': 'Coze', 'x-forwarded-for': '10.0.0.1' } })).json(), { statusCode: 403, code: 'FORWARDED_REQUEST' })
})

t.test('the caller secret rotates from its file without a restart', async (t) => {
  const emulator = await startEmulator(t)
  const dir = tempDir(t)
  const file = join(dir, 'caller-secret')
  writeFileSync(file, `${SECRET}\n`)
  const clock = new FakeClock()
  const { app, logs } = await startSidecar(t, emulator, { SIDECAR_AUTH_TOKEN_FILE: file }, { clock })
  t.equal((await app.inject({ url: '/token', headers: bearer })).statusCode, 200)
  const rotated = 'rotated-secret-abcdefghijklmnop'
  writeFileSync(file, rotated)
  clock.advance(2_000)
  await until(() => logs.containing('callers reloaded').length === 1, 'the reload')
  t.equal((await app.inject({ url: '/token', headers: bearer })).statusCode, 401, 'the old secret no longer works')
  t.equal((await app.inject({ url: '/token', headers: { authorization: `Bearer ${rotated}` } })).statusCode, 200)
  writeFileSync(file, 'oops')
  clock.advance(2_000)
  await until(() => logs.containing('callers reload failed').length === 1, 'the failed reload')
  t.equal((await app.inject({ url: '/token', headers: { authorization: `Bearer ${rotated}` } })).statusCode, 200, 'a bad file keeps the last good secret')
  rmSync(file)
  clock.advance(2_000)
  await until(() => logs.containing('callers reload failed').length === 2, 'the reload of a removed file')
  t.match(logs.containing('callers reload failed')[1], /cannot read .*caller-secret \(ENOENT\)/)
  t.equal((await app.inject({ url: '/token', headers: { authorization: `Bearer ${rotated}` } })).statusCode, 200, 'a removed file keeps it too')
  t.equal(logs.containing(rotated).length, 0, 'the secret is never logged')
})

t.test('key rotation: SIGHUP or a changed file loads the new key; a broken one keeps the old', async (t) => {
  const emulator = await startEmulator(t)
  // The app knows both keys, as a Coze app can hold up to three during a rollover.
  emulator.state.registerApp({ appId: APP_ID, name: 'test app', audience: new URL(emulator.url).host, keys: [{ publicKey: keys.publicKey }, { publicKey: keys.otherPrivateKey }], authorizedAccounts: [] })
  const dir = tempDir(t)
  const configFile = join(dir, 'coze_oauth_config.json')
  const writeConfig = (kid: string, pem: string): void => writeFileSync(configFile, JSON.stringify({
    client_type: 'jwt', client_id: APP_ID, public_key_id: kid, private_key: pem, coze_api_base: emulator.url
  }), { mode: 0o600 })
  writeConfig(KID, keys.pkcs8)
  const clock = new FakeClock()
  const logs = new LogCapture()
  const app = buildApp({ env: { COZE_OAUTH_CONFIG: configFile }, cwd: dir, logStream: logs, clock })
  await app.ready()
  t.teardown(() => app.close())
  const signedWith = async () => {
    const jwt = emulator.state.records.at(-1)?.jwt as string
    return (await jwtVerify(jwt, keys.publicKey).then(() => 'first', () => 'other'))
  }
  const before = (await app.inject('/token')).json()
  t.equal(await signedWith(), 'first')

  const otherKid = consoleFingerprint(createPublicKey(keys.otherPrivateKey))
  writeConfig(otherKid, keys.otherPkcs8)
  clock.advance(2_000)
  await until(() => logs.containing('credential reloaded').length === 1, 'the reload after the file changed')
  t.equal((await app.inject('/token')).json().access_token, before.access_token, 'tokens already minted stay valid')
  t.equal((await app.inject('/token?session_name=new')).statusCode, 200)
  t.equal(await signedWith(), 'other', 'new exchanges use the new key')
  t.match(emulator.state.records.at(-1), { kid: otherKid })

  writeFileSync(configFile, '{ broken')
  t.equal(await app.credentials.reload(), false, 'SIGHUP with a broken file')
  t.match(logs.containing('credential reload failed'), [/COZE_OAUTH_CONFIG: .* is not JSON/])
  t.equal((await app.inject('/token?session_name=after-broken')).statusCode, 200, 'the last good key stays in service')

  writeConfig(KID, keys.pkcs8)
  t.equal(await app.credentials.reload(), true)
  await app.inject('/token?session_name=back')
  t.equal(await signedWith(), 'first')
  writeFileSync(configFile, JSON.stringify({ client_type: 'jwt', client_id: APP_ID, private_key: keys.pkcs8, coze_api_base: emulator.url }))
  t.equal(await app.credentials.reload(), false, 'a config file without a key id')
  t.match(logs.containing('credential reload failed').at(-1), /COZE_OAUTH_CONFIG: .* has no public_key_id .*or set COZE_KEY_ID/)
  const otherApp = JSON.stringify({ client_type: 'jwt', client_id: '42', public_key_id: 'not-this-keys-fingerprint', private_key: keys.pkcs8, coze_api_base: emulator.url })
  writeFileSync(configFile, otherApp)
  t.equal(await app.credentials.reload(), true)
  t.equal(app.credentials.select().tokens.size, 0, 'another app id: the old app\'s tokens are forgotten')
  t.equal(logs.lines.filter((line) => line.level === 40 && String(line.msg).includes('does not match')).length, 1, 'the new key\'s warnings are logged')
  await tick()
})

t.test('a key file readable by others is warned about at start', async (t) => {
  const emulator = await startEmulator(t)
  const dir = tempDir(t)
  const keyFile = join(dir, 'private_key.pem')
  writeFileSync(keyFile, keys.pkcs8)
  chmodSync(keyFile, 0o644)
  const open = await startSidecar(t, emulator, { COZE_PRIVATE_KEY: undefined, COZE_PRIVATE_KEY_FILE: keyFile })
  t.match(open.logs.containing('readable by group or others'), [/COZE_PRIVATE_KEY_FILE: .*private_key.pem holds the private key and is readable by group or others \(mode 0644\); `chmod 600` it/])
  chmodSync(keyFile, 0o600)
  const closed = await startSidecar(t, emulator, { COZE_PRIVATE_KEY: undefined, COZE_PRIVATE_KEY_FILE: keyFile })
  t.equal(closed.logs.containing('readable by group or others').length, 0)
})

t.test('Coze\'s quota is protected: new exchanges are rate-limited, cached tokens still served', async (t) => {
  const emulator = await startEmulator(t)
  const clock = new FakeClock()
  const { app } = await startSidecar(t, emulator, { SIDECAR_EXCHANGE_RATE: '0.5', SIDECAR_EXCHANGE_BURST: '2' }, { clock })
  t.equal((await app.inject('/token?session_name=a')).statusCode, 200)
  t.equal((await app.inject('/token?session_name=b')).statusCode, 200)
  const limited = await app.inject('/token?session_name=c')
  t.equal(limited.statusCode, 429)
  t.match(limited.json(), { code: 'EXCHANGE_RATE_LIMITED' })
  t.equal(limited.headers['retry-after'], '2')
  t.equal((await app.inject('/token?session_name=a')).statusCode, 200, 'a cached token is still served')
  t.equal(emulator.state.exchangeCount, 2)
  clock.advance(2_000)
  t.equal((await app.inject('/token?session_name=c')).statusCode, 200, 'the bucket refilled')
  t.equal(app.credentials.select().tokens.stats.rateLimited, 1)
})
