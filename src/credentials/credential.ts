/**
 * One named credential, whole on its own: its base, audience, key, variant defaults and TTL; its
 * own token cache (tokens of different apps never mix) and exchange rate bucket; its own wrong
 * region diagnosis. A reload applies a new spec whole.
 *
 * @example
 * const credential = createCredential(spec, context)
 * const token = await credential.tokens.get(credential.defaultRequest, 5_000)
 */
import type { Dispatcher } from 'undici'
import type { Clock } from '../clock.js'
import { CozeTokenClient, type TokenTarget } from '../coze/client.js'
import { ExchangeError, type IssuedToken } from '../coze/exchange.js'
import type { TokenRequest } from '../coze/variants.js'
import { TokenCache, type CacheStats, type ExchangeReport, type ServedToken, type TokenStatus } from '../token/cache.js'
import { TokenError } from '../token/errors.js'
import type { RetryPolicy } from '../token/policy.js'
import { TokenBucket } from '../token/rate.js'
import type { CredentialSpec, JwtSpec, StaticSpec } from './sources.js'

/** What every credential shares: the clock, the HTTP pool, the policies. */
export interface CredentialContext {
  clock: Clock
  dispatcher: Dispatcher
  httpTimeoutMs: number
  userAgent: string
  cacheMax: number
  retry: RetryPolicy
  exchangeRate: { perSecond: number, burst: number }
  /** `COZE_ALTERNATE_API_BASE`: a base, `off`, or undefined for the other Coze region. */
  alternateApiBase?: string
  random?: () => number
  onExchange: (app: string, report: ExchangeReport) => void
  /** The key Coze refused is registered at another base. */
  onWrongRegion: (app: string, diagnosis: RegionDiagnosis) => void
}

export interface RegionDiagnosis {
  configured: string
  registeredAt: string
  /** Where to change it. */
  setting: string
}

/** The token side of a credential, the same for minted and static tokens. */
export interface TokenSource {
  /** `caller` names who asked, in the report of an exchange this starts. */
  get: (request: TokenRequest, deadlineMs: number, caller?: string) => Promise<ServedToken>
  /** A new token even while the cached one is valid (the page's New token); the cached one is kept until it arrives. */
  renew: (request: TokenRequest, deadlineMs: number) => Promise<ServedToken>
  cached: (request: TokenRequest) => ServedToken | undefined
  delete: (request: TokenRequest) => boolean
  status: (request: TokenRequest) => TokenStatus
  /** Answers every caller waiting for Coze with `shutting_down`, now and from now on; how many waited. */
  shed: () => number
  readonly size: number
  readonly stats: CacheStats
  readonly skewMs: number | undefined
}

export interface Credential {
  readonly name: string
  readonly spec: CredentialSpec
  readonly tokens: TokenSource
  /** The request of callers that name no variant, session or ttl. */
  readonly defaultRequest: TokenRequest
  /** Set once a refused key was found registered at another base. */
  readonly wrongRegion: RegionDiagnosis | undefined
  /** Applies a reloaded spec of the same kind, whole. */
  apply: (spec: CredentialSpec) => void
  close: () => void
}

export function createCredential (spec: CredentialSpec, context: CredentialContext): Credential {
  return spec.kind === 'jwt' ? new JwtCredential(spec, context) : new StaticCredential(spec, context.clock)
}

const COZE_REGIONS = ['https://api.coze.cn', 'https://api.coze.com']

/** The base to ask whether a refused key lives there: the other Coze region, unless told otherwise. */
export function alternateBase (apiBase: string, setting: string | undefined): string | undefined {
  if (setting === 'off') return undefined
  const other = setting ?? COZE_REGIONS.find((base) => base !== apiBase && COZE_REGIONS.includes(apiBase))
  return other === undefined || other.replace(/\/+$/, '') === apiBase ? undefined : other.replace(/\/+$/, '')
}

class JwtCredential implements Credential {
  readonly name: string
  readonly tokens: TokenCache
  #spec: JwtSpec
  #wrongRegion: RegionDiagnosis | undefined
  /** The one probe of the other region for the current key. */
  #probe: Promise<RegionDiagnosis | undefined> | undefined
  readonly #client: CozeTokenClient
  readonly #context: CredentialContext

  constructor (spec: JwtSpec, context: CredentialContext) {
    this.name = spec.name
    this.#spec = spec
    this.#context = context
    this.#client = new CozeTokenClient({ clock: context.clock, target: () => this.#target(this.#spec.apiBase, this.#spec.audience) })
    this.tokens = new TokenCache({
      mint: (request) => this.#mint(request),
      clock: context.clock,
      max: context.cacheMax,
      retry: context.retry,
      rate: new TokenBucket({ ...context.exchangeRate, clock: context.clock }),
      ...(context.random === undefined ? {} : { random: context.random }),
      onExchange: (report) => context.onExchange(this.name, report)
    })
  }

  get spec (): JwtSpec {
    return this.#spec
  }

  get defaultRequest (): TokenRequest {
    return this.#spec.defaultRequest
  }

  get wrongRegion (): RegionDiagnosis | undefined {
    return this.#wrongRegion
  }

  apply (next: CredentialSpec): void {
    const spec = next as JwtSpec
    const previous = this.#spec
    this.#spec = spec
    // Another app, region or audience: its tokens are not this one's.
    if (previous.appId !== spec.appId || previous.apiBase !== spec.apiBase || previous.audience !== spec.audience) this.tokens.clear()
    if (previous.keyId !== spec.keyId || !previous.privateKey.equals(spec.privateKey) || previous.apiBase !== spec.apiBase) {
      this.#probe = undefined
      this.#wrongRegion = undefined
    }
  }

  close (): void {
    this.tokens.close()
  }

  #target (baseUrl: string, audience: string): TokenTarget {
    const { appId, keyId, privateKey } = this.#spec
    const { dispatcher, httpTimeoutMs, userAgent } = this.#context
    return {
      signer: { appId, keyId, privateKey, audience },
      // COZE_HTTP_TIMEOUT bounds the whole call too: an answer that drips its body is abandoned.
      http: { baseUrl, dispatcher, headersTimeoutMs: httpTimeoutMs, bodyTimeoutMs: httpTimeoutMs, exchangeTimeoutMs: httpTimeoutMs, userAgent }
    }
  }

  async #mint (request: TokenRequest): Promise<IssuedToken> {
    try {
      return await this.#client.requestToken(request)
    } catch (error) {
      if (!(error instanceof ExchangeError) || error.errorCode !== 'invalid_client') throw error
      const diagnosis = await (this.#probe ??= this.#probeOtherRegion())
      if (diagnosis === undefined) throw error
      throw error.withHint(`this key is registered at ${diagnosis.registeredAt}, not at ${diagnosis.configured}: set ${diagnosis.setting} to ${diagnosis.registeredAt}`)
    }
  }

  /**
   * Asks the other region, once per key, whether it knows this key: a fresh JWT with that
   * region's audience. Any answer but `invalid_client` from Coze means it does. The token such a
   * probe may bring back is dropped: where data goes is the user's decision, never switched here.
   */
  async #probeOtherRegion (): Promise<RegionDiagnosis | undefined> {
    const configured = this.#spec.apiBase
    const other = alternateBase(configured, this.#context.alternateApiBase)
    if (other === undefined) return undefined
    const known = await this.#client.requestToken({ ttl: 60 }, this.#target(other, new URL(other).host)).then(
      () => true,
      (error: ExchangeError) => error.kind === 'refused' && error.errorCode !== undefined && error.errorCode !== 'invalid_client')
    if (!known) return undefined
    const diagnosis = { configured, registeredAt: other, setting: this.#spec.baseSetting }
    this.#wrongRegion = diagnosis
    this.#context.onWrongRegion(this.name, diagnosis)
    return diagnosis
  }
}

/** A static token (a PAT or service access token): one token, no sessions, no exchanges. */
class StaticCredential implements Credential {
  readonly name: string
  readonly defaultRequest: TokenRequest = { ttl: 0 }
  readonly wrongRegion = undefined
  readonly tokens: TokenSource
  #spec: StaticSpec
  #served: ServedToken

  constructor (spec: StaticSpec, clock: Clock) {
    this.name = spec.name
    this.#spec = spec
    this.#served = served(spec)
    const stats: CacheStats = { hits: 0, misses: 0, staleServed: 0, evictions: 0, rateLimited: 0 }
    const valid = (): ServedToken | undefined => {
      const expiresIn = this.#served.expiresIn
      return expiresIn !== undefined && clock.now() >= expiresIn * 1000 ? undefined : this.#served
    }
    const get = (): ServedToken => {
      const token = valid()
      if (token === undefined) {
        throw new TokenError('expired', `the static token of credential ${this.name} expired at ${this.#served.expiresAt as string}; put a new one in ${this.#spec.files[this.#spec.files.length - 1] as string}`)
      }
      stats.hits++
      return token
    }
    this.tokens = {
      cached: () => {
        const token = valid()
        if (token !== undefined) stats.hits++
        return token
      },
      get: async () => get(),
      // There is nothing to renew a static token from: the file is the source.
      renew: async () => get(),
      delete: () => false,
      // Nobody ever waits for a static token.
      shed: () => 0,
      status: () => {
        const token = valid()
        return token === undefined ? {} : { token }
      },
      size: 1,
      stats,
      skewMs: undefined
    }
  }

  get spec (): StaticSpec {
    return this.#spec
  }

  apply (next: CredentialSpec): void {
    this.#spec = next as StaticSpec
    this.#served = served(this.#spec)
  }

  close (): void {}
}

function served (spec: StaticSpec): ServedToken {
  return Object.freeze({
    accessToken: spec.token,
    ...(spec.expiresAt === undefined ? {} : { expiresIn: spec.expiresAt, expiresAt: new Date(spec.expiresAt * 1000).toISOString() }),
    stale: false
  })
}
