/**
 * What `GET /status` tells about a credential: how its last exchange with Coze went, Coze's last
 * error, how many tokens are cached, when the default token expires and is refreshed, and the
 * clock skew. Never a token. Framework-free: fed the cache's exchange reports, read by the route.
 *
 * One instance per credential; the route lists them by name (`default` today).
 *
 * @example
 * const status = new CredentialStatus({ cache, defaultRequest, clock, appId })
 * status.observe(report) // from the cache's onExchange
 * status.read()          // the JSON for GET /status
 */
import type { Clock } from './clock.js'
import type { TokenRequest } from './coze/variants.js'
import { fromExchangeError, type CozeDetails } from './errors.js'
import type { ExchangeReport, TokenCache } from './token/cache.js'

export interface CredentialStatusOptions {
  cache: TokenCache
  defaultRequest: TokenRequest
  clock: Pick<Clock, 'now'>
  appId: string
}

/** The JSON of one credential in `GET /status`. */
export interface CredentialStatusBody {
  app_id: string
  last_exchange?: { at: string, outcome: ExchangeReport['outcome'], variant: ExchangeReport['variant'], reason: ExchangeReport['reason'], duration_ms: number, logid?: string }
  last_error?: { at: string, code: string, message: string, coze?: CozeDetails }
  cached_tokens: number
  default_token?: { expires_at: string, refresh_at: string, stale: boolean }
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
    const { cache, defaultRequest, appId } = this.#options
    const current = cache.status(defaultRequest)
    const token = current.token
    return {
      app_id: appId,
      ...(this.#lastExchange === undefined ? {} : { last_exchange: this.#lastExchange }),
      ...(this.#lastError === undefined ? {} : { last_error: this.#lastError }),
      cached_tokens: cache.size,
      ...(token === undefined
        ? {}
        : { default_token: { expires_at: token.expiresAt, refresh_at: new Date(current.refreshAt as number).toISOString(), stale: token.stale } }),
      ...(cache.skewMs === undefined ? {} : { clock_skew_seconds: cache.skewMs / 1000 })
    }
  }
}
