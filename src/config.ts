/**
 * Configuration: one JSON schema for every setting, validated once at start by @fastify/env,
 * then resolved into a {@link Config} (the key read and parsed, the audience derived).
 *
 * Settings come from the environment and, underneath it, from the `coze_oauth_config.json` that
 * Coze's console downloads (reference §10.2): `COZE_OAUTH_CONFIG`, or `./coze_oauth_config.json`
 * when it exists. The environment wins field by field.
 *
 * Every bad setting becomes a {@link ConfigError}: one line naming the setting and the fix.
 */
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { KeyObject } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import fastifyEnv from '@fastify/env'
import envSchema from 'env-schema'
import fp from 'fastify-plugin'
import { keyFingerprint, parsePrivateKey, type PrivateKeyError } from './coze/key.js'
import type { TokenRequest } from './coze/variants.js'
import { ConfigError } from './errors.js'
import { readSecretFile, type CallerSecretError } from './access/caller-secret.js'
import { hostName, isLoopback } from './access/rules.js'
import { readRegularFile } from './files/read.js'
import type { RetryPolicy } from './token/policy.js'

export type Env = Record<string, string | undefined>

const printable = '^[^\\u0000-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069]+$'
export const ACCOUNT_ID_PATTERN = '^[0-9]{1,20}$'
/** Goes into a URL path: `.` and `..` would be dot segments, and rewrite the path to Coze. */
export const ENTERPRISE_ID_PATTERN = '^(?!\\.{1,2}$)[A-Za-z0-9_.:*-]{1,128}$'
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** The settings, their types, bounds and defaults. The README's configuration table mirrors it. */
export const settingsSchema = {
  type: 'object',
  required: ['COZE_APP_ID', 'COZE_KEY_ID'],
  properties: {
    COZE_APP_ID: { type: 'string', pattern: printable, maxLength: 64 },
    COZE_KEY_ID: { type: 'string', pattern: printable, maxLength: 256 },
    COZE_PRIVATE_KEY_FILE: { type: 'string', minLength: 1 },
    COZE_PRIVATE_KEY: { type: 'string', minLength: 1 },
    COZE_API_BASE: { type: 'string', default: 'https://api.coze.cn' },
    COZE_JWT_AUDIENCE: { type: 'string', pattern: printable, maxLength: 256 },
    COZE_TOKEN_TTL: { type: 'integer', minimum: 1, maximum: 86399, default: 900 },
    COZE_ACCOUNT_ID: { type: 'string', pattern: ACCOUNT_ID_PATTERN },
    COZE_ENTERPRISE_ID: { type: 'string', pattern: ENTERPRISE_ID_PATTERN },
    COZE_OAUTH_CONFIG: { type: 'string' },
    COZE_HTTP_TIMEOUT: { type: 'number', exclusiveMinimum: 0, maximum: 120, default: 5 },
    HOST: { type: 'string', minLength: 1, default: '127.0.0.1' },
    PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
    LOG_LEVEL: { type: 'string', enum: LOG_LEVELS, default: 'info' },
    SIDECAR_REQUEST_DEADLINE: { type: 'number', exclusiveMinimum: 0, maximum: 120, default: 5 },
    SIDECAR_CACHE_MAX: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 10_000 },
    SIDECAR_RETRY_ATTEMPTS: { type: 'integer', minimum: 1, maximum: 10, default: 4 },
    SIDECAR_RETRY_BUDGET: { type: 'number', minimum: 0, maximum: 600, default: 30 },
    SIDECAR_SHUTDOWN_GRACE: { type: 'number', minimum: 0, maximum: 300, default: 10 },
    SIDECAR_AUTH_TOKEN: { type: 'string', minLength: 16, maxLength: 4096, pattern: '^[\\x21-\\x7E]+$' },
    SIDECAR_AUTH_TOKEN_FILE: { type: 'string', minLength: 1 },
    SIDECAR_ALLOW_UNAUTHENTICATED: { type: 'boolean', default: false },
    SIDECAR_ALLOWED_HOSTS: { type: 'string', pattern: '^[A-Za-z0-9.:\\[\\]*, -]*$', maxLength: 4096 },
    SIDECAR_REQUIRE_HEADER: { type: 'string', pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+: *[\\x21-\\x7E][\\x20-\\x7E]*$', maxLength: 1024 },
    SIDECAR_REJECT_FORWARDED: { type: 'boolean', default: false },
    SIDECAR_EXCHANGE_RATE: { type: 'number', exclusiveMinimum: 0, maximum: 100_000, default: 10 },
    SIDECAR_EXCHANGE_BURST: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 50 },
    SIDECAR_DEMO: { type: 'boolean', default: false }
  }
} as const

/** The settings after validation: types coerced, defaults filled in. */
export interface Settings {
  COZE_APP_ID: string
  COZE_KEY_ID: string
  COZE_PRIVATE_KEY_FILE?: string
  COZE_PRIVATE_KEY?: string
  COZE_API_BASE: string
  COZE_JWT_AUDIENCE?: string
  COZE_TOKEN_TTL: number
  COZE_ACCOUNT_ID?: string
  COZE_ENTERPRISE_ID?: string
  COZE_OAUTH_CONFIG?: string
  COZE_HTTP_TIMEOUT: number
  HOST: string
  PORT: number
  LOG_LEVEL: typeof LOG_LEVELS[number]
  SIDECAR_REQUEST_DEADLINE: number
  SIDECAR_CACHE_MAX: number
  SIDECAR_RETRY_ATTEMPTS: number
  SIDECAR_RETRY_BUDGET: number
  SIDECAR_SHUTDOWN_GRACE: number
  SIDECAR_AUTH_TOKEN?: string
  SIDECAR_AUTH_TOKEN_FILE?: string
  SIDECAR_ALLOW_UNAUTHENTICATED: boolean
  SIDECAR_ALLOWED_HOSTS?: string
  SIDECAR_REQUIRE_HEADER?: string
  SIDECAR_REJECT_FORWARDED: boolean
  SIDECAR_EXCHANGE_RATE: number
  SIDECAR_EXCHANGE_BURST: number
  SIDECAR_DEMO: boolean
}

type Setting = keyof typeof settingsSchema.properties

/** How to fix each setting, for the one-line start-up error. */
const FIXES: Record<Setting, string> = {
  COZE_APP_ID: 'set it to the OAuth app id (应用 ID) from the Coze console, or client_id in coze_oauth_config.json',
  COZE_KEY_ID: 'set it to the public key fingerprint (公钥指纹) shown next to the key in the Coze console',
  COZE_PRIVATE_KEY_FILE: 'set it to the path of private_key.pem, or set COZE_PRIVATE_KEY to the PEM itself',
  COZE_PRIVATE_KEY: 'set it to the PEM of the private key, or set COZE_PRIVATE_KEY_FILE to its path',
  COZE_OAUTH_CONFIG: 'set it to the path of the coze_oauth_config.json downloaded from the Coze console',
  COZE_API_BASE: 'set it to https://api.coze.cn (coze.cn apps) or https://api.coze.com (coze.com apps)',
  COZE_JWT_AUDIENCE: 'leave it unset to use the host of COZE_API_BASE',
  COZE_TOKEN_TTL: 'set it to a whole number of seconds from 1 to 86399 (Coze\'s limit)',
  COZE_ACCOUNT_ID: 'set it to the numeric Coze account or organization id, or leave it unset',
  COZE_ENTERPRISE_ID: 'set it to the enterprise id (letters, digits, _ . : -, not . or ..), or leave it unset',
  COZE_HTTP_TIMEOUT: 'set it to a number of seconds above 0 and at most 120',
  HOST: 'set it to the address to listen on, for example 127.0.0.1',
  PORT: 'set it to a port number from 0 to 65535',
  LOG_LEVEL: `set it to one of ${LOG_LEVELS.join(', ')}`,
  SIDECAR_REQUEST_DEADLINE: 'set it to a number of seconds above 0 and at most 120',
  SIDECAR_CACHE_MAX: 'set it to a whole number from 1 to 1000000',
  SIDECAR_RETRY_ATTEMPTS: 'set it to a whole number from 1 to 10',
  SIDECAR_RETRY_BUDGET: 'set it to a number of seconds from 0 to 600',
  SIDECAR_SHUTDOWN_GRACE: 'set it to a number of seconds from 0 to 300',
  SIDECAR_AUTH_TOKEN: 'set it to a secret of 16 to 4096 printable characters without spaces, for example `openssl rand -hex 32`',
  SIDECAR_AUTH_TOKEN_FILE: 'set it to the path of a file holding the caller secret',
  SIDECAR_ALLOW_UNAUTHENTICATED: 'set it to true or false',
  SIDECAR_ALLOWED_HOSTS: 'set it to a comma-separated list of host names, for example sidecar.internal,my-pod',
  SIDECAR_REQUIRE_HEADER: 'set it to a header and its value, for example "Metadata-Flavor: Coze"',
  SIDECAR_REJECT_FORWARDED: 'set it to true or false',
  SIDECAR_EXCHANGE_RATE: 'set it to the new exchanges allowed per second, above 0',
  SIDECAR_EXCHANGE_BURST: 'set it to a whole number of exchanges from 1 to 1000000',
  SIDECAR_DEMO: 'set it to true to run against a built-in Coze emulator, or leave it unset'
}

/** Everything the service needs, resolved and checked. */
export interface Config {
  appId: string
  keyId: string
  privateKey: KeyObject
  /** Where the key came from, so that it can be re-read. */
  privateKeyFile?: string
  /** The base URL without a trailing slash. */
  apiBase: string
  audience: string
  /** The request for callers that name no variant, session or ttl. */
  defaultRequest: TokenRequest
  host: string
  port: number
  logLevel: Settings['LOG_LEVEL']
  requestDeadlineMs: number
  httpTimeoutMs: number
  cacheMax: number
  retry: RetryPolicy
  /** After SIGTERM, how long in-flight requests may take before the process exits anyway. */
  shutdownGraceMs: number
  /** Who may take tokens (issue: hand tokens only to the callers that should have them). */
  access: {
    /** The caller secret, inline or from a file that can rotate. */
    secret?: { value: string, file?: string }
    allowUnauthenticated: boolean
    allowedHosts: string[]
    requiredHeader?: { name: string, value: string }
    rejectForwarded: boolean
  }
  /** New exchanges per second and burst (`SIDECAR_EXCHANGE_RATE`, `SIDECAR_EXCHANGE_BURST`). */
  exchangeRate: { perSecond: number, burst: number }
  /** Demo mode: tokens from a built-in emulator, not from Coze. */
  demo: boolean
  /** The coze_oauth_config.json read, if any. */
  oauthConfigFile?: string
  /** Things worth a warning at start, never a failure. */
  warnings: string[]
}

export interface ConfigSources {
  env: Env
  /** Where relative paths and `./coze_oauth_config.json` are looked for. */
  cwd: string
  readFile?: (path: string) => Promise<string>
}

const readText = readRegularFile

/**
 * Reads `coze_oauth_config.json` (the file Coze's console downloads) into setting names.
 * Returns `{}` when no file is named and none is in `cwd`.
 */
export async function readOAuthConfig (sources: ConfigSources): Promise<{ file?: string, settings: Env }> {
  const read = sources.readFile ?? readText
  const named = nonEmpty(sources.env.COZE_OAUTH_CONFIG)
  const file = resolve(sources.cwd, named ?? 'coze_oauth_config.json')
  let text: string
  try {
    text = await read(file)
  } catch (error) {
    if (named === undefined && (error as NodeJS.ErrnoException).code === 'ENOENT') return { settings: {} }
    throw new ConfigError('COZE_OAUTH_CONFIG', `cannot read ${file} (${errno(error)}); ${FIXES.COZE_OAUTH_CONFIG}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new ConfigError('COZE_OAUTH_CONFIG', `${file} is not JSON; download coze_oauth_config.json again from the Coze console`)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError('COZE_OAUTH_CONFIG', `${file} is not a JSON object; download coze_oauth_config.json again from the Coze console`)
  }
  const fields = json as Record<string, unknown>
  if (fields.client_type !== 'jwt') {
    throw new ConfigError('COZE_OAUTH_CONFIG', `${file} has client_type ${JSON.stringify(fields.client_type) ?? 'missing'}, not "jwt"; download the configuration of a JWT (服务类应用) OAuth app`)
  }
  const mapping = {
    client_id: 'COZE_APP_ID',
    public_key_id: 'COZE_KEY_ID',
    private_key: 'COZE_PRIVATE_KEY',
    coze_api_base: 'COZE_API_BASE'
  } as const
  const settings: Env = {}
  for (const [field, setting] of Object.entries(mapping)) {
    const value = fields[field]
    if (value === undefined || value === null || value === '') continue
    if (typeof value !== 'string') {
      throw new ConfigError('COZE_OAUTH_CONFIG', `${file}: ${field} must be a string`)
    }
    settings[setting] = value
  }
  return { file, settings }
}

/** The settings to validate: the config file's fields, overridden by the environment's. */
export function mergeSources (env: Env, fromFile: Env): Env {
  const merged: Env = { ...fromFile }
  const keyInEnv = nonEmpty(env.COZE_PRIVATE_KEY_FILE) !== undefined || nonEmpty(env.COZE_PRIVATE_KEY) !== undefined
  if (keyInEnv) delete merged.COZE_PRIVATE_KEY
  for (const name of Object.keys(settingsSchema.properties)) {
    const value = nonEmpty(env[name])
    if (value !== undefined) merged[name] = value
  }
  return merged
}

/** Turns @fastify/env's (ajv's) complaint into one line about the first setting at fault. */
export function settingsError (error: unknown): Error {
  const problems = (error as { errors?: AjvError[] }).errors
  /* c8 ignore next - env-schema attaches ajv's errors to everything it throws; anything else is rethrown as is */
  if (problems === undefined || problems.length === 0) return error as Error
  const order = Object.keys(settingsSchema.properties)
  const named = problems.map((problem) => ({
    problem,
    setting: (problem.keyword === 'required'
      ? String(problem.params.missingProperty)
      : problem.instancePath.slice(1)) as Setting
  })).sort((a, b) => order.indexOf(a.setting) - order.indexOf(b.setting))
  const { problem, setting } = named[0] as typeof named[number]
  const what = problem.keyword === 'required' ? 'is required' : `is invalid (${problem.message})`
  return new ConfigError(setting, `${what}: ${FIXES[setting]}`)
}

interface AjvError {
  keyword: string
  instancePath: string
  params: Record<string, unknown>
  /** Ajv always writes one. */
  message: string
}

/** `ENOENT`, `EACCES`...: the part of a file error a person can act on. */
function errno (error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error)
}

/** Validated settings to a {@link Config}: reads and checks the key, derives the audience. */
export async function resolveConfig (settings: Settings, sources: ConfigSources, oauthConfigFile?: string): Promise<Config> {
  const read = sources.readFile ?? readText
  const warnings: string[] = []

  if (settings.COZE_PRIVATE_KEY_FILE !== undefined && settings.COZE_PRIVATE_KEY !== undefined) {
    throw new ConfigError('COZE_PRIVATE_KEY', 'is set together with COZE_PRIVATE_KEY_FILE; set only one of them')
  }
  let pem: string
  let privateKeyFile: string | undefined
  let keySetting: string
  if (settings.COZE_PRIVATE_KEY_FILE !== undefined) {
    keySetting = 'COZE_PRIVATE_KEY_FILE'
    privateKeyFile = resolve(sources.cwd, settings.COZE_PRIVATE_KEY_FILE)
    try {
      pem = await read(privateKeyFile)
    } catch (error) {
      throw new ConfigError(keySetting, `cannot read ${privateKeyFile} (${errno(error)}); ${FIXES.COZE_PRIVATE_KEY_FILE}`)
    }
  } else if (settings.COZE_PRIVATE_KEY !== undefined) {
    keySetting = oauthConfigFile !== undefined && sources.env.COZE_PRIVATE_KEY === undefined ? 'COZE_OAUTH_CONFIG' : 'COZE_PRIVATE_KEY'
    pem = settings.COZE_PRIVATE_KEY
  } else {
    throw new ConfigError('COZE_PRIVATE_KEY_FILE', `is required: ${FIXES.COZE_PRIVATE_KEY_FILE}`)
  }
  let privateKey: KeyObject
  try {
    privateKey = parsePrivateKey(pem)
  } catch (error) {
    // parsePrivateKey throws only PrivateKeyError, whose message never holds key material.
    const what = keySetting === 'COZE_OAUTH_CONFIG' ? 'private_key' : 'the key'
    throw new ConfigError(keySetting, `${what} ${(error as PrivateKeyError).message}`)
  }
  const fingerprint = keyFingerprint(privateKey)
  if (fingerprint !== settings.COZE_KEY_ID) {
    warnings.push(`COZE_KEY_ID does not match the fingerprint computed from the private key (${fingerprint}); ` +
      'the derivation is not documented by Coze, but if Coze answers "kid not been registred", check that the key id belongs to this key')
  }

  await warnIfExposed(privateKeyFile ?? (keySetting === 'COZE_OAUTH_CONFIG' ? oauthConfigFile : undefined), keySetting, warnings)
  const access = await resolveAccess(settings, read, warnings)

  const base = parseBase(settings.COZE_API_BASE)
  if (settings.COZE_ACCOUNT_ID !== undefined && settings.COZE_ENTERPRISE_ID !== undefined) {
    throw new ConfigError('COZE_ENTERPRISE_ID', 'is set together with COZE_ACCOUNT_ID; a token is either cross-account or enterprise, set only one')
  }
  const defaultRequest: TokenRequest = { ttl: settings.COZE_TOKEN_TTL }
  if (settings.COZE_ACCOUNT_ID !== undefined) defaultRequest.accountId = settings.COZE_ACCOUNT_ID
  if (settings.COZE_ENTERPRISE_ID !== undefined) defaultRequest.enterpriseId = settings.COZE_ENTERPRISE_ID

  return {
    appId: settings.COZE_APP_ID,
    keyId: settings.COZE_KEY_ID,
    privateKey,
    ...(privateKeyFile === undefined ? {} : { privateKeyFile }),
    apiBase: base.href.replace(/\/+$/, ''),
    // Coze's docs: aud is the API host, "api.coze.cn"; coze-py and coze-go keep a non-default port.
    audience: settings.COZE_JWT_AUDIENCE ?? base.host,
    defaultRequest,
    host: settings.HOST,
    port: settings.PORT,
    logLevel: settings.LOG_LEVEL,
    requestDeadlineMs: Math.round(settings.SIDECAR_REQUEST_DEADLINE * 1000),
    httpTimeoutMs: Math.round(settings.COZE_HTTP_TIMEOUT * 1000),
    cacheMax: settings.SIDECAR_CACHE_MAX,
    retry: { maxAttempts: settings.SIDECAR_RETRY_ATTEMPTS, budgetMs: Math.round(settings.SIDECAR_RETRY_BUDGET * 1000) },
    shutdownGraceMs: Math.round(settings.SIDECAR_SHUTDOWN_GRACE * 1000),
    access,
    exchangeRate: { perSecond: settings.SIDECAR_EXCHANGE_RATE, burst: settings.SIDECAR_EXCHANGE_BURST },
    demo: settings.SIDECAR_DEMO,
    ...(oauthConfigFile === undefined ? {} : { oauthConfigFile }),
    warnings
  }
}

/** A key readable by others is a key others have: worth a warning at every start. */
async function warnIfExposed (file: string | undefined, setting: string, warnings: string[]): Promise<void> {
  if (file === undefined) return
  const mode = await stat(file).then((info) => info.mode & 0o777, () => 0)
  if ((mode & 0o077) !== 0) {
    warnings.push(`${setting}: ${file} holds the private key and is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); \`chmod 600\` it`)
  }
}

async function resolveAccess (settings: Settings, read: (path: string) => Promise<string>, warnings: string[]): Promise<Config['access']> {
  if (settings.SIDECAR_AUTH_TOKEN !== undefined && settings.SIDECAR_AUTH_TOKEN_FILE !== undefined) {
    throw new ConfigError('SIDECAR_AUTH_TOKEN', 'is set together with SIDECAR_AUTH_TOKEN_FILE; set only one of them')
  }
  let secret: Config['access']['secret']
  if (settings.SIDECAR_AUTH_TOKEN !== undefined) secret = { value: settings.SIDECAR_AUTH_TOKEN }
  if (settings.SIDECAR_AUTH_TOKEN_FILE !== undefined) {
    try {
      secret = { value: await readSecretFile(settings.SIDECAR_AUTH_TOKEN_FILE, read), file: settings.SIDECAR_AUTH_TOKEN_FILE }
    } catch (error) {
      throw new ConfigError('SIDECAR_AUTH_TOKEN_FILE', (error as CallerSecretError).message)
    }
  }
  if (!isLoopback(hostName(settings.HOST)) && secret === undefined) {
    if (!settings.SIDECAR_ALLOW_UNAUTHENTICATED) {
      throw new ConfigError('HOST', `${settings.HOST} is not a loopback address, so anyone who can reach it could take tokens; ` +
        'set SIDECAR_AUTH_TOKEN (or SIDECAR_AUTH_TOKEN_FILE) to a secret callers send as "Authorization: Bearer <secret>", ' +
        'or set SIDECAR_ALLOW_UNAUTHENTICATED=true to accept that risk')
    }
    warnings.push(`SIDECAR_ALLOW_UNAUTHENTICATED=true: anyone who can reach ${settings.HOST}:${settings.PORT} can take tokens for this Coze app`)
  }
  const header = settings.SIDECAR_REQUIRE_HEADER
  const colon = header?.indexOf(':') ?? -1
  return {
    ...(secret === undefined ? {} : { secret }),
    allowUnauthenticated: settings.SIDECAR_ALLOW_UNAUTHENTICATED,
    allowedHosts: (settings.SIDECAR_ALLOWED_HOSTS ?? '').split(',').map((name) => hostName(name.trim())).filter((name) => name !== ''),
    ...(header === undefined ? {} : { requiredHeader: { name: header.slice(0, colon).toLowerCase(), value: header.slice(colon + 1).trim() } }),
    rejectForwarded: settings.SIDECAR_REJECT_FORWARDED
  }
}

function parseBase (value: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError('COZE_API_BASE', `is not a URL: ${FIXES.COZE_API_BASE}`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError('COZE_API_BASE', `must be http(s), not ${url.protocol.replace(/:$/, '')}: ${FIXES.COZE_API_BASE}`)
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new ConfigError('COZE_API_BASE', `must not contain credentials, a query or a fragment: ${FIXES.COZE_API_BASE}`)
  }
  return url
}

/**
 * Blank settings count as unset, except the caller secret's: a blank one is what `$(cat
 * missing-file)` or an empty Secret key gives, and reading it as unset would turn authentication
 * off without a word.
 */
function refuseBlankSecret (env: Env): void {
  for (const name of ['SIDECAR_AUTH_TOKEN', 'SIDECAR_AUTH_TOKEN_FILE'] as const) {
    if (env[name] !== undefined && env[name].trim() === '') {
      throw new ConfigError(name, `is set but blank, which would leave callers unauthenticated: ${FIXES[name]}, or unset it`)
    }
  }
}

function nonEmpty (value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value
}

/**
 * Loads everything again, outside Fastify: for a key rotation (SIGHUP, or the key or config file
 * changing). The same schema, validated by env-schema, the engine inside @fastify/env.
 */
export async function loadConfig (sources: ConfigSources): Promise<Config> {
  refuseBlankSecret(sources.env)
  const fromFile = await readOAuthConfig(sources)
  let settings: Settings
  try {
    settings = envSchema({ schema: structuredClone(settingsSchema) as object, data: mergeSources(sources.env, fromFile.settings), env: false }) as unknown as Settings
  } catch (error) {
    throw settingsError(error)
  }
  return await resolveConfig(settings, sources, fromFile.file)
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

/**
 * Loads, validates and resolves the configuration, and decorates the instance with `config`.
 * Fails the instance's start with a {@link ConfigError}.
 */
/** The settings that name a Coze app; with none of them (and no config file) nothing is configured. */
const APP_SETTINGS = ['COZE_APP_ID', 'COZE_KEY_ID', 'COZE_PRIVATE_KEY_FILE', 'COZE_PRIVATE_KEY'] as const

/**
 * Nothing configured at all: rather than complain about the first missing setting, say what to
 * set, and how to try the sidecar without a Coze app. Never falls into demo mode by itself.
 */
function checkSomethingConfigured (env: Env, fromFile: { file?: string }): void {
  if (fromFile.file !== undefined || APP_SETTINGS.some((name) => nonEmpty(env[name]) !== undefined)) return
  throw new ConfigError('COZE_APP_ID', 'no Coze app is configured: set COZE_APP_ID, COZE_KEY_ID and COZE_PRIVATE_KEY_FILE ' +
    '(or put the coze_oauth_config.json from the Coze console here, or point COZE_OAUTH_CONFIG at it; see keys.example/README.md). ' +
    'To try the sidecar without a Coze app, set SIDECAR_DEMO=true (bash bootstrap.sh does that for you)')
}

export const configPlugin = fp(async function config (app: FastifyInstance, sources: ConfigSources) {
  refuseBlankSecret(sources.env)
  const fromFile = await readOAuthConfig(sources)
  checkSomethingConfigured(sources.env, fromFile)
  try {
    await app.register(fastifyEnv, {
      schema: structuredClone(settingsSchema) as object,
      data: mergeSources(sources.env, fromFile.settings),
      env: false, // only server.ts reads process.env; the sources come in as an option
      confKey: 'settings'
    })
  } catch (error) {
    throw settingsError(error)
  }
  const settings = app.getEnvs<Settings>()
  app.decorate('config', await resolveConfig(settings, sources, fromFile.file))
}, { name: 'config', fastify: '5.x' })
