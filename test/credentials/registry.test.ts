/**
 * Named credentials, as a new user meets them: a folder of console files for two apps at two
 * Coze stand-ins (one playing coze.cn, one coze.com), selection by `app`, files added, broken,
 * edited and removed at run time, a static token, the wrong region diagnosed, an outbound proxy.
 */
import { createPublicKey } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createProxy } from 'proxy'
import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { ConfigError } from '../../src/errors.js'
import type { Env } from '../../src/config.js'
import { FakeClock } from '../fixtures/clock.js'
import { keys } from '../fixtures/keys.js'
import { APP_ID, KID, startEmulator, tempDir, type Emulator } from '../fixtures/harness.js'
import { LogCapture } from '../fixtures/logs.js'

const OTHER_APP_ID = '7480000000002'

/** The console's file for an app at `emulator`, as Coze downloads it. */
function consoleFile (emulator: Emulator, appId = APP_ID, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    client_type: 'jwt',
    client_id: appId,
    public_key_id: KID,
    private_key: keys.pkcs8,
    coze_www_base: 'https://www.coze.cn',
    coze_api_base: emulator.url,
    ...extra
  })
}

function writeSecret (path: string, content: string): void {
  writeFileSync(path, content)
  chmodSync(path, 0o600)
}

async function start (t: Test, env: Env, clock = new FakeClock(), cwd = tempDir(t)) {
  const logs = new LogCapture()
  const app = buildApp({ env: { LOG_LEVEL: 'info', ...env }, cwd, logStream: logs, clock })
  await app.ready()
  t.teardown(() => app.close())
  return { app, logs, clock }
}

async function startupError (t: Test, env: Env): Promise<ConfigError> {
  const app = buildApp({ env, cwd: tempDir(t), logStream: new LogCapture() })
  const error = await app.ready().then(() => undefined, (e: ConfigError) => e)
  await app.close().catch(() => {})
  if (error === undefined) throw new Error('it started')
  return error
}

/** Two stand-ins: `cn` knows APP_ID, `com` knows OTHER_APP_ID; both with the same key. */
async function twoRegions (t: Test) {
  const cn = await startEmulator(t)
  const com = await startEmulator(t)
  com.state.registerApp({ appId: OTHER_APP_ID, name: 'com app', audience: new URL(com.url).host, keys: [{ publicKey: keys.publicKey }] })
  const dir = tempDir(t)
  writeSecret(join(dir, 'cn.json'), consoleFile(cn))
  writeSecret(join(dir, 'com.json'), consoleFile(com, OTHER_APP_ID))
  return { cn, com, dir }
}

t.test('a folder of two console files: each app its own tokens, iss and aud; a default; unknown names refused', async (t) => {
  const { cn, com, dir } = await twoRegions(t)
  const { app, logs } = await start(t, { COZE_OAUTH_CONFIG_DIR: dir })
  t.same(app.credentials.names(), ['cn', 'com'].sort())

  const fromCn = await app.inject('/token?app=cn')
  const fromCom = await app.inject({ method: 'POST', url: '/token', payload: { app: 'com', session_name: 'u1' } })
  t.equal(fromCn.statusCode, 200)
  t.equal(fromCom.statusCode, 200)
  t.not(fromCn.json().access_token, fromCom.json().access_token)
  t.match(cn.state.records.at(-1), { appId: APP_ID, claims: { iss: APP_ID, aud: new URL(cn.url).host } })
  t.match(com.state.records.at(-1), { appId: OTHER_APP_ID, claims: { iss: OTHER_APP_ID, aud: new URL(com.url).host, session_name: 'u1' } })
  t.equal(cn.state.exchangeCount, 1)
  t.equal(com.state.exchangeCount, 1)

  const none = await app.inject('/token')
  t.equal(none.statusCode, 400)
  t.match(none.json(), { code: 'INVALID_PARAMETER', field: 'app', message: /several credentials are configured and SIDECAR_DEFAULT_APP names none \(configured: cn, com\)/ })
  const unknown = await app.inject('/token?app=eu')
  t.match(unknown.json(), { statusCode: 400, field: 'app', message: 'app "eu" is not configured (configured: cn, com)' })
  const malformed = await app.inject('/token?app=../x')
  t.match(malformed.json(), { statusCode: 400, field: 'app' })
  const deleted = await app.inject({ method: 'DELETE', url: '/token?app=com&session_name=u1' })
  t.equal(deleted.statusCode, 204)
  await app.inject({ method: 'POST', url: '/token', payload: { app: 'com', session_name: 'u1' } })
  t.equal(com.state.exchangeCount, 2, 'DELETE dropped com\'s token only')
  t.equal((await app.inject('/token?app=cn')).json().access_token, fromCn.json().access_token, 'cn\'s token stays cached')

  const metrics = (await app.inject('/metrics')).body
  t.match(metrics, /coze_token_exchanges_total\{app="com",variant="developer",outcome="ok"\} 2/)
  t.match(metrics, /coze_token_cached_tokens\{app="cn"\} 1/)
  t.ok(logs.lines.some((line) => line.app === 'com' && line.exchange !== undefined), 'exchange lines name the app')

  const withDefault = await start(t, { COZE_OAUTH_CONFIG_DIR: dir, SIDECAR_DEFAULT_APP: 'com' })
  t.equal((await withDefault.app.inject('/token')).statusCode, 200)
  t.match(com.state.records.at(-1), { appId: OTHER_APP_ID })
  const page = await withDefault.app.inject('/')
  t.match(page.body, /<select id="app-select" name="app"><option value="cn">cn<\/option><option value="com" selected>com<\/option><\/select>/)
  t.match((await withDefault.app.inject('/?app=cn')).body, new RegExp(`<code id="app-id">${APP_ID}</code>`))
})

t.test('the default app from the environment and a folder together; a clash of names refuses to start', async (t) => {
  const { cn, dir } = await twoRegions(t)
  const env = { COZE_APP_ID: APP_ID, COZE_KEY_ID: KID, COZE_PRIVATE_KEY: keys.pkcs8, COZE_API_BASE: cn.url }
  const { app } = await start(t, { ...env, COZE_OAUTH_CONFIG_DIR: dir })
  t.same(app.credentials.names(), ['cn', 'com', 'default'])
  t.equal((await app.inject('/token')).statusCode, 200, 'a credential named default is the default')
  writeSecret(join(dir, 'default.json'), consoleFile(cn))
  const clash = await startupError(t, { ...env, COZE_OAUTH_CONFIG_DIR: dir })
  t.match(clash, { setting: 'COZE_OAUTH_CONFIG_DIR', message: /default\.json: the name "default" is taken/ })
})

t.test('a broken file at start refuses to start, naming the file and the field', async (t) => {
  const { dir } = await twoRegions(t)
  const table: Array<[string, string, RegExp]> = [
    ['typo.json', JSON.stringify({ client_type: 'jwt', client_id: APP_ID, publickey_id: KID, private_key: keys.pkcs8 }),
      /typo\.json has no public_key_id \(the public key fingerprint, 公钥指纹\) \(it has "publickey_id", which the console does not write: a typo\?\)/],
    ['nokey.json', JSON.stringify({ client_type: 'jwt', client_id: APP_ID, public_key_id: KID }), /nokey\.json has no private_key/],
    ['noid.json', JSON.stringify({ client_type: 'jwt', public_key_id: KID, private_key: keys.pkcs8 }), /noid\.json has no client_id/],
    ['badkey.json', JSON.stringify({ client_type: 'jwt', client_id: APP_ID, public_key_id: KID, private_key: keys.spki }), /badkey\.json: private_key is a public key/],
    ['badbase.json', JSON.stringify({ client_type: 'jwt', client_id: APP_ID, public_key_id: KID, private_key: keys.pkcs8, coze_api_base: 'ftp://x' }), /badbase\.json: coze_api_base must be http\(s\)/],
    ['badttl.json', JSON.stringify({ client_type: 'jwt', client_id: APP_ID, public_key_id: KID, private_key: keys.pkcs8, token_ttl: 0 }), /badttl\.json: token_ttl is invalid/],
    ['both.json', JSON.stringify({ client_type: 'jwt', client_id: APP_ID, public_key_id: KID, private_key: keys.pkcs8, account_id: '1', enterprise_id: 'e' }), /both\.json: enterprise_id is set together/],
    ['dots.json', JSON.stringify({ client_type: 'jwt', client_id: APP_ID, public_key_id: KID, private_key: keys.pkcs8, enterprise_id: '..' }), /dots\.json: enterprise_id is invalid/],
    ['web.json', JSON.stringify({ client_type: 'web', client_id: APP_ID }), /web\.json has client_type "web", not "jwt"/],
    ['notjson.json', '{', /notjson\.json is not JSON/],
    ['bad name.json', consoleFile({ url: 'http://127.0.0.1:1' } as Emulator), /"bad name" is not a credential name/],
    ['static.json', JSON.stringify({ client_type: 'static_token' }), /static\.json: a static_token file needs exactly one of access_token and access_token_file/],
    ['short.json', JSON.stringify({ client_type: 'static_token', access_token: 'x' }), /short\.json: the access token must be 8 to 4096 printable characters/],
    ['date.json', JSON.stringify({ client_type: 'static_token', access_token: 'pat_0123456789', expires_at: 'soon' }), /date\.json: expires_at must be a date/]
  ]
  for (const [name, content, message] of table) {
    const single = join(tempDir(t), 'creds')
    mkdirSync(single)
    writeSecret(join(single, name), content)
    const error = await startupError(t, { COZE_OAUTH_CONFIG_DIR: single })
    t.equal(error.setting, 'COZE_OAUTH_CONFIG_DIR', name)
    t.match(error.message, message, name)
    t.notMatch(error.message, /\n/, `${name}: one line`)
    t.notOk(error.message.includes(keys.pkcs8.split('\n')[1] as string), `${name}: no key in the message`)
  }
  t.match(await startupError(t, { COZE_OAUTH_CONFIG_DIR: join(dir, 'missing') }), { setting: 'COZE_OAUTH_CONFIG_DIR', message: /cannot read the folder .*missing \(ENOENT\)/ })
  const empty = join(tempDir(t), 'empty')
  mkdirSync(empty)
  t.match(await startupError(t, { COZE_OAUTH_CONFIG_DIR: empty }), { message: /holds no NAME\.json credential file/ })
  t.match(await startupError(t, { COZE_OAUTH_CONFIG_DIR: dir, SIDECAR_DEFAULT_APP: 'eu' }), { setting: 'SIDECAR_DEFAULT_APP', message: /names "eu", which is not configured \(configured: cn, com\)/ })
  t.match(await startupError(t, { COZE_OAUTH_CONFIG_DIR: dir, COZE_ALTERNATE_API_BASE: 'ftp://x' }), { setting: 'COZE_ALTERNATE_API_BASE', message: /must be http\(s\)/ })
})

t.test('hot reload of the folder: added, broken, edited to the other region, removed; the timer polls', async (t) => {
  const { cn, com, dir } = await twoRegions(t)
  rmSync(join(dir, 'com.json'))
  const { app, logs, clock } = await start(t, { COZE_OAUTH_CONFIG_DIR: dir })
  t.equal((await app.inject('/token')).statusCode, 200, 'one credential: it is the default')

  writeSecret(join(dir, 'com.json'), consoleFile(com, OTHER_APP_ID))
  clock.advance(2_000)
  await until(() => logs.containing('credential added').length === 1)
  t.match(logs.containing('credential added')[0], /"app":"com".*"app_id":"7480000000002"/)
  t.equal((await app.inject('/token?app=com')).statusCode, 200)
  t.equal((await app.inject('/token')).statusCode, 400, 'two now, and no default')

  writeSecret(join(dir, 'cn.json'), '{ "client_type": "jwt", broken')
  t.equal(await app.credentials.poll(), false)
  t.equal(await app.credentials.poll(), true, 'an unchanged broken file is not reported again')
  const failures = logs.containing('credential reload failed')
  t.equal(failures.length, 1, 'one error line')
  t.match(failures[0], /"file":".*cn\.json".*is not JSON/)
  t.equal((await app.inject('/token?app=cn&session_name=after-break')).statusCode, 200, 'the last good version stays in service')

  // The console file of the same app, now registered at the other stand-in: base and audience together.
  com.state.registerApp({ appId: APP_ID, name: 'moved', audience: new URL(com.url).host, keys: [{ publicKey: keys.publicKey }] })
  writeSecret(join(dir, 'cn.json'), consoleFile(com))
  t.equal(await app.credentials.poll(), true)
  const moved = await app.inject('/token?app=cn')
  t.equal(moved.statusCode, 200)
  t.match(com.state.records.at(-1), { appId: APP_ID, claims: { aud: new URL(com.url).host } }, 'the new base and its audience')
  t.equal(cn.state.records.filter((record) => record.claims?.session_name === undefined).length, 1, 'nothing more went to the old base')

  const junk = join(dir, 'new app.json')
  writeSecret(junk, '{}')
  t.equal(await app.credentials.poll(), false)
  t.match(logs.containing('credential file refused').at(-1), /is not a credential name/)
  rmSync(junk)

  rmSync(join(dir, 'com.json'))
  t.equal(await app.credentials.poll(), true)
  t.match(logs.containing('credential removed'), [/"app":"com"/])
  t.match((await app.inject('/token?app=com')).json(), { statusCode: 400, field: 'app' })

  rmSync(dir, { recursive: true })
  t.equal(await app.credentials.reload(), false, 'SIGHUP with the folder gone')
  t.match(logs.containing('cannot list the credentials folder'), [/ENOENT/])
  t.equal((await app.inject('/token?app=cn')).statusCode, 200, 'the credentials stay as they were')
})

t.test('static tokens: served as configured, no session selectors, an expiry honoured', async (t) => {
  const dir = tempDir(t)
  const tokenFile = join(dir, 'sat.txt')
  writeSecret(tokenFile, 'sat_0123456789abcdefghij\n')
  writeSecret(join(dir, 'pat.json'), JSON.stringify({ client_type: 'static_token', access_token: 'pat_0123456789abcdefghij', coze_api_base: 'https://api.coze.com' }))
  writeSecret(join(dir, 'sat.json'), JSON.stringify({ client_type: 'static_token', access_token_file: 'sat.txt', expires_at: '2030-01-01T00:00:00Z' }))
  const clock = new FakeClock(Date.parse('2029-12-31T23:59:00Z'))
  const { app } = await start(t, { COZE_OAUTH_CONFIG_DIR: dir }, clock)

  const pat = await app.inject('/token?app=pat')
  t.same(pat.json(), { access_token: 'pat_0123456789abcdefghij', token_type: 'Bearer' }, 'no expiry is invented')
  t.equal((await app.inject('/token?app=pat&format=text')).body, 'pat_0123456789abcdefghij')
  const sat = await app.inject({ method: 'POST', url: '/token', payload: { app: 'sat' } })
  t.same(sat.json(), { access_token: 'sat_0123456789abcdefghij', token_type: 'Bearer', expires_in: 1893456000, expires_at: '2030-01-01T00:00:00.000Z' })
  for (const [query, field] of [['session_name=u1', 'session_name'], ['account_id=1', 'account_id'], ['ttl=60', 'ttl'], ['device_id=d', 'device_id']] as const) {
    const refused = await app.inject(`/token?app=pat&${query}`)
    t.match(refused.json(), { statusCode: 400, field, message: new RegExp(`^${field} cannot be used with app "pat": it is a static access token, with no session isolation`) }, field)
  }
  t.equal((await app.inject({ method: 'DELETE', url: '/token?app=pat' })).statusCode, 204)
  const status = (await app.inject('/status')).json()
  t.same(status.credentials.pat, { kind: 'static', api_base: 'https://api.coze.com', cached_tokens: 1, default_token: { stale: false } })
  t.same(status.credentials.sat.default_token, { expires_at: '2030-01-01T00:00:00.000Z', stale: false })
  t.notMatch(JSON.stringify(status), /pat_|sat_/, 'never a token')
  const renewed = await app.inject('/token?app=pat&renew=true')
  t.equal(renewed.json().access_token, 'pat_0123456789abcdefghij', 'renew of a static token: the token as configured')
  const page = await app.inject('/?app=pat')
  t.match(page.body, /<span id="app-id">a static access token<\/span>/)
  t.match(page.body, /not known \(a static token\)/)

  writeSecret(tokenFile, 'sat_abcdefghij0123456789')
  t.equal(await app.credentials.poll(), true, 'the token file is watched too')
  t.equal((await app.inject('/token?app=sat&format=text')).body, 'sat_abcdefghij0123456789')

  clock.advance(120_000)
  const expired = await app.inject('/token?app=sat')
  t.match(expired.json(), { statusCode: 503, code: 'CREDENTIAL_EXPIRED', message: /the static token of credential sat expired at 2030-01-01T00:00:00.000Z; put a new one in .*sat\.txt/ })
  t.notMatch(expired.body, /sat_/)
  const metrics = (await app.inject('/metrics')).body
  t.match(metrics, /coze_token_default_expiry_seconds\{app="pat"\} Nan/, 'prom-client\'s spelling of NaN')
})

t.test('the wrong region: the other region is asked once per key, the error says where the key is', async (t) => {
  // The app is configured for `cn`, but its key is registered at `com` only.
  const cn = await startEmulator(t)
  const com = await startEmulator(t)
  cn.state.registerApp({ appId: OTHER_APP_ID, name: 'other', audience: new URL(cn.url).host, keys: [{ publicKey: createPublicKey(keys.otherPrivateKey) }] })
  com.state.registerApp({ appId: OTHER_APP_ID, name: 'other', audience: new URL(com.url).host, keys: [{ publicKey: keys.publicKey }] })
  const env = { COZE_APP_ID: OTHER_APP_ID, COZE_KEY_ID: KID, COZE_PRIVATE_KEY: keys.pkcs8, COZE_API_BASE: cn.url }
  const { app, logs } = await start(t, { ...env, COZE_ALTERNATE_API_BASE: com.url })

  const first = await app.inject('/token')
  t.equal(first.statusCode, 502)
  t.match(first.json(), {
    code: 'COZE_INVALID_CLIENT',
    message: new RegExp(`this key is registered at ${com.url}, not at ${cn.url}: set COZE_API_BASE to ${com.url}`),
    coze: { error_code: 'invalid_client' }
  })
  t.equal(com.state.exchangeCount, 1, 'one probe')
  t.match(com.state.records.at(-1), { claims: { aud: new URL(com.url).host } }, 'with the other region\'s audience')
  await app.inject('/token?session_name=again')
  t.equal(com.state.exchangeCount, 1, 'never per request')
  t.equal(cn.state.exchangeCount, 2, 'and the configured base is still the one asked: no switching')
  t.match(app.credentials.select().wrongRegion, { configured: cn.url, registeredAt: com.url, setting: 'COZE_API_BASE' })
  t.match(logs.containing('does not know this key'), [/"registered_at":"http:\/\/127\.0\.0\.1:\d+".*"setting":"COZE_API_BASE"/])
  const ready = await app.inject('/readyz?strict=true')
  t.match(ready.json(), { code: 'NOT_READY', message: /this key is registered at/ })
  t.match((await app.inject('/status')).json(), { credentials: { default: { wrong_region: { registered_at: com.url, setting: 'COZE_API_BASE' } } } })
  t.match((await app.inject('/')).body, /this key is registered at/)

  const off = await start(t, { ...env, COZE_ALTERNATE_API_BASE: 'off' })
  t.notMatch((await off.app.inject('/token')).json().message, /registered at/)
  t.equal(com.state.exchangeCount, 1, 'off: no probe')
  const unknownElsewhere = await start(t, { ...env, COZE_KEY_ID: 'nobodys-kid', COZE_ALTERNATE_API_BASE: com.url })
  t.notMatch((await unknownElsewhere.app.inject('/token')).json().message, /registered at/, 'a key neither region knows: no hint')
})

t.test('the other region by default: coze.cn and coze.com point at each other', async (t) => {
  const { alternateBase } = await import('../../src/credentials/credential.js')
  t.equal(alternateBase('https://api.coze.cn', undefined), 'https://api.coze.com')
  t.equal(alternateBase('https://api.coze.com', undefined), 'https://api.coze.cn')
  t.equal(alternateBase('http://127.0.0.1:9', undefined), undefined, 'a private base has no other region')
  t.equal(alternateBase('https://api.coze.cn', 'off'), undefined)
  t.equal(alternateBase('https://api.coze.cn', 'https://api.coze.cn/'), undefined, 'not itself')
  t.equal(alternateBase('https://api.coze.cn', 'http://127.0.0.1:9/'), 'http://127.0.0.1:9')
})

t.test('an outbound proxy: every call to Coze goes through HTTP_PROXY, except NO_PROXY hosts', async (t) => {
  const emulator = await startEmulator(t)
  const seen: string[] = []
  const proxy: Server = createProxy(createServer())
  proxy.on('connect', (request: { url?: string }) => { seen.push(`CONNECT ${String(request.url)}`) })
  proxy.on('request', (request: { method?: string, url?: string }) => { seen.push(`${String(request.method)} ${String(request.url)}`) })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  // CONNECT tunnels leave the server's bookkeeping, so the sockets are tracked here for the teardown.
  const sockets = new Set<{ destroy: () => void }>()
  proxy.on('connection', (socket: { destroy: () => void, once: (event: string, fn: () => void) => void }) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  t.teardown(() => new Promise((resolve) => {
    proxy.close(resolve)
    for (const socket of sockets) socket.destroy()
  }))
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`
  const env = { COZE_APP_ID: APP_ID, COZE_KEY_ID: KID, COZE_PRIVATE_KEY: keys.pkcs8, COZE_API_BASE: emulator.url }

  const viaProxy = await start(t, { ...env, http_proxy: proxyUrl })
  t.equal((await viaProxy.app.inject('/token')).statusCode, 200)
  t.equal(seen.length, 1, 'the exchange went through the proxy')
  t.match(seen[0], new RegExp(new URL(emulator.url).host))
  t.equal(emulator.state.exchangeCount, 1)

  const bypass = await start(t, { ...env, HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' })
  t.equal((await bypass.app.inject('/token')).statusCode, 200)
  t.equal(seen.length, 1, 'NO_PROXY: straight to Coze')
  t.equal(emulator.state.exchangeCount, 2)

  const broken = await start(t, { ...env, HTTP_PROXY: 'http://127.0.0.1:1', SIDECAR_RETRY_ATTEMPTS: '1' })
  const refused = await broken.app.inject('/token')
  t.match(refused.json(), { statusCode: 503, code: 'UPSTREAM_UNREACHABLE' }, 'a proxy that is down is Coze unreachable, not a 500')
})

t.test('the default app\'s console file and the folder at run time: removed, a name taken, several without a default', async (t) => {
  const { cn, dir } = await twoRegions(t)
  const cwd = tempDir(t)
  writeSecret(join(cwd, 'coze_oauth_config.json'), consoleFile(cn))
  const { app, logs } = await start(t, { COZE_OAUTH_CONFIG_DIR: dir }, new FakeClock(), cwd)
  t.same(app.credentials.names(), ['cn', 'com', 'default'])

  writeSecret(join(dir, 'default.json'), consoleFile(cn))
  t.equal(await app.credentials.poll(), false)
  t.match(logs.containing('is taken'), [/credential refused: the name \\"default\\" is taken; rename the file/])
  rmSync(join(dir, 'default.json'))

  rmSync(join(cwd, 'coze_oauth_config.json'))
  t.equal(await app.credentials.poll(), true)
  t.match(logs.containing('no longer configured'), [/"app":"default"/])
  t.same(app.credentials.names(), ['cn', 'com'])
  t.equal((await app.inject('/token')).json().field, 'app', 'no default any more')
  const page = await app.inject('/')
  t.match(page.body, /<option value="cn" selected>/, 'the page shows the first, with a picker')

  const ready = await app.inject('/readyz?strict=true')
  t.equal(ready.statusCode, 200, 'with no default, every credential is checked')
  cn.state.setEnabled(APP_ID, false)
  await app.inject({ method: 'DELETE', url: '/token?app=cn' })
  const notReady = await app.inject('/readyz?strict=true')
  t.match(notReady.json(), { statusCode: 503, message: /of cn: Coze denied access/ })
})

t.test('files with bad fields and unreadable token files', async (t) => {
  const single = tempDir(t)
  writeSecret(join(single, 'ctl.json'), JSON.stringify({ client_type: 'jwt', client_id: '1\u0085', public_key_id: KID, private_key: keys.pkcs8 }))
  t.match(await startupError(t, { COZE_OAUTH_CONFIG_DIR: single }), { message: /ctl\.json: client_id is invalid \(control characters, or too long\)/ })
  rmSync(join(single, 'ctl.json'))
  writeSecret(join(single, 'gone.json'), JSON.stringify({ client_type: 'static_token', access_token_file: 'nowhere.txt' }))
  t.match(await startupError(t, { COZE_OAUTH_CONFIG_DIR: single }), { message: /gone\.json: cannot read access_token_file .*nowhere\.txt \(ENOENT\)/ })
})

async function until (done: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
