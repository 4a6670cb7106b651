/**
 * The callers file (`SIDECAR_CALLERS_FILE`): who may take which token. Framework-free: text in,
 * callers out, or a {@link CallersFileError} naming the field at fault
 * (`callers.billing.session_names[1]`).
 *
 * ```json
 * { "callers": {
 *     "billing": { "secret_sha256": "9f86d0…", "apps": ["default"], "session_names": ["billing-*"],
 *                  "max_ttl": 600, "gateway": ["/v3/chat"], "defaults": { "session_name": "billing-batch" } },
 *     "ops":     { "secret_file": "ops.secret", "apps": ["*"], "session_names": ["*"],
 *                  "accounts": ["*"], "enterprises": ["*"], "gateway": ["/*"] } } }
 * ```
 *
 * Absent rules allow least: `apps` absent is the default credential only; `session_names` absent
 * is only requests that name no session; `accounts`, `enterprises` and `gateway` absent are none;
 * `max_ttl` absent is Coze's own limit. JSON only: JSON is YAML too, so a YAML tool can write it.
 *
 * @example
 * const entries = parseCallers(await readFile(file, 'utf8'), file)
 * entries[0].caller.sessionNames?.matches('billing-42')
 */
import { dirname, resolve } from 'node:path'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { ID_VARIANTS } from '../coze/variants.js'
import { Patterns } from './patterns.js'

/** The name of the credential the single-app settings make. */
export const DEFAULT_APP = 'default'

export interface CallerDefaults {
  /** The credential for requests that name none. */
  app?: string
  /** The session name for requests that name none. */
  sessionName?: string
  /** The `ttl` for requests that name none (else the service's, capped at `max_ttl`). */
  ttl?: number
}

/** One caller's rights. */
export interface Caller {
  readonly name: string
  /** Every right: `SIDECAR_AUTH_TOKEN`'s caller, or anyone when no caller secret is configured. */
  readonly all: boolean
  /** Absent: the default credential only (`SIDECAR_DEFAULT_APP`, the only one, or `default`). */
  readonly apps?: Patterns
  /** Absent: only requests that name no session. */
  readonly sessionNames?: Patterns
  /** Absent: no cross-account tokens. */
  readonly accounts?: Patterns
  /** Absent: no enterprise tokens. */
  readonly enterprises?: Patterns
  /** Coze API paths through the gateway; absent: no gateway. */
  readonly gateway?: Patterns
  readonly maxTtl?: number
  readonly defaults: Readonly<CallerDefaults>
}

/** A caller and how it proves who it is. */
export interface CallerEntry {
  caller: Caller
  /** The SHA-256 of its secret (lower-case hex), or the file that holds the secret. */
  secret: { sha256: string } | { file: string }
}

/** The name of `SIDECAR_AUTH_TOKEN`'s caller. */
export const DEFAULT_CALLER = 'default'
/** The name logged for requests when no caller secret is configured at all. */
export const ANONYMOUS_CALLER = 'anonymous'

const ALL = new Patterns(['*'])

/** A caller with every right. */
export function everyRight (name: string): Caller {
  return Object.freeze({ name, all: true, apps: ALL, sessionNames: ALL, accounts: ALL, enterprises: ALL, gateway: ALL, defaults: {} })
}

/** Everyone, when no caller secret is configured: every right, and a name for the logs. */
export const ANONYMOUS = everyRight(ANONYMOUS_CALLER)

/** Why a callers file was refused: the field (`callers.billing.max_ttl`) and what is wrong. */
export class CallersFileError extends Error {
  readonly field: string

  constructor (file: string, field: string, problem: string) {
    super(`${file}: ${field} ${problem}`)
    this.name = 'CallersFileError'
    this.field = field
  }
}

const NAME = '^[A-Za-z0-9_-]{1,64}$'
const PRINTABLE = '^[^\\u0000-\\u001F\\u007F]+$'
const list = (items: object) => ({ type: 'array', maxItems: 1000, items }) as const
const appName = { type: 'string', pattern: '^([A-Za-z0-9_-]{1,64}|\\*)$' } as const
const sessionName = { type: 'string', minLength: 1, maxLength: 256, pattern: PRINTABLE } as const
const ttl = { type: 'integer', minimum: 1, maximum: 86399 } as const

/**
 * The file's shape. Rules that relate fields to each other are checked after it. A function, as
 * config.ts (whose id patterns it uses) imports this module's neighbours: read once, at first use.
 */
export const callersFileSchema = () => ({
  type: 'object',
  additionalProperties: false,
  required: ['callers'],
  properties: {
    callers: {
      type: 'object',
      maxProperties: 1000,
      propertyNames: { pattern: NAME },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          secret_sha256: { type: 'string', pattern: '^[0-9A-Fa-f]{64}$' },
          secret_file: { type: 'string', minLength: 1, maxLength: 4096, pattern: PRINTABLE },
          apps: list(appName),
          session_names: list(sessionName),
          accounts: list({ type: 'string', pattern: `${ID_VARIANTS[0].id.pattern}|^\\*$` }),
          enterprises: list({ type: 'string', pattern: ID_VARIANTS[1].id.pattern }),
          gateway: list({ type: 'string', minLength: 1, maxLength: 2048, pattern: '^[/*][^\\u0000-\\u0020\\u007F?#]*$' }),
          max_ttl: ttl,
          defaults: {
            type: 'object',
            additionalProperties: false,
            properties: { app: { type: 'string', pattern: NAME }, session_name: sessionName, ttl }
          }
        }
      }
    }
  }
}) as const

/** Words for pattern failures, by the field's name. */
const PATTERN_HINTS: Record<string, string> = {
  secret_sha256: 'must be the hex SHA-256 of the secret (64 hex digits: `printf %s "$SECRET" | sha256sum`)',
  apps: 'must be a credential name (letters, digits, _ and -) or *',
  app: 'must be a credential name (letters, digits, _ and -)',
  accounts: 'must be a numeric Coze account id (digits only, at most 20) or *',
  enterprises: 'must be an enterprise id (letters, digits, _ . : * -, at most 128) or *',
  gateway: 'must be a path glob that starts with / (or *), without spaces, ? or #',
  callers: 'must be a caller name of letters, digits, _ and - (at most 64)'
}

let compiled: ValidateFunction | undefined
const validator = (): ValidateFunction => (compiled ??= new Ajv({ allErrors: false, strict: true }).compile(callersFileSchema()))

/** Ajv's `/callers/billing/session_names/1` as `callers.billing.session_names[1]`. */
function fieldPath (pointer: string, extra?: string): string {
  const parts = pointer.split('/').slice(1)
  if (extra !== undefined) parts.push(extra)
  return parts.map((part, index) => /^\d+$/.test(part) ? `[${part}]` : `${index === 0 ? '' : '.'}${part}`).join('')
}

function describe (problem: ErrorObject): { field: string, problem: string } {
  const p = problem.params as Record<string, unknown>
  switch (problem.keyword) {
    case 'required': return { field: fieldPath(problem.instancePath, String(p.missingProperty)), problem: 'is required' }
    case 'additionalProperties': return { field: fieldPath(problem.instancePath, String(p.additionalProperty)), problem: 'is not a known field' }
  }
  const field = problem.instancePath === '' ? '(the file)' : fieldPath(problem.instancePath)
  // The field's own name, or the name of the list it is an item of.
  const name = problem.instancePath.split('/').filter((part) => !/^\d+$/.test(part)).pop() as string
  switch (problem.keyword) {
    case 'type': return { field, problem: `must be ${problem.params.type === 'array' ? 'a list' : problem.params.type === 'object' ? 'a JSON object' : `a${String(p.type) === 'integer' ? 'n' : ''} ${String(p.type)}`}` }
    case 'minimum': case 'maximum': return { field, problem: `must be ${String(p.comparison)} ${String(p.limit)}` }
    case 'minLength': return { field, problem: 'must not be empty' }
    case 'maxLength': return { field, problem: `must be at most ${String(p.limit)} characters` }
    case 'maxItems': return { field, problem: `must have at most ${String(p.limit)} items` }
    case 'maxProperties': return { field, problem: `must have at most ${String(p.limit)} callers` }
    case 'pattern': {
      // propertyNames reports the parent, with the offending name beside it.
      const caller = (problem as ErrorObject & { propertyName?: string }).propertyName
      return caller === undefined
        ? { field, problem: PATTERN_HINTS[name] ?? 'must not contain control characters' }
        : { field: `${field}.${caller}`, problem: 'is not a valid caller name: use letters, digits, _ and - (at most 64)' }
    }
  }
  /* c8 ignore next - every keyword of the schema is described above */
  return { field, problem: problem.message ?? 'is invalid' }
}

interface RawCaller {
  secret_sha256?: string
  secret_file?: string
  apps?: string[]
  session_names?: string[]
  accounts?: string[]
  enterprises?: string[]
  gateway?: string[]
  max_ttl?: number
  defaults?: { app?: string, session_name?: string, ttl?: number }
}

/**
 * Parses and checks a callers file. `secret_file` paths are resolved against the file's folder.
 * @throws CallersFileError naming the first field at fault; never a secret.
 */
export function parseCallers (text: string, file: string, reserved: readonly string[] = []): CallerEntry[] {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new CallersFileError(file, '(the file)', `is not JSON (${(error as Error).message})`)
  }
  const validate = validator()
  if (!validate(json)) {
    const { field, problem } = describe((validate.errors as ErrorObject[])[0] as ErrorObject)
    throw new CallersFileError(file, field, problem)
  }
  const callers = (json as { callers: Record<string, RawCaller> }).callers
  const entries: CallerEntry[] = []
  const digests = new Map<string, string>()
  for (const [name, raw] of Object.entries(callers)) {
    const at = `callers.${name}`
    if (reserved.includes(name)) throw new CallersFileError(file, at, 'is a name taken by SIDECAR_AUTH_TOKEN; choose another')
    if ((raw.secret_sha256 === undefined) === (raw.secret_file === undefined)) {
      throw new CallersFileError(file, `${at}.secret_sha256`, 'or secret_file is required, and only one of them')
    }
    const caller: Caller = Object.freeze({
      name,
      all: false,
      ...(raw.apps === undefined ? {} : { apps: new Patterns(raw.apps) }),
      ...(raw.session_names === undefined ? {} : { sessionNames: new Patterns(raw.session_names, { globs: true }) }),
      ...(raw.accounts === undefined ? {} : { accounts: new Patterns(raw.accounts) }),
      ...(raw.enterprises === undefined ? {} : { enterprises: new Patterns(raw.enterprises) }),
      ...(raw.gateway === undefined ? {} : { gateway: new Patterns(raw.gateway, { globs: true }) }),
      ...(raw.max_ttl === undefined ? {} : { maxTtl: raw.max_ttl }),
      defaults: Object.freeze({
        ...(raw.defaults?.app === undefined ? {} : { app: raw.defaults.app }),
        ...(raw.defaults?.session_name === undefined ? {} : { sessionName: raw.defaults.session_name }),
        ...(raw.defaults?.ttl === undefined ? {} : { ttl: raw.defaults.ttl })
      })
    })
    checkDefaults(file, at, caller)
    let secret: CallerEntry['secret']
    if (raw.secret_sha256 !== undefined) {
      const sha256 = raw.secret_sha256.toLowerCase()
      const twin = digests.get(sha256)
      if (twin !== undefined) throw new CallersFileError(file, `${at}.secret_sha256`, `is the same secret as callers.${twin}'s; give each caller its own`)
      digests.set(sha256, name)
      secret = { sha256 }
    } else {
      secret = { file: resolve(dirname(file), raw.secret_file as string) }
    }
    entries.push({ caller, secret })
  }
  return entries
}

/** A default must be something the caller may ask for, or every request that relies on it fails. */
function checkDefaults (file: string, at: string, caller: Caller): void {
  const { app, sessionName, ttl } = caller.defaults
  if (app !== undefined && caller.apps?.matches(app) !== true) {
    throw new CallersFileError(file, `${at}.defaults.app`, `${JSON.stringify(app)} is not one of the caller's apps (list it in apps)`)
  }
  if (sessionName !== undefined && caller.sessionNames?.matches(sessionName) !== true) {
    throw new CallersFileError(file, `${at}.defaults.session_name`, `${JSON.stringify(sessionName)} is not allowed by the caller's session_names`)
  }
  if (ttl !== undefined && caller.maxTtl !== undefined && ttl > caller.maxTtl) {
    throw new CallersFileError(file, `${at}.defaults.ttl`, `must be at most the caller's max_ttl (${caller.maxTtl})`)
  }
}
