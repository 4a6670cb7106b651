/**
 * The emulator's world: registered OAuth apps and their keys, issued tokens, used `jti`s, the
 * exchanges it has seen, and the faults it has been told to inject. Framework-free.
 *
 * It shares no protocol code with the sidecar on purpose: it is the independent check.
 *
 * @example
 * const state = new EmulatorState({ now: Date.now })
 * const { kid } = state.registerApp({ appId: '1127900106117', audience: '127.0.0.1:8090', keys: [{ publicKey: pem }] })
 * state.injectFault({ kind: 'status', status: 500 }) // the next token request fails once
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto'
import { ApiState } from './api-state.js'

export type AppType = 'normal' | 'channel' | 'privileged'

export interface EmulatorAppInput {
  appId: string
  name?: string
  /** normal (developer / cross-account), channel, or privileged (enterprise). Default normal. */
  type?: AppType
  enabled?: boolean
  /** Channel apps must be bound to a publish channel to get tokens. Default true. */
  channelBound?: boolean
  /** Up to 3 keys per app, like Coze. `kid` defaults to the console's fingerprint of the key. */
  keys: Array<{ kid?: string, publicKey: string | KeyObject }>
  /**
   * The `aud` the app's JWTs must carry, e.g. `api.coze.cn` or `127.0.0.1:8090`; several are
   * accepted when given (the first is the one error messages name).
   */
  audience: string | string[]
  /** Accounts (or organizations) that authorized this app: the cross-account path. */
  authorizedAccounts?: string[]
  /** Enterprises whose privileged app this is: the enterprise path. */
  enterprises?: string[]
}

export interface EmulatorApp {
  appId: string
  name: string
  type: AppType
  enabled: boolean
  channelBound: boolean
  keys: Map<string, KeyObject>
  /** The first accepted `aud`. */
  audience: string
  audiences: Set<string>
  authorizedAccounts: Set<string>
  enterprises: Set<string>
}

export interface IssuedRecord {
  appId: string
  /** Unix seconds. */
  expiresAt: number
  sessionName?: string
  sessionContext?: unknown
  scope?: unknown
  accountId?: string
  enterpriseId?: string
}

/** One token request the emulator received, kept for tests and for the state endpoint. */
export interface ExchangeRecord {
  at: number
  path: string
  status: number
  errorCode?: string
  appId?: string
  kid?: string
  /** The raw JWT, in-process only (never served over HTTP). */
  jwt?: string
  header?: Record<string, unknown>
  claims?: Record<string, unknown>
  body?: unknown
  fault?: Fault['kind']
}

export type Fault =
  | { kind: 'status', status: number, retryAfter?: string, errorCode?: string }
  | { kind: 'delay', ms: number }
  | { kind: 'hang' }
  | { kind: 'html', status?: number }
  | { kind: 'drop' }
  | { kind: 'no_token' }
  | { kind: 'expired' }

export interface EmulatorKnobs {
  /** Seconds of clock skew tolerated on `iat` and `exp`. [U] at Coze; default 60. */
  leewaySeconds: number
  /**
   * Longest `exp - iat` accepted. [U]: Coze documents no cap (its docs' own example JWT lives far
   * longer); default 86400 so that coze-go and coze-java, whose JWTs live as long as the token
   * asked for (up to 86399 s), pass. `--max-jwt-lifetime` sets it in the CLI.
   */
  maxJwtLifetimeSeconds: number
  /** Refuse a JWT header without `typ: JWT`. Default true (every SDK sends it). */
  requireTyp: boolean
  /** Add `token_type: "Bearer"` to success answers. Undocumented for JWT; default false. */
  tokenType: boolean
}

export const DEFAULT_KNOBS: EmulatorKnobs = {
  leewaySeconds: 60,
  maxJwtLifetimeSeconds: 86_400,
  requireTyp: true,
  tokenType: false
}

const MAX_RECORDS = 1_000
const MAX_TOKENS = 100_000
const MAX_JTIS = 100_000

/** The fingerprint Coze's console shows for a key (docs/coze-protocol.md §9): base64url(SHA-256(SPKI PEM)). */
export function consoleFingerprint (publicKey: KeyObject): string {
  const pem = publicKey.export({ type: 'spki', format: 'pem' })
  return createHash('sha256').update(pem).digest('base64url')
}

export class EmulatorState {
  readonly apps = new Map<string, EmulatorApp>()
  readonly tokens = new Map<string, IssuedRecord>()
  readonly records: ExchangeRecord[] = []
  readonly knobs: EmulatorKnobs
  /** The Coze API's side: calls received, stream pace, token refusals (src/emulator/api.ts). */
  readonly api = new ApiState()
  /** Token requests received, faults included. */
  exchangeCount = 0
  readonly #now: () => number
  readonly #faults: Array<{ fault: Fault, remaining: number }> = []
  /** `${iss} ${jti}` → exp: a JWT is accepted once. */
  readonly #jtis = new Map<string, number>()

  constructor (options: { now?: () => number, knobs?: Partial<EmulatorKnobs> | undefined } = {}) {
    this.#now = options.now ?? Date.now
    this.knobs = { ...DEFAULT_KNOBS, ...options.knobs }
  }

  /** Unix seconds on the emulator's clock. */
  nowSeconds (): number {
    return Math.floor(this.#now() / 1000)
  }

  registerApp (input: EmulatorAppInput): { appId: string, kids: string[] } {
    if (input.keys.length === 0 || input.keys.length > 3) throw new Error('an app has 1 to 3 keys')
    const audiences = typeof input.audience === 'string' ? [input.audience] : input.audience
    if (audiences[0] === undefined) throw new Error('an app has at least one audience')
    const keys = new Map<string, KeyObject>()
    for (const { kid, publicKey } of input.keys) {
      // A private key (KeyObject or PEM) is accepted too; its public half is what gets registered.
      const key = typeof publicKey !== 'string' && publicKey.type === 'public' ? publicKey : createPublicKey(publicKey)
      keys.set(kid ?? consoleFingerprint(key), key)
    }
    this.apps.set(input.appId, {
      appId: input.appId,
      name: input.name ?? `app ${input.appId}`,
      type: input.type ?? 'normal',
      enabled: input.enabled ?? true,
      channelBound: input.channelBound ?? true,
      keys,
      audience: audiences[0],
      audiences: new Set(audiences),
      authorizedAccounts: new Set(input.authorizedAccounts ?? []),
      enterprises: new Set(input.enterprises ?? [])
    })
    return { appId: input.appId, kids: [...keys.keys()] }
  }

  /** Disabling suspends an app's tokens; enabling restores them (Coze's OAuth app management). */
  setEnabled (appId: string, enabled: boolean): boolean {
    const app = this.apps.get(appId)
    if (app === undefined) return false
    app.enabled = enabled
    return true
  }

  /** Revoking deletes every current token of the app. */
  revokeApp (appId: string): number {
    let revoked = 0
    for (const [token, record] of this.tokens) {
      if (record.appId === appId) {
        this.tokens.delete(token)
        revoked++
      }
    }
    return revoked
  }

  /** Queues a fault for the next `times` token requests (default 1; `Infinity` until cleared). */
  injectFault (fault: Fault, times = 1): void {
    this.#faults.push({ fault, remaining: times })
  }

  clearFaults (): void {
    this.#faults.length = 0
  }

  /** The fault for this token request, if any is queued. */
  takeFault (): Fault | undefined {
    const head = this.#faults[0]
    if (head === undefined) return undefined
    head.remaining--
    if (head.remaining <= 0) this.#faults.shift()
    return head.fault
  }

  record (entry: ExchangeRecord): void {
    this.records.push(entry)
    if (this.records.length > MAX_RECORDS) this.records.splice(0, this.records.length - MAX_RECORDS)
  }

  /** Marks `jti` used for `iss` until `exp`. False when it was used before. */
  useJti (iss: string, jti: string, exp: number): boolean {
    const key = `${iss} ${jti}`
    if (this.#jtis.has(key)) return false
    if (this.#jtis.size >= MAX_JTIS) this.#prune(this.#jtis, (value) => value, MAX_JTIS)
    this.#jtis.set(key, exp)
    return true
  }

  issue (record: IssuedRecord): string {
    if (this.tokens.size >= MAX_TOKENS) this.#prune(this.tokens, (value) => value.expiresAt, MAX_TOKENS)
    const token = `czs_${randomAlphanumeric(64)}`
    this.tokens.set(token, record)
    return token
  }

  /** The record of a token that is valid now, or why it is not. */
  lookup (token: string): IssuedRecord | undefined {
    const record = this.tokens.get(token)
    if (record === undefined || record.expiresAt <= this.nowSeconds()) return undefined
    if (this.apps.get(record.appId)?.enabled !== true) return undefined
    return record
  }

  #prune<V> (map: Map<string, V>, expiry: (value: V) => number, max: number): void {
    const now = this.nowSeconds()
    for (const [key, value] of map) if (expiry(value) <= now) map.delete(key)
    // Still full of live entries: drop the oldest tenth rather than grow without bound.
    if (map.size >= max) {
      let drop = Math.ceil(map.size / 10)
      for (const key of map.keys()) {
        if (drop-- <= 0) break
        map.delete(key)
      }
    }
  }
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

function randomAlphanumeric (length: number): string {
  let out = ''
  while (out.length < length) {
    // 248 = 4 * 62: bytes at or above it are skipped, so every character is equally likely.
    for (const byte of randomBytes(length)) {
      if (byte < 248 && out.length < length) out += ALPHANUMERIC[byte % 62]
    }
  }
  return out
}

/** Coze's log ids: `yyyyMMddHHmmss` (UTC here) and 20 uppercase hex digits. */
export function newLogid (now: number): string {
  const stamp = new Date(now).toISOString().replace(/[-:T]/g, '').slice(0, 14)
  return stamp + randomBytes(10).toString('hex').toUpperCase()
}
