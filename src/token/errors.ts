/**
 * Why the cache could not hand out a token: the domain's own error, free of HTTP. The service's
 * edge (src/errors.ts) turns it into a status code and an error code.
 *
 * @example
 * try { await cache.get(request, 5_000) } catch (error) {
 *   if (error instanceof TokenError && error.kind === 'exchange') console.log(error.cause.errorCode)
 * }
 */
import type { ExchangeError } from '../coze/exchange.js'

export type TokenErrorKind =
  /** Coze refused or failed; `cause` says how. */
  | 'exchange'
  /** The caller's deadline passed while Coze was being asked. */
  | 'deadline'
  /** Too many new exchanges at once (the exchange rate limit); cached tokens are still served. */
  | 'rate_limited'
  /** A static token whose file says it has expired. */
  | 'expired'
  /** The process is stopping before Coze answered (its shutdown grace is running out). */
  | 'shutting_down'

export class TokenError extends Error {
  override readonly name = 'TokenError'
  readonly kind: TokenErrorKind
  /** Seconds after which asking again may help. */
  readonly retryAfter: number | undefined
  declare readonly cause: ExchangeError | undefined

  constructor (kind: TokenErrorKind, message: string, options: { cause?: ExchangeError, retryAfter?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.kind = kind
    this.retryAfter = options.retryAfter
  }

  /** A failed exchange, with the wait before the next attempt when it is known. */
  static exchange (cause: ExchangeError, retryAfter?: number): TokenError {
    return new TokenError('exchange', cause.message, { cause, ...(retryAfter === undefined ? {} : { retryAfter }) })
  }
}
