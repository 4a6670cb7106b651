/**
 * Every setting the service reads, in one table: its JSON schema (type, bounds, default), what it
 * means and how to fix a bad value. The validator, the {@link Settings} type, the one-line
 * start-up errors and the README's configuration table (`npm run docs:settings`) are all derived
 * from it, so a new setting is one entry here.
 *
 * @example
 * const settings = validateSettings({ COZE_APP_ID: '1127900106117', PORT: '9000' })
 * settings.PORT // 9000, a number
 */
import envSchema from 'env-schema'
import { ConfigError } from './config-error.js'
import { ID_VARIANTS } from './coze/variants.js'

export type Env = Record<string, string | undefined>

/**
 * Text without control characters: C0, DEL, C1 (U+0080-U+009F), and the bidi overrides and
 * isolates that make a log line read differently from what it holds.
 */
export const PRINTABLE = '^[^\\u0000-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069]+$'
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
/** A credential's name: the stem of its file in `COZE_OAUTH_CONFIG_DIR`. */
export const CREDENTIAL_NAME_PATTERN = '^[A-Za-z0-9_-]{1,64}$'

interface SettingSpec {
  readonly schema: { readonly type: string, readonly default?: unknown, readonly enum?: readonly string[] } & Record<string, unknown>
  /** The README's "meaning" column. */
  readonly about: string
  /** The README's "default" column, when the schema's default does not say it. */
  readonly shownDefault?: string
  /** How to fix a bad value: the second half of the start-up error. */
  readonly fix: string
}

const seconds = (min: number, max: number, fallback: number, exclusive = false) =>
  ({ type: 'number', ...(exclusive ? { exclusiveMinimum: min } : { minimum: min }), maximum: max, default: fallback }) as const

const [accountVariant, enterpriseVariant] = ID_VARIANTS
const MiB = 1024 * 1024

/** The table. Order matters: it is the README's order, and the order problems are reported in. */
export const SETTINGS = {
  COZE_APP_ID: {
    schema: { type: 'string', pattern: PRINTABLE, maxLength: 64 },
    about: 'the OAuth app id (the JWT\'s `iss`) of the credential named `default`',
    shownDefault: 'required for `default`',
    fix: 'set it to the OAuth app id (应用 ID) from the Coze console, or client_id in coze_oauth_config.json'
  },
  COZE_KEY_ID: {
    schema: { type: 'string', pattern: PRINTABLE, maxLength: 256 },
    about: 'the public key fingerprint (the JWT\'s `kid`)',
    shownDefault: 'required for `default`',
    fix: 'set it to the public key fingerprint (公钥指纹) shown next to the key in the Coze console'
  },
  COZE_PRIVATE_KEY_FILE: {
    schema: { type: 'string', minLength: 1 },
    about: 'path of the PEM private key (PKCS#8 or PKCS#1 RSA, 2048 bits or more)',
    shownDefault: 'one of the two',
    fix: 'set it to the path of private_key.pem, or set COZE_PRIVATE_KEY to the PEM itself'
  },
  COZE_PRIVATE_KEY: {
    schema: { type: 'string', minLength: 1 },
    about: 'the PEM itself (literal `\\n` sequences are accepted)',
    shownDefault: 'one of the two',
    fix: 'set it to the PEM of the private key, or set COZE_PRIVATE_KEY_FILE to its path'
  },
  COZE_OAUTH_CONFIG: {
    schema: { type: 'string' },
    about: 'path of a `coze_oauth_config.json` for `default` (`client_type` must be `jwt`)',
    shownDefault: '`./coze_oauth_config.json` if present',
    fix: 'set it to the path of the coze_oauth_config.json downloaded from the Coze console'
  },
  COZE_OAUTH_CONFIG_DIR: {
    schema: { type: 'string', minLength: 1 },
    about: 'a folder of credentials: each `NAME.json` is a console `coze_oauth_config.json` (or a [static token](#several-credentials)) for the credential `NAME`, re-read when it changes',
    shownDefault: 'unset',
    fix: 'set it to the path of a folder that holds one coze_oauth_config.json per app, each renamed NAME.json'
  },
  SIDECAR_DEFAULT_APP: {
    schema: { type: 'string', pattern: CREDENTIAL_NAME_PATTERN },
    about: 'the credential used when a request names no `app`',
    shownDefault: 'the only one, or `default`',
    fix: 'set it to the name of a configured credential (letters, digits, _ and -)'
  },
  COZE_API_BASE: {
    schema: { type: 'string', default: 'https://api.coze.cn' },
    about: '`https://api.coze.cn`, or `https://api.coze.com` for coze.com apps',
    fix: 'set it to https://api.coze.cn (coze.cn apps) or https://api.coze.com (coze.com apps)'
  },
  COZE_ALTERNATE_API_BASE: {
    schema: { type: 'string', minLength: 1 },
    about: 'where to ask, once, whether a key Coze calls unknown is registered in the other region (`off`: never)',
    shownDefault: 'the other of `https://api.coze.cn` / `https://api.coze.com`',
    fix: 'set it to an http(s) URL such as https://api.coze.com, or to off'
  },
  COZE_JWT_AUDIENCE: {
    schema: { type: 'string', pattern: PRINTABLE, maxLength: 256 },
    about: 'the JWT\'s `aud`',
    shownDefault: 'host[:port] of `COZE_API_BASE`',
    fix: 'leave it unset to use the host of COZE_API_BASE'
  },
  COZE_TOKEN_TTL: {
    schema: { type: 'integer', minimum: 1, maximum: 86399, default: 900 },
    about: '`duration_seconds` asked for when a request names no `ttl`, 1–86399 (every credential\'s default)',
    fix: 'set it to a whole number of seconds from 1 to 86399 (Coze\'s limit)'
  },
  COZE_ACCOUNT_ID: {
    schema: { type: 'string', pattern: accountVariant.id.pattern },
    about: 'default cross-account variant for requests that name none',
    shownDefault: 'unset',
    fix: `set it to ${accountVariant.id.hint}, or leave it unset`
  },
  COZE_ENTERPRISE_ID: {
    schema: { type: 'string', pattern: enterpriseVariant.id.pattern },
    about: 'default enterprise variant for requests that name none',
    shownDefault: 'unset',
    fix: `set it to ${enterpriseVariant.id.hint}, or leave it unset`
  },
  COZE_HTTP_TIMEOUT: {
    schema: seconds(0, 120, 5, true),
    about: 'seconds allowed for one call to Coze, from connecting to the last byte of its answer (a slow or dripping answer is abandoned, logged and retried)',
    fix: 'set it to a number of seconds above 0 and at most 120'
  },
  HTTPS_PROXY: {
    schema: { type: 'string' },
    about: 'forward proxy for calls to `https://` Coze bases (`https_proxy` too)',
    shownDefault: 'unset',
    fix: 'set it to the proxy\'s URL, for example http://proxy.internal:3128'
  },
  HTTP_PROXY: {
    schema: { type: 'string' },
    about: 'forward proxy for calls to `http://` bases (`http_proxy` too)',
    shownDefault: 'unset',
    fix: 'set it to the proxy\'s URL, for example http://proxy.internal:3128'
  },
  NO_PROXY: {
    schema: { type: 'string' },
    about: 'hosts reached without the proxy, comma-separated (`no_proxy` too)',
    shownDefault: 'unset',
    fix: 'set it to a comma-separated list of host names, for example localhost,.internal'
  },
  HOST: {
    schema: { type: 'string', minLength: 1, default: '127.0.0.1' },
    about: 'listen address',
    fix: 'set it to the address to listen on, for example 127.0.0.1'
  },
  PORT: {
    schema: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
    about: 'listen port',
    fix: 'set it to a port number from 0 to 65535'
  },
  LOG_LEVEL: {
    schema: { type: 'string', enum: LOG_LEVELS, default: 'info' },
    about: '`fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`',
    fix: `set it to one of ${LOG_LEVELS.join(', ')}`
  },
  SIDECAR_REQUEST_DEADLINE: {
    schema: seconds(0, 120, 5, true),
    about: 'seconds a caller waits at most for Coze',
    fix: 'set it to a number of seconds above 0 and at most 120'
  },
  SIDECAR_CACHE_MAX: {
    schema: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 10_000 },
    about: 'distinct requests (session names, variants, ttls) cached at most per credential; the least recently used go first',
    fix: 'set it to a whole number from 1 to 1000000'
  },
  SIDECAR_RETRY_ATTEMPTS: {
    schema: { type: 'integer', minimum: 1, maximum: 10, default: 4 },
    about: 'attempts per exchange, the first included',
    fix: 'set it to a whole number from 1 to 10'
  },
  SIDECAR_RETRY_BUDGET: {
    schema: seconds(0, 600, 30),
    about: 'seconds after the first attempt in which retries may still start',
    fix: 'set it to a number of seconds from 0 to 600'
  },
  SIDECAR_SHUTDOWN_GRACE: {
    schema: seconds(0, 300, 10),
    about: 'seconds in-flight requests get after SIGTERM',
    fix: 'set it to a number of seconds from 0 to 300'
  },
  SIDECAR_AUTH_TOKEN: {
    schema: { type: 'string', minLength: 16, maxLength: 4096, pattern: '^[\\x21-\\x7E]+$' },
    about: 'the caller secret: token routes need `Authorization: Bearer <it>` (16–4096 printable characters)',
    shownDefault: 'unset',
    fix: 'set it to a secret of 16 to 4096 printable characters without spaces, for example `openssl rand -hex 32`'
  },
  SIDECAR_AUTH_TOKEN_FILE: {
    schema: { type: 'string', minLength: 1 },
    about: 'a file holding the caller secret, re-read when it changes (rotation)',
    shownDefault: 'unset',
    fix: 'set it to the path of a file holding the caller secret'
  },
  SIDECAR_ALLOW_UNAUTHENTICATED: {
    schema: { type: 'boolean', default: false },
    about: '`true` lets a non-loopback `HOST` run without a caller secret (warned about at every start)',
    fix: 'set it to true or false'
  },
  SIDECAR_ALLOWED_HOSTS: {
    schema: { type: 'string', pattern: '^[A-Za-z0-9.:\\[\\]*, -]*$', maxLength: 4096 },
    about: 'further host names callers may use in `Host`, comma-separated (`*`: any)',
    shownDefault: 'unset',
    fix: 'set it to a comma-separated list of host names, for example sidecar.internal,my-pod'
  },
  SIDECAR_REQUIRE_HEADER: {
    schema: { type: 'string', pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+: *[\\x21-\\x7E][\\x20-\\x7E]*$', maxLength: 1024 },
    about: 'a header every token request must carry, e.g. `Metadata-Flavor: Coze`',
    shownDefault: 'unset',
    fix: 'set it to a header and its value, for example "Metadata-Flavor: Coze"'
  },
  SIDECAR_REJECT_FORWARDED: {
    schema: { type: 'boolean', default: false },
    about: '`true` refuses requests with `X-Forwarded-For` or `Forwarded`',
    fix: 'set it to true or false'
  },
  SIDECAR_CALLERS_FILE: {
    schema: { type: 'string', minLength: 1 },
    about: 'a JSON file of [callers](#callers): each with its secret (as a SHA-256 or a file) and what it may take; re-read when it changes',
    shownDefault: 'unset',
    fix: 'set it to the path of a JSON file of callers and their rights (see the README\'s "Callers")'
  },
  SIDECAR_SOCKET: {
    // A unix socket path is limited to 107 bytes by the kernel (sun_path); 100 leaves room for a temporary name.
    schema: { type: 'string', minLength: 1, maxLength: 100 },
    about: 'a [unix socket](#a-unix-socket) to listen on; alone, there is no TCP listener (with `PORT` set too, both)',
    shownDefault: 'unset',
    fix: 'set it to the path of a unix socket to listen on, at most 100 characters, for example /run/coze-token/sidecar.sock'
  },
  SIDECAR_SOCKET_MODE: {
    schema: { type: 'string', pattern: '^0?[0-7]{3}$', default: '0660' },
    about: 'the socket file\'s permissions, in octal',
    fix: 'set it to the socket file\'s permissions in octal, for example 0660 or 0600'
  },
  SIDECAR_EXCHANGE_RATE: {
    schema: { type: 'number', exclusiveMinimum: 0, maximum: 100_000, default: 10 },
    about: 'new exchanges with Coze allowed per second, per credential (a token bucket)',
    fix: 'set it to the new exchanges allowed per second, above 0'
  },
  SIDECAR_EXCHANGE_BURST: {
    schema: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 50 },
    about: '… and at once',
    fix: 'set it to a whole number of exchanges from 1 to 1000000'
  },
  SIDECAR_GATEWAY: {
    schema: { type: 'string', enum: ['on', 'off'], default: 'on' },
    about: '`off` turns off [Coze\'s API through the sidecar](#call-coze-through-the-sidecar)',
    fix: 'set it to on or off'
  },
  SIDECAR_GATEWAY_BODY_LIMIT: {
    schema: { type: 'integer', minimum: 1024, maximum: 64 * MiB, default: MiB },
    about: 'bytes of a request body (and of a WebSocket frame) held for a replay; beyond it 413',
    fix: `set it to a number of bytes from 1024 to ${64 * MiB}`
  },
  SIDECAR_GATEWAY_UPLOAD_LIMIT: {
    schema: { type: 'integer', minimum: 1024, maximum: 4096 * MiB, default: 512 * MiB },
    about: 'bytes of a multipart upload streamed to Coze; beyond it 413',
    fix: `set it to a number of bytes from 1024 to ${4096 * MiB}`
  },
  SIDECAR_GATEWAY_IDLE_TIMEOUT: {
    schema: seconds(0, 3600, 300, true),
    about: 'seconds Coze may be silent (before its headers, between chunks) before a request through the sidecar is given up',
    fix: 'set it to a number of seconds above 0 and at most 3600'
  },
  COZE_WS_BASE: {
    schema: { type: 'string', minLength: 1 },
    about: 'where WebSockets through the sidecar go, for the credential `default` (the others derive theirs from their base)',
    shownDefault: '`COZE_API_BASE` with `api.` → `ws.`, `https` → `wss`',
    fix: 'set it to wss://ws.coze.cn or wss://ws.coze.com, or leave it unset to derive it from COZE_API_BASE'
  },
  SIDECAR_DEMO: {
    schema: { type: 'boolean', default: false },
    about: '`true`: a demo with a built-in Coze emulator instead of a Coze app (see [the token page](#the-token-page))',
    fix: 'set it to true to run against a built-in Coze emulator, or leave it unset'
  }
} as const satisfies Record<string, SettingSpec>

export type Setting = keyof typeof SETTINGS

/** Settings whose value is read in lower case too, as curl and the SDKs do. */
const LOWER_CASE_TOO: readonly Setting[] = ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY']

type Spec<K extends Setting> = typeof SETTINGS[K]['schema']
type ValueOf<S> = S extends { enum: ReadonlyArray<infer E> } ? E
  : S extends { type: 'integer' | 'number' } ? number
    : S extends { type: 'boolean' } ? boolean
      : string
type WithDefault = { [K in Setting]: Spec<K> extends { default: unknown } ? K : never }[Setting]

/** The settings after validation: types coerced, defaults filled in. */
export type Settings =
  { [K in WithDefault]: ValueOf<Spec<K>> } &
  { [K in Exclude<Setting, WithDefault>]?: ValueOf<Spec<K>> }

/** The JSON schema of the whole environment, as env-schema and the docs read it. */
export function settingsSchema (): { type: 'object', properties: Record<string, object> } {
  return {
    type: 'object',
    properties: Object.fromEntries(Object.entries(SETTINGS).map(([name, spec]) => [name, structuredClone(spec.schema)]))
  }
}

/** A value that is set but blank is a mistake (an empty Secret key, `$(cat missing-file)`). */
const BLANK_IS_AN_ERROR: readonly Setting[] = ['SIDECAR_AUTH_TOKEN', 'SIDECAR_AUTH_TOKEN_FILE']

/**
 * Validates the settings we know, from `env` (other variables are ignored). Blank values count as
 * unset, except where a blank one would silently turn a safety off.
 * @throws ConfigError naming the first setting at fault and its fix.
 */
export function validateSettings (env: Env): Settings {
  const data: Env = {}
  for (const name of Object.keys(SETTINGS) as Setting[]) {
    // Lower case first, as undici's and curl's own proxy handling read them.
    const value = (LOWER_CASE_TOO.includes(name) ? env[name.toLowerCase()] : undefined) ?? env[name]
    if (value === undefined) continue
    if (value.trim() === '') {
      if (BLANK_IS_AN_ERROR.includes(name)) throw new ConfigError(name, `is set but blank: ${SETTINGS[name].fix}, or unset it`)
      continue
    }
    data[name] = value
  }
  try {
    return envSchema({ schema: settingsSchema(), data, env: false }) as unknown as Settings
  } catch (error) {
    throw settingsError(error)
  }
}

interface AjvError {
  keyword: string
  instancePath: string
  params: Record<string, unknown>
  /** Ajv always writes one. */
  message: string
}

/** Turns env-schema's (ajv's) complaint into one line about the first setting at fault. */
function settingsError (error: unknown): Error {
  const problems = (error as { errors?: AjvError[] }).errors
  /* c8 ignore next - env-schema attaches ajv's errors to everything it throws; anything else is rethrown as is */
  if (problems === undefined || problems.length === 0) return error as Error
  const order = Object.keys(SETTINGS)
  const named = problems.map((problem) => ({ problem, setting: problem.instancePath.slice(1) as Setting }))
    .sort((a, b) => order.indexOf(a.setting) - order.indexOf(b.setting))
  const { problem, setting } = named[0] as typeof named[number]
  return new ConfigError(setting, `is invalid (${problem.message}): ${SETTINGS[setting].fix}`)
}

/** How to fix `setting`, for errors raised after validation. */
export function fixFor (setting: Setting): string {
  return SETTINGS[setting].fix
}

/** The README's configuration table, rows in the table's order. */
export function settingsTable (): string {
  const rows = Object.entries(SETTINGS).map(([name, spec]: [string, SettingSpec]) => {
    const fallback = spec.shownDefault ?? `\`${String(spec.schema.default)}\``
    return `| \`${name}\` | ${spec.about} | ${fallback} |`
  })
  return ['| variable | meaning | default |', '| --- | --- | --- |', ...rows].join('\n')
}
