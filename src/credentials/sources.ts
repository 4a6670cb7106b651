/**
 * Where credentials come from, read and checked into {@link CredentialSpec}s:
 *
 * - `default`: the environment (`COZE_APP_ID`, `COZE_KEY_ID`, `COZE_PRIVATE_KEY_FILE`...) laid
 *   over the `coze_oauth_config.json` the Coze console downloads (`COZE_OAUTH_CONFIG`, or
 *   `./coze_oauth_config.json`; docs/coze-protocol.md §10.2), field by field;
 * - `COZE_OAUTH_CONFIG_DIR/NAME.json`: one console file per credential, as downloaded, or a
 *   static token file (`"client_type": "static_token"`).
 *
 * Every problem is a {@link ConfigError} naming the setting, the file and the field; never the key.
 *
 * @example
 * const spec = await readCredentialFile('/etc/coze/com.json', settings, sources)
 * spec.name // 'com'
 */
import { readdir, stat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import type { KeyObject } from 'node:crypto'
import { keyFingerprint, parsePrivateKey, type PrivateKeyError } from '../coze/key.js'
import { ID_VARIANTS, type TokenRequest } from '../coze/variants.js'
import { ConfigError } from '../config-error.js'
import { readRegularFile } from '../files/read.js'
import { unreadableHint } from '../key-access.js'
import { CREDENTIAL_NAME_PATTERN, fixFor, PRINTABLE, type Env, type Setting, type Settings } from '../settings.js'

export interface SourceOptions {
  env: Env
  /** Where relative paths and `./coze_oauth_config.json` are looked for. */
  cwd: string
  readFile?: (path: string) => Promise<string>
}

interface SpecBase {
  /** `default`, or the stem of the credential's file. */
  name: string
  /** The `COZE_OAUTH_CONFIG_DIR` file it comes from; undefined for `default`. */
  origin?: string
  /** Without a trailing slash. */
  apiBase: string
  /** The files whose change reloads this credential. */
  files: string[]
  /** Where a person changes the base, for messages: `COZE_API_BASE`, or the file's field. */
  baseSetting: string
  /** Worth a warning when loaded, never a failure. */
  warnings: string[]
}

/** An OAuth JWT app: its tokens are minted per request. */
export interface JwtSpec extends SpecBase {
  kind: 'jwt'
  appId: string
  keyId: string
  privateKey: KeyObject
  audience: string
  /** The request of callers that name no variant, session or ttl. */
  defaultRequest: TokenRequest
  /** Where the key came from, when it is a file of its own. */
  privateKeyFile?: string
}

/** A long-lived token (a personal or service access token): one token, no sessions. */
export interface StaticSpec extends SpecBase {
  kind: 'static'
  token: string
  /** Unix seconds, when the file says when the token expires. */
  expiresAt?: number
}

export type CredentialSpec = JwtSpec | StaticSpec

/** The console file's fields (and the few optional ones of ours), and the setting each stands for. */
const CONSOLE_FIELDS = {
  client_id: 'COZE_APP_ID',
  public_key_id: 'COZE_KEY_ID',
  private_key: 'COZE_PRIVATE_KEY',
  coze_api_base: 'COZE_API_BASE',
  jwt_audience: 'COZE_JWT_AUDIENCE',
  token_ttl: 'COZE_TOKEN_TTL',
  account_id: 'COZE_ACCOUNT_ID',
  enterprise_id: 'COZE_ENTERPRISE_ID'
} as const satisfies Record<string, Setting>
type ConsoleField = keyof typeof CONSOLE_FIELDS

/** The console file's field for a setting: `COZE_API_BASE` → `coze_api_base`. */
function fieldOf (setting: Setting): ConsoleField {
  return (Object.keys(CONSOLE_FIELDS) as ConsoleField[]).find((field) => CONSOLE_FIELDS[field] === setting) as ConsoleField
}
/** What the console writes besides, and what a static token file holds. */
const OTHER_FIELDS = new Set(['client_type', 'coze_www_base', 'access_token', 'access_token_file', 'expires_at'])

/** What each field is, for "has no X (...)" messages. */
const FIELD_WORDS: Record<'client_id' | 'public_key_id' | 'private_key', string> = {
  client_id: 'the OAuth app id',
  public_key_id: 'the public key fingerprint, 公钥指纹',
  private_key: 'the PEM private key'
}

/** Regular files only, opened without blocking: a FIFO or a device fails at once (src/files/read.ts). */
const readText = readRegularFile

/** `ENOENT`, `EACCES`...: the part of a file error a person can act on. */
export function errno (error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error)
}

/** One console (or static token) file, parsed: its string fields, and the names it has that we do not know. */
interface ParsedFile {
  file: string
  clientType: unknown
  fields: Record<string, unknown>
  unknown: string[]
}

async function parseFile (file: string, setting: Setting, read: (path: string) => Promise<string>): Promise<ParsedFile> {
  let text: string
  try {
    text = await read(file)
  } catch (error) {
    throw new ConfigError(setting, `cannot read ${file} (${errno(error)}); ${unreadableHint(file, errno(error)) ?? fixFor(setting)}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new ConfigError(setting, `${file} is not JSON; download coze_oauth_config.json again from the Coze console`)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(setting, `${file} is not a JSON object; download coze_oauth_config.json again from the Coze console`)
  }
  const fields = json as Record<string, unknown>
  const unknown = Object.keys(fields).filter((name) => !(name in CONSOLE_FIELDS) && !OTHER_FIELDS.has(name))
  return { file, clientType: fields.client_type, fields, unknown }
}

/** A field's value as a setting's text: absent, null and '' are unset; anything but text is an error. */
function fieldText (parsed: ParsedFile, field: string, setting: Setting): string | undefined {
  const value = parsed.fields[field]
  if (value === undefined || value === null || value === '') return undefined
  if (field === 'token_ttl' && Number.isInteger(value)) return String(value)
  if (typeof value !== 'string') throw new ConfigError(setting, `${parsed.file}: ${field} must be a string`)
  return value
}

/** A sentence for a field the file lacks: which field, what it is, and what else would do. */
function missingField (parsed: ParsedFile, setting: Setting, field: keyof typeof FIELD_WORDS, envName?: string): ConfigError {
  const others = parsed.unknown.length === 0
    ? ''
    : ` (it has ${parsed.unknown.map((name) => JSON.stringify(name)).join(', ')}, which the console does not write: a typo?)`
  const instead = envName === undefined ? '' : `, or set ${envName}`
  return new ConfigError(setting, `${parsed.file} has no ${field} (${FIELD_WORDS[field]})${others}; add it from the Coze console${instead}`)
}

function checkJwtType (parsed: ParsedFile, setting: Setting): void {
  if (parsed.clientType !== 'jwt') {
    throw new ConfigError(setting, `${parsed.file} has client_type ${JSON.stringify(parsed.clientType) ?? 'missing'}, not "jwt"; download the configuration of a JWT (服务类应用) OAuth app`)
  }
}

/** The values the default credential is built from: each from the environment, else the file. */
type Values = Partial<Record<Setting, string>>

function nonEmpty (value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value
}

/** The settings that name the default app; with none of them (and no config file) there is none. */
const APP_SETTINGS = ['COZE_APP_ID', 'COZE_KEY_ID', 'COZE_PRIVATE_KEY_FILE', 'COZE_PRIVATE_KEY'] as const

/**
 * The credential named `default`, from the environment over the console file, or undefined when
 * neither names an app (then `COZE_OAUTH_CONFIG_DIR` has to).
 */
export async function readDefaultCredential (settings: Settings, sources: SourceOptions): Promise<JwtSpec | undefined> {
  const read = sources.readFile ?? readText
  const named = settings.COZE_OAUTH_CONFIG
  const file = resolve(sources.cwd, named ?? 'coze_oauth_config.json')
  let parsed: ParsedFile | undefined
  try {
    parsed = await parseFile(file, 'COZE_OAUTH_CONFIG', read)
  } catch (error) {
    const missing = (error as ConfigError).message.includes('(ENOENT)')
    if (!(named === undefined && missing)) throw error
  }
  if (parsed === undefined && APP_SETTINGS.every((name) => settings[name] === undefined)) return undefined
  if (parsed !== undefined) checkJwtType(parsed, 'COZE_OAUTH_CONFIG')

  const values: Values = {}
  const fromFile = new Set<Setting>()
  for (const [field, setting] of Object.entries(CONSOLE_FIELDS) as Array<[ConsoleField, Setting]>) {
    const inFile = parsed === undefined ? undefined : fieldText(parsed, field, 'COZE_OAUTH_CONFIG')
    if (inFile !== undefined) {
      values[setting] = inFile
      fromFile.add(setting)
    }
  }
  // The environment wins, field by field; a key in the environment replaces the file's key.
  const env = settings as Record<string, unknown>
  for (const setting of Object.values(CONSOLE_FIELDS) as Setting[]) {
    if (nonEmpty(sources.env[setting]) !== undefined) {
      values[setting] = String(env[setting])
      fromFile.delete(setting)
    }
  }
  if (settings.COZE_PRIVATE_KEY_FILE !== undefined) {
    delete values.COZE_PRIVATE_KEY
    fromFile.delete('COZE_PRIVATE_KEY')
  }
  if (values.COZE_API_BASE === undefined) values.COZE_API_BASE = settings.COZE_API_BASE
  const inFile = (setting: Setting): string | undefined => {
    if (!fromFile.has(setting) || parsed === undefined) return undefined
    return `${fieldOf(setting)} in ${parsed.file}`
  }
  if (values.COZE_APP_ID === undefined) {
    throw parsed === undefined ? required('COZE_APP_ID') : missingField(parsed, 'COZE_OAUTH_CONFIG', 'client_id', 'COZE_APP_ID')
  }
  if (values.COZE_KEY_ID === undefined) {
    throw parsed === undefined ? required('COZE_KEY_ID') : missingField(parsed, 'COZE_OAUTH_CONFIG', 'public_key_id', 'COZE_KEY_ID')
  }
  if (settings.COZE_PRIVATE_KEY_FILE !== undefined && settings.COZE_PRIVATE_KEY !== undefined) {
    throw new ConfigError('COZE_PRIVATE_KEY', 'is set together with COZE_PRIVATE_KEY_FILE; set only one of them')
  }
  let pem: string
  let privateKeyFile: string | undefined
  let keySetting: Setting
  if (settings.COZE_PRIVATE_KEY_FILE !== undefined) {
    keySetting = 'COZE_PRIVATE_KEY_FILE'
    privateKeyFile = resolve(sources.cwd, settings.COZE_PRIVATE_KEY_FILE)
    try {
      pem = await read(privateKeyFile)
    } catch (error) {
      throw new ConfigError(keySetting, `cannot read ${privateKeyFile} (${errno(error)}); ${unreadableHint(privateKeyFile, errno(error)) ?? fixFor(keySetting)}`)
    }
  } else if (values.COZE_PRIVATE_KEY !== undefined) {
    keySetting = fromFile.has('COZE_PRIVATE_KEY') ? 'COZE_OAUTH_CONFIG' : 'COZE_PRIVATE_KEY'
    pem = values.COZE_PRIVATE_KEY
  } else {
    throw parsed === undefined
      ? required('COZE_PRIVATE_KEY_FILE')
      : missingField(parsed, 'COZE_OAUTH_CONFIG', 'private_key', 'COZE_PRIVATE_KEY_FILE')
  }
  const keyFileForMode = privateKeyFile ?? (keySetting === 'COZE_OAUTH_CONFIG' ? parsed?.file : undefined)
  return await jwtSpec({
    name: 'default',
    values,
    pem,
    keyWhere: keySetting === 'COZE_OAUTH_CONFIG' ? { setting: keySetting, what: 'private_key' } : { setting: keySetting, what: 'the key' },
    ...(keyFileForMode === undefined ? {} : { keyFileForMode }),
    ...(privateKeyFile === undefined ? {} : { privateKeyFile }),
    files: [privateKeyFile, parsed?.file].filter((name) => name !== undefined),
    settingOf: (setting) => inFile(setting) === undefined ? setting : 'COZE_OAUTH_CONFIG',
    fieldPrefix: (setting) => {
      const where = inFile(setting)
      return where === undefined ? undefined : where.replace(/^(\S+) in (.*)$/, '$2: $1')
    },
    baseSetting: inFile('COZE_API_BASE') ?? 'COZE_API_BASE',
    ttl: Number(values.COZE_TOKEN_TTL ?? settings.COZE_TOKEN_TTL)
  })
}

function required (setting: Setting): ConfigError {
  return new ConfigError(setting, `is required: ${fixFor(setting)}`)
}

/** True for a file of `COZE_OAUTH_CONFIG_DIR` that names a credential: `NAME.json`. */
export function isCredentialFile (fileName: string): boolean {
  return fileName.endsWith('.json')
}

/** The files of `COZE_OAUTH_CONFIG_DIR` that name credentials, sorted. */
export async function listCredentialFiles (dir: string): Promise<string[]> {
  const names = await readdir(dir)
  return names.filter(isCredentialFile).sort().map((name) => join(dir, name))
}

/** A credential's name from its file: the stem, if it is a valid name. */
export function credentialName (file: string): string {
  const stem = basename(file).replace(/\.json$/, '')
  if (!new RegExp(CREDENTIAL_NAME_PATTERN).test(stem)) {
    throw new ConfigError('COZE_OAUTH_CONFIG_DIR', `${file}: "${stem}" is not a credential name; rename the file to NAME.json, with NAME of letters, digits, _ and - (at most 64)`)
  }
  return stem
}

/**
 * One credential of `COZE_OAUTH_CONFIG_DIR`: a console file as downloaded (with, optionally,
 * `token_ttl`, `account_id`, `enterprise_id`, `jwt_audience`), or a static token file.
 */
export async function readCredentialFile (file: string, settings: Settings, sources: SourceOptions): Promise<CredentialSpec> {
  const read = sources.readFile ?? readText
  const setting = 'COZE_OAUTH_CONFIG_DIR'
  const name = credentialName(file)
  const parsed = await parseFile(file, setting, read)
  if (parsed.clientType === 'static_token') return await staticSpec(name, parsed, settings, read)
  checkJwtType(parsed, setting)
  const values: Values = {}
  for (const [field, target] of Object.entries(CONSOLE_FIELDS) as Array<[ConsoleField, Setting]>) {
    const value = fieldText(parsed, field, setting)
    if (value !== undefined) values[target] = value
  }
  values.COZE_API_BASE ??= settings.COZE_API_BASE
  values.COZE_TOKEN_TTL ??= String(settings.COZE_TOKEN_TTL)
  if (values.COZE_APP_ID === undefined) throw missingField(parsed, setting, 'client_id')
  if (values.COZE_KEY_ID === undefined) throw missingField(parsed, setting, 'public_key_id')
  if (values.COZE_PRIVATE_KEY === undefined) throw missingField(parsed, setting, 'private_key')
  return await jwtSpec({
    name,
    origin: file,
    values,
    pem: values.COZE_PRIVATE_KEY,
    keyWhere: { setting, what: `${file}: private_key` },
    keyFileForMode: file,
    files: [file],
    settingOf: () => setting,
    fieldPrefix: (target) => `${file}: ${fieldOf(target)}`,
    baseSetting: `coze_api_base in ${file}`,
    ttl: Number(values.COZE_TOKEN_TTL)
  })
}

interface JwtSpecInput {
  name: string
  origin?: string
  values: Values
  pem: string
  keyWhere: { setting: Setting, what: string }
  keyFileForMode?: string
  privateKeyFile?: string
  files: string[]
  /** The setting a problem with `target` is reported under. */
  settingOf: (target: Setting) => Setting
  /** How a problem with `target` is introduced, for files; the setting's own name otherwise. */
  fieldPrefix?: (target: Setting) => string | undefined
  baseSetting: string
  ttl: number
}

async function jwtSpec (input: JwtSpecInput): Promise<JwtSpec> {
  const { values } = input
  const warnings: string[] = []
  const problem = (target: Setting, message: string): ConfigError => {
    const where = input.fieldPrefix?.(target)
    return new ConfigError(input.settingOf(target), where === undefined ? message : `${where} ${message}`)
  }
  const appId = values.COZE_APP_ID as string
  const keyId = values.COZE_KEY_ID as string
  for (const target of ['COZE_APP_ID', 'COZE_KEY_ID', 'COZE_JWT_AUDIENCE'] as const) {
    const value = values[target]
    if (value !== undefined && (!new RegExp(PRINTABLE, 'u').test(value) || value.length > 256)) {
      throw problem(target, `is invalid (control characters, or too long): ${fixFor(target)}`)
    }
  }
  let privateKey: KeyObject
  try {
    privateKey = parsePrivateKey(input.pem)
  } catch (error) {
    // parsePrivateKey throws only PrivateKeyError, whose message never holds key material.
    throw new ConfigError(input.keyWhere.setting, `${input.keyWhere.what} ${(error as PrivateKeyError).message}`)
  }
  const fingerprint = keyFingerprint(privateKey)
  if (fingerprint !== keyId) {
    const named = input.name === 'default' ? 'COZE_KEY_ID' : `public_key_id of ${input.name}`
    warnings.push(`${named} does not match the fingerprint computed from the private key (${fingerprint}); ` +
      'the derivation is not documented by Coze, but if Coze answers "kid not been registred", check that the key id belongs to this key')
  }
  await warnIfExposed(input.keyFileForMode, input.keyWhere.setting, warnings)

  const base = parseBase(values.COZE_API_BASE as string, (message) => problem('COZE_API_BASE', message))
  const ttl = input.ttl
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86399) throw problem('COZE_TOKEN_TTL', `is invalid: ${fixFor('COZE_TOKEN_TTL')}`)
  const defaultRequest: TokenRequest = { ttl }
  const [account, enterprise] = ID_VARIANTS
  if (values[account.id.setting] !== undefined && values[enterprise.id.setting] !== undefined) {
    throw problem(enterprise.id.setting, `is set together with ${account.id.setting}; a token is either cross-account or enterprise, set only one`)
  }
  for (const variant of ID_VARIANTS) {
    const id = values[variant.id.setting]
    if (id === undefined) continue
    if (!new RegExp(variant.id.pattern).test(id)) throw problem(variant.id.setting, `is invalid: set it to ${variant.id.hint}, or leave it unset`)
    defaultRequest[variant.id.request] = id
  }
  return {
    kind: 'jwt',
    name: input.name,
    ...(input.origin === undefined ? {} : { origin: input.origin }),
    appId,
    keyId,
    privateKey,
    ...(input.privateKeyFile === undefined ? {} : { privateKeyFile: input.privateKeyFile }),
    apiBase: base.href.replace(/\/+$/, ''),
    // Coze's docs: aud is the API host, "api.coze.cn"; coze-py and coze-go keep a non-default port.
    audience: values.COZE_JWT_AUDIENCE ?? base.host,
    // Frozen: shared by every request that selects nothing, and its cache key is made once (token/cache.ts).
    defaultRequest: Object.freeze(defaultRequest),
    files: input.files,
    baseSetting: input.baseSetting,
    warnings
  }
}

const STATIC_TOKEN = /^[\x21-\x7E]{8,4096}$/

async function staticSpec (name: string, parsed: ParsedFile, settings: Settings, read: (path: string) => Promise<string>): Promise<StaticSpec> {
  const setting = 'COZE_OAUTH_CONFIG_DIR'
  const { file } = parsed
  const inline = fieldText(parsed, 'access_token', setting)
  const tokenFile = fieldText(parsed, 'access_token_file', setting)
  if ((inline === undefined) === (tokenFile === undefined)) {
    throw new ConfigError(setting, `${file}: a static_token file needs exactly one of access_token and access_token_file`)
  }
  let token = inline
  const files = [file]
  if (tokenFile !== undefined) {
    const path = resolve(file, '..', tokenFile)
    files.push(path)
    try {
      token = (await read(path)).trim()
    } catch (error) {
      throw new ConfigError(setting, `${file}: cannot read access_token_file ${path} (${errno(error)})`)
    }
  }
  if (!STATIC_TOKEN.test(token as string)) {
    throw new ConfigError(setting, `${file}: the access token must be 8 to 4096 printable characters without spaces (a pat_... or sat_... token from the Coze console)`)
  }
  const expiresText = fieldText(parsed, 'expires_at', setting)
  const expiresAt = expiresText === undefined ? undefined : Date.parse(expiresText)
  if (expiresAt !== undefined && Number.isNaN(expiresAt)) {
    throw new ConfigError(setting, `${file}: expires_at must be a date and time such as 2027-01-31T00:00:00Z`)
  }
  const base = parseBase(fieldText(parsed, 'coze_api_base', setting) ?? settings.COZE_API_BASE, (message) => new ConfigError(setting, `${file}: coze_api_base ${message}`))
  const warnings: string[] = []
  await warnIfExposed(tokenFile === undefined ? file : files[1], setting, warnings, 'an access token')
  return {
    kind: 'static',
    name,
    origin: file,
    token: token as string,
    ...(expiresAt === undefined ? {} : { expiresAt: Math.floor(expiresAt / 1000) }),
    apiBase: base.href.replace(/\/+$/, ''),
    files,
    baseSetting: `coze_api_base in ${file}`,
    warnings
  }
}

/** A key readable by others is a key others have: worth a warning at every load. */
async function warnIfExposed (file: string | undefined, setting: string, warnings: string[], what = 'the private key'): Promise<void> {
  if (file === undefined) return
  const mode = await stat(file).then((info) => info.mode & 0o777, () => 0)
  if ((mode & 0o077) !== 0) {
    warnings.push(`${setting}: ${file} holds ${what} and is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); \`chmod 600\` it`)
  }
}

/** An API base: http(s), nothing but scheme, host, port and path. */
export function parseBase (value: string, problem: (message: string) => ConfigError): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw problem(`is not a URL: ${fixFor('COZE_API_BASE')}`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw problem(`must be http(s), not ${url.protocol.replace(/:$/, '')}: ${fixFor('COZE_API_BASE')}`)
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw problem(`must not contain credentials, a query or a fragment: ${fixFor('COZE_API_BASE')}`)
  }
  return url
}
