import { readFileSync, writeFileSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../src/app.js'
import type { Env } from '../src/config.js'
import type { JwtSpec } from '../src/credentials/sources.js'
import { ConfigError } from '../src/errors.js'
import { keys, pemBody } from './fixtures/keys.js'
import { KID, tempDir } from './fixtures/harness.js'
import { LogCapture } from './fixtures/logs.js'

const VALID: Env = { COZE_APP_ID: '1127900106117', COZE_KEY_ID: KID, COZE_PRIVATE_KEY: keys.pkcs8 }

/** Starts an app with `env` in `cwd` and returns the start-up error. */
async function startupError (env: Env, cwd: string): Promise<ConfigError> {
  const app = buildApp({ env, cwd, logStream: new LogCapture() })
  try {
    await app.ready()
  } catch (error) {
    await app.close().catch(() => {})
    return error as ConfigError
  }
  await app.close()
  throw new Error('the app started')
}

/** Starts an app and returns its `default` credential's spec (as `config`) and its logs. */
async function startedConfig (env: Env, cwd: string) {
  const logs = new LogCapture()
  const app = buildApp({ env, cwd, logStream: logs })
  await app.ready()
  const credential = app.credentials.select('default')
  const config = { ...app.config, ...(credential.spec as JwtSpec), defaultRequest: credential.defaultRequest, oauthConfigFile: credential.spec.files.find((file) => file.endsWith('.json')) }
  await app.close()
  return { config, logs }
}

t.test('every bad setting stops the start with one line naming the setting and the fix', async (t) => {
  const dir = tempDir(t)
  const file = (name: string, content: string): string => {
    const path = join(dir, name)
    writeFileSync(path, content)
    return path
  }
  const table: Array<[string, Env, string, RegExp]> = [
    ['app id missing', { ...VALID, COZE_APP_ID: undefined }, 'COZE_APP_ID', /is required: set it to the OAuth app id/],
    ['app id blank', { ...VALID, COZE_APP_ID: '  ' }, 'COZE_APP_ID', /is required/],
    ['key id missing', { ...VALID, COZE_KEY_ID: undefined }, 'COZE_KEY_ID', /is required: set it to the public key fingerprint/],
    ['key missing', { ...VALID, COZE_PRIVATE_KEY: undefined }, 'COZE_PRIVATE_KEY_FILE', /is required: set it to the path of private_key.pem/],
    ['key file unreadable', { ...VALID, COZE_PRIVATE_KEY: undefined, COZE_PRIVATE_KEY_FILE: 'nope.pem' }, 'COZE_PRIVATE_KEY_FILE', /cannot read .*nope\.pem \(ENOENT\)/],
    ['key file is a directory', { ...VALID, COZE_PRIVATE_KEY: undefined, COZE_PRIVATE_KEY_FILE: dir }, 'COZE_PRIVATE_KEY_FILE', /cannot read .* \(EISDIR\)/],
    ['both key settings', { ...VALID, COZE_PRIVATE_KEY_FILE: 'x.pem' }, 'COZE_PRIVATE_KEY', /set only one/],
    ['a public key', { ...VALID, COZE_PRIVATE_KEY: keys.spki }, 'COZE_PRIVATE_KEY', /is a public key/],
    ['an EC key', { ...VALID, COZE_PRIVATE_KEY: keys.ec }, 'COZE_PRIVATE_KEY', /is an EC key; .* needs an RSA key/],
    ['an Ed25519 key', { ...VALID, COZE_PRIVATE_KEY: keys.ed25519 }, 'COZE_PRIVATE_KEY', /is an ED25519 key/],
    ['an encrypted PKCS#8 key', { ...VALID, COZE_PRIVATE_KEY: keys.encrypted }, 'COZE_PRIVATE_KEY', /encrypted with a passphrase; .*openssl pkey/],
    ['an encrypted PKCS#1 key', { ...VALID, COZE_PRIVATE_KEY: keys.encryptedPkcs1 }, 'COZE_PRIVATE_KEY', /encrypted/],
    ['RSA-1024', { ...VALID, COZE_PRIVATE_KEY: keys.rsa1024 }, 'COZE_PRIVATE_KEY', /RSA-1024; RS256 needs at least 2048 bits/],
    ['garbage', { ...VALID, COZE_PRIVATE_KEY: 'hello' }, 'COZE_PRIVATE_KEY', /is not a PEM private key/],
    ['a truncated PEM', { ...VALID, COZE_PRIVATE_KEY: keys.pkcs8.slice(0, 200) + '\n-----END PRIVATE KEY-----\n' }, 'COZE_PRIVATE_KEY', /could not be parsed/],
    ['garbage in the key file', { ...VALID, COZE_PRIVATE_KEY: undefined, COZE_PRIVATE_KEY_FILE: file('garbage.pem', 'not a key') }, 'COZE_PRIVATE_KEY_FILE', /is not a PEM private key/],
    ['TTL 0', { ...VALID, COZE_TOKEN_TTL: '0' }, 'COZE_TOKEN_TTL', /must be >= 1.*from 1 to 86399/],
    ['TTL 86400', { ...VALID, COZE_TOKEN_TTL: '86400' }, 'COZE_TOKEN_TTL', /must be <= 86399/],
    ['TTL not a number', { ...VALID, COZE_TOKEN_TTL: 'fifteen minutes' }, 'COZE_TOKEN_TTL', /must be integer/],
    ['base not a URL', { ...VALID, COZE_API_BASE: 'api.coze.cn' }, 'COZE_API_BASE', /is not a URL: set it to https:\/\/api.coze.cn/],
    ['base ftp', { ...VALID, COZE_API_BASE: 'ftp://api.coze.cn' }, 'COZE_API_BASE', /must be http\(s\), not ftp/],
    ['base with a query', { ...VALID, COZE_API_BASE: 'https://api.coze.cn/?x=1' }, 'COZE_API_BASE', /must not contain credentials, a query or a fragment/],
    ['base with credentials', { ...VALID, COZE_API_BASE: 'https://u:p@api.coze.cn' }, 'COZE_API_BASE', /credentials/],
    ['account and enterprise', { ...VALID, COZE_ACCOUNT_ID: '1', COZE_ENTERPRISE_ID: 'e' }, 'COZE_ENTERPRISE_ID', /set only one/],
    ['account not numeric', { ...VALID, COZE_ACCOUNT_ID: 'abc' }, 'COZE_ACCOUNT_ID', /numeric Coze account/],
    // A caller secret that is set but blank ($(cat missing-file), an empty Secret key) must not
    // mean "no authentication".
    ['app id with a C1 control', { ...VALID, COZE_APP_ID: '11279\u0085001' }, 'COZE_APP_ID', /is invalid/],
    ['key id with a bidi override', { ...VALID, COZE_KEY_ID: 'kid\u202Edi' }, 'COZE_KEY_ID', /is invalid/],
    ['caller secret empty', { ...VALID, SIDECAR_AUTH_TOKEN: '' }, 'SIDECAR_AUTH_TOKEN', /is set but blank/],
    ['caller secret blank', { ...VALID, SIDECAR_AUTH_TOKEN: '   ' }, 'SIDECAR_AUTH_TOKEN', /is set but blank/],
    ['caller secret file blank', { ...VALID, SIDECAR_AUTH_TOKEN_FILE: ' ' }, 'SIDECAR_AUTH_TOKEN_FILE', /is set but blank/],
    ['caller secret file empty', { ...VALID, SIDECAR_AUTH_TOKEN_FILE: '' }, 'SIDECAR_AUTH_TOKEN_FILE', /is set but blank/],
    ['enterprise id a dot segment', { ...VALID, COZE_ENTERPRISE_ID: '..' }, 'COZE_ENTERPRISE_ID', /not \. or \.\./],
    ['port out of range', { ...VALID, PORT: '70000' }, 'PORT', /from 0 to 65535/],
    ['log level', { ...VALID, LOG_LEVEL: 'verbose' }, 'LOG_LEVEL', /one of fatal, error, warn, info, debug, trace, silent/],
    ['deadline 0', { ...VALID, SIDECAR_REQUEST_DEADLINE: '0' }, 'SIDECAR_REQUEST_DEADLINE', /above 0/],
    ['config file missing', { ...VALID, COZE_OAUTH_CONFIG: 'missing.json' }, 'COZE_OAUTH_CONFIG', /cannot read .*missing\.json \(ENOENT\)/],
    ['config file not JSON', { COZE_OAUTH_CONFIG: file('bad.json', '{ client_type: jwt') }, 'COZE_OAUTH_CONFIG', /is not JSON/],
    ['config file an array', { COZE_OAUTH_CONFIG: file('array.json', '[]') }, 'COZE_OAUTH_CONFIG', /not a JSON object/],
    ['config file for a web app', { COZE_OAUTH_CONFIG: file('web.json', JSON.stringify({ client_type: 'web', client_id: '1' })) }, 'COZE_OAUTH_CONFIG', /client_type "web", not "jwt"/],
    ['config file without client_type', { COZE_OAUTH_CONFIG: file('none.json', '{}') }, 'COZE_OAUTH_CONFIG', /client_type missing, not "jwt"/],
    ['config file with a numeric id', { COZE_OAUTH_CONFIG: file('num.json', JSON.stringify({ client_type: 'jwt', client_id: 1 })) }, 'COZE_OAUTH_CONFIG', /client_id must be a string/],
    ['config file with a bad key', { COZE_OAUTH_CONFIG: file('badkey.json', JSON.stringify({ client_type: 'jwt', client_id: '1', public_key_id: 'k', private_key: keys.spki })) }, 'COZE_OAUTH_CONFIG', /private_key is a public key/]
  ]
  for (const [name, env, setting, message] of table) {
    const error = await startupError(env, dir)
    t.type(error, ConfigError, name)
    t.equal(error.setting, setting, name)
    t.match(error.message, new RegExp(`^${setting}: `), `${name}: the line starts with the setting`)
    t.match(error.message, message, name)
    t.notMatch(error.message, /\n/, `${name}: one line`)
    t.notOk(error.message.includes(pemBody(keys.pkcs8).slice(0, 40)), `${name}: no key in the message`)
  }
})

t.test('nothing configured at all: one line that lists the settings and names the demo switch', async (t) => {
  const error = await startupError({ PORT: '9000' }, tempDir(t))
  t.equal(error.setting, 'COZE_APP_ID')
  t.match(error.message, /^COZE_APP_ID: no Coze app is configured: set COZE_APP_ID, COZE_KEY_ID and COZE_PRIVATE_KEY_FILE .*COZE_OAUTH_CONFIG.*SIDECAR_DEMO=true/)
  t.notMatch(error.message, /\n/)
})

t.test('PKCS#8 and PKCS#1 keys, from a file or inline, with real or escaped newlines', async (t) => {
  const dir = tempDir(t)
  const pkcs1File = join(dir, 'rsa.pem')
  writeFileSync(pkcs1File, keys.pkcs1, { mode: 0o600 })
  for (const [name, env] of [
    ['PKCS#8 inline', VALID],
    ['PKCS#1 inline', { ...VALID, COZE_PRIVATE_KEY: keys.pkcs1 }],
    ['escaped newlines', { ...VALID, COZE_PRIVATE_KEY: keys.pkcs8.replaceAll('\n', '\\n') }],
    ['PKCS#1 file, relative path', { ...VALID, COZE_PRIVATE_KEY: undefined, COZE_PRIVATE_KEY_FILE: 'rsa.pem' }]
  ] as const) {
    const { config, logs } = await startedConfig(env, dir)
    t.equal(config.privateKey.asymmetricKeyType, 'rsa', name)
    t.equal(logs.containing('does not match').length, 0, `${name}: the fingerprint matches`)
  }
  const { config } = await startedConfig({ ...VALID, COZE_PRIVATE_KEY: undefined, COZE_PRIVATE_KEY_FILE: 'rsa.pem' }, dir)
  t.equal(config.privateKeyFile, pkcs1File)
})

t.test('defaults, and what is derived from the base URL', async (t) => {
  const dir = tempDir(t)
  const { config } = await startedConfig(VALID, dir)
  t.match(config, {
    apiBase: 'https://api.coze.cn',
    audience: 'api.coze.cn',
    defaultRequest: { ttl: 900 },
    host: '127.0.0.1',
    port: 8080,
    logLevel: 'info',
    requestDeadlineMs: 5000,
    httpTimeoutMs: 5000,
    cacheMax: 10000,
    retry: { maxAttempts: 4, budgetMs: 30000 }
  })
  const com = await startedConfig({ ...VALID, COZE_API_BASE: 'https://api.coze.com/' }, dir)
  t.equal(com.config.apiBase, 'https://api.coze.com')
  t.equal(com.config.audience, 'api.coze.com')
  const local = await startedConfig({ ...VALID, COZE_API_BASE: 'http://127.0.0.1:8090' }, dir)
  t.equal(local.config.audience, '127.0.0.1:8090', 'the port is part of aud, as coze-py and coze-go send it')
  const explicit = await startedConfig({ ...VALID, COZE_JWT_AUDIENCE: 'api.coze.cn', COZE_TOKEN_TTL: '3600', COZE_ACCOUNT_ID: '42' }, dir)
  t.equal(explicit.config.audience, 'api.coze.cn')
  t.same(explicit.config.defaultRequest, { ttl: 3600, accountId: '42' })
})

t.test('a key id that is not the key\'s fingerprint is a warning, not an error', async (t) => {
  const { logs } = await startedConfig({ ...VALID, COZE_KEY_ID: 'someone-elses-kid' }, tempDir(t))
  const warning = logs.lines.find((line) => String(line.msg).includes('does not match'))
  t.equal(warning?.level, 40)
  t.match(warning?.msg, new RegExp(KID))
})

t.test('coze_oauth_config.json: the console\'s file is all a user needs; the environment wins', async (t) => {
  const dir = tempDir(t)
  const consoleFile = {
    client_type: 'jwt',
    client_id: '1127900106117',
    public_key_id: KID,
    private_key: keys.pkcs8,
    coze_www_base: 'https://www.coze.com',
    coze_api_base: 'https://api.coze.com'
  }
  writeFileSync(join(dir, 'coze_oauth_config.json'), JSON.stringify(consoleFile))
  const found = await startedConfig({}, dir)
  t.match(found.config, { appId: '1127900106117', keyId: KID, apiBase: 'https://api.coze.com', audience: 'api.coze.com' })
  t.equal(found.config.oauthConfigFile, join(dir, 'coze_oauth_config.json'))

  const overridden = await startedConfig({ COZE_APP_ID: '42', COZE_API_BASE: 'https://api.coze.cn' }, dir)
  t.match(overridden.config, { appId: '42', keyId: KID, apiBase: 'https://api.coze.cn' })

  const keyFile = join(dir, 'other.pem')
  writeFileSync(keyFile, keys.otherPkcs8)
  const otherKey = await startedConfig({ COZE_PRIVATE_KEY_FILE: keyFile }, dir)
  t.ok(otherKey.config.privateKey.equals(keys.otherPrivateKey), 'COZE_PRIVATE_KEY_FILE replaces private_key')

  const named = join(tempDir(t), 'elsewhere.json')
  writeFileSync(named, JSON.stringify({ ...consoleFile, client_id: '7' }))
  const viaEnv = await startedConfig({ COZE_OAUTH_CONFIG: named }, tempDir(t))
  t.equal(viaEnv.config.appId, '7')

  const sparse = join(tempDir(t), 'sparse.json')
  writeFileSync(sparse, JSON.stringify({ client_type: 'jwt', client_id: '8', public_key_id: null, private_key: '' }))
  const error = await startupError({ COZE_OAUTH_CONFIG: sparse }, dir)
  t.equal(error.setting, 'COZE_OAUTH_CONFIG', 'empty fields count as missing')
  t.match(error.message, /has no public_key_id \(the public key fingerprint, 公钥指纹\); add it from the Coze console, or set COZE_KEY_ID/)
})

t.test('a read that fails without an errno still names the file', async (t) => {
  const failing = async (): Promise<string> => { throw new Error('disk on fire') }
  for (const [env, setting] of [[{ ...VALID, COZE_OAUTH_CONFIG: 'c.json' }, 'COZE_OAUTH_CONFIG'], [{ ...VALID, COZE_PRIVATE_KEY: undefined, COZE_PRIVATE_KEY_FILE: 'k.pem', COZE_OAUTH_CONFIG: undefined }, 'COZE_PRIVATE_KEY_FILE']] as const) {
    const noConfigFile = async (path: string): Promise<string> => {
      if (path.endsWith('.json')) throw Object.assign(new Error('no such file'), { code: 'ENOENT' })
      return await failing()
    }
    const app = buildApp({ env, cwd: '/nowhere', logStream: new LogCapture(), readFile: setting === 'COZE_OAUTH_CONFIG' ? failing : noConfigFile })
    const error = await app.ready().then(() => undefined, (e: ConfigError) => e)
    await app.close().catch(() => {})
    t.match(error, { setting, message: /cannot read \/nowhere\/.* \(Error: disk on fire\)/ }, setting)
  }
})

t.test('a key or config file the sidecar\'s user may not read: the message says who must read it and how', async (t) => {
  const denied = async (path: string): Promise<string> => {
    throw Object.assign(new Error(`EACCES: permission denied, open '${path}'`), { code: 'EACCES' })
  }
  for (const [env, setting] of [[{ ...VALID, COZE_OAUTH_CONFIG: 'c.json' }, 'COZE_OAUTH_CONFIG'], [{ ...VALID, COZE_PRIVATE_KEY: undefined, COZE_PRIVATE_KEY_FILE: 'k.pem', COZE_OAUTH_CONFIG: undefined }, 'COZE_PRIVATE_KEY_FILE']] as const) {
    const read = async (path: string): Promise<string> => {
      if (setting === 'COZE_PRIVATE_KEY_FILE' && path.endsWith('.json')) throw Object.assign(new Error('no such file'), { code: 'ENOENT' })
      return await denied(path)
    }
    const app = buildApp({ env, cwd: '/keys', logStream: new LogCapture(), readFile: read })
    const error = await app.ready().then(() => undefined, (e: ConfigError) => e)
    await app.close().catch(() => {})
    t.match(error, { setting, message: /cannot read \/keys\/\S+ \(EACCES\); the sidecar runs as uid \d+ \(gid \d+\), which may not read .*`chown \d+ .*--user "\$\(id -u\):\$\(id -g\)"/ }, setting)
  }
})

t.test('keys.example/coze_oauth_config.json has the console file\'s shape, and only a placeholder key', async (t) => {
  const example = new URL('../keys.example/coze_oauth_config.json', import.meta.url).pathname
  const fields = JSON.parse(readFileSync(example, 'utf8')) as Record<string, unknown>
  t.match(fields, { client_type: 'jwt', client_id: /^\d+$/, public_key_id: String, coze_api_base: 'https://api.coze.cn', private_key: /PLACEHOLDER/ })
  const error = await startupError({ COZE_APP_ID: undefined, COZE_KEY_ID: undefined, COZE_PRIVATE_KEY: undefined, COZE_OAUTH_CONFIG: example }, tempDir(t))
  t.match(error, { setting: 'COZE_OAUTH_CONFIG', message: /^COZE_OAUTH_CONFIG: private_key / }, 'refused as a key, naming the file\'s field')
})

t.test('an unreadable config file in cwd is an error, not ignored', { skip: process.getuid?.() === 0 ? 'root reads everything' : false }, async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'coze_oauth_config.json')
  writeFileSync(path, '{}')
  chmodSync(path, 0o000)
  const error = await startupError({}, dir)
  t.equal(error.setting, 'COZE_OAUTH_CONFIG')
})
