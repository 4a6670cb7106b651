/**
 * What `GET /status` tells about a credential: how its last exchange with Coze went, Coze's last
 * error, how many tokens are cached, when the default token expires and is refreshed, and the
 * clock skew. Never a token. Framework-free: fed the cache's exchange reports, read by the route.
 *
 * One instance per credential name, kept by the credentials plugin; the route lists them.
 *
 * @example
 * const status = new CredentialStatus({ credential: () => registry.select('default'), clock })
 * status.observe(report) // from the cache's onExchange
 * status.read()          // the JSON for GET /status
 */
import type { Clock } from './clock.js'
import type { Credential } from './credentials/credential.js'
import { fromExchangeError, type CozeDetails } from './errors.js'
import type { ExchangeReport } from './token/cache.js'

export interface CredentialStatusOptions {
  /** The credential as it is now (a reload may replace it). */
  credential: () => Credential
  clock: Pick<Clock, 'now'>
}

/** The JSON of one credential in `GET /status`. */
export interface CredentialStatusBody {
  kind: 'jwt' | 'static'
  /** The OAuth app id; absent for a static token. */
  app_id?: string
  api_base: string
  /** Set once a refused key was found registered at another base. */
  wrong_region?: { registered_at: string, setting: string }
  last_exchange?: { at: string, outcome: ExchangeReport['outcome'], variant: ExchangeReport['variant'], reason: ExchangeReport['reason'], duration_ms: number, logid?: string }
  last_error?: { at: string, code: string, message: string, coze?: CozeDetails }
  cached_tokens: number
  default_token?: { expires_at?: string, refresh_at?: string, stale: boolean }
  clock_skew_seconds?: number
}

export class CredentialStatus {
  readonly #options: CredentialStatusOptions
  #lastExchange: CredentialStatusBody['last_exchange']
  #lastError: CredentialStatusBody['last_error']

  constructor (options: CredentialStatusOptions) {
    this.#options = options
  }

  /** Records one exchange attempt (the cache's `onExchange`). */
  observe (report: ExchangeReport): void {
    const at = new Date(this.#options.clock.now()).toISOString()
    this.#lastExchange = {
      at,
      outcome: report.outcome,
      variant: report.variant,
      reason: report.reason,
      duration_ms: Math.round(report.durationMs),
      ...(report.logid === undefined ? {} : { logid: report.logid })
    }
    if (report.error !== undefined) {
      // What a caller would have been told: the same code, message and Coze details.
      const error = fromExchangeError(report.error)
      this.#lastError = { at, code: error.code, message: error.message, ...(error.coze === undefined ? {} : { coze: error.coze }) }
    }
  }

  read (): CredentialStatusBody {
    const credential = this.#options.credential()
    const { spec, tokens } = credential
    const current = tokens.status(credential.defaultRequest)
    const token = current.token
    const wrong = credential.wrongRegion
    return {
      kind: spec.kind,
      ...(spec.kind === 'jwt' ? { app_id: spec.appId } : {}),
      api_base: spec.apiBase,
      ...(wrong === undefined ? {} : { wrong_region: { registered_at: wrong.registeredAt, setting: wrong.setting } }),
      ...(this.#lastExchange === undefined ? {} : { last_exchange: this.#lastExchange }),
      ...(this.#lastError === undefined ? {} : { last_error: this.#lastError }),
      cached_tokens: tokens.size,
      ...(token === undefined
        ? {}
        : {
            default_token: {
              ...(token.expiresAt === undefined ? {} : { expires_at: token.expiresAt }),
              ...(current.refreshAt === undefined ? {} : { refresh_at: new Date(current.refreshAt).toISOString() }),
              stale: token.stale
            }
          }),
      ...(tokens.skewMs === undefined ? {} : { clock_skew_seconds: tokens.skewMs / 1000 })
    }
  }
}
