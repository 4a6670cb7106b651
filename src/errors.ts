/**
 * Every error the service answers with. A caller branches on `code`; `message` is for people.
 * Upstream details that help (Coze's `error_code`, `error_message` and `X-Tt-Logid`) travel in
 * `coze`; access tokens, JWTs and keys never do.
 *
 * @example
 * throw details(new errors.InvalidParameter('ttl must be an integer from 1 to 86399'), { field: 'ttl' })
 */
import createError, { type FastifyError } from '@fastify/error'
import type { ExchangeError } from './coze/exchange.js'
import { SelectionError } from './credentials/errors.js'
import { TokenError } from './token/errors.js'

/** What Coze said when it refused or failed, as far as it said anything. */
export interface CozeDetails {
  error_code?: string
  error_message?: string
  logid?: string
}

export interface ErrorDetails {
  /** The query or body field a 400 is about; for a 403 CALLER_NOT_ALLOWED, the rule broken. */
  field?: string
  /** Coze's own words, when Coze answered. */
  coze?: CozeDetails
  /** Seconds after which trying again may help; sent as `Retry-After`. */
  retryAfter?: number
}

export type SidecarError = FastifyError & ErrorDetails & { statusCode: number }

/** The catalogue. Each entry: code, message template, HTTP status. */
export const errors = {
  /** A query parameter or body field is missing, malformed, out of range or not allowed. */
  InvalidParameter: createError('INVALID_PARAMETER', '%s', 400),
  /** Coze answered `invalid_client`: the JWT was refused (unknown `kid`, wrong region or key, clock far off). */
  CozeInvalidClient: createError('COZE_INVALID_CLIENT', 'Coze refused the JWT: %s', 502),
  /** Coze answered `invalid_request`: a parameter of the token request was refused. */
  CozeInvalidRequest: createError('COZE_INVALID_REQUEST', 'Coze refused the token request: %s', 502),
  /** Coze answered `unsupported_grant_type`. */
  CozeUnsupportedGrantType: createError('COZE_UNSUPPORTED_GRANT_TYPE', 'Coze refused the grant type: %s', 502),
  /** Coze answered `access_deny` (its spelling): app disabled, or not authorized for that account or enterprise. */
  CozeAccessDeny: createError('COZE_ACCESS_DENY', 'Coze denied access: %s', 502),
  /** Coze refused with a code this service does not know, or with a 4xx and no code. */
  CozeRefused: createError('COZE_REFUSED', 'Coze refused the token request: %s', 502),
  /** Coze answered 5xx or `internal_error`, and retrying did not help. */
  CozeUnavailable: createError('COZE_UNAVAILABLE', 'Coze is failing: %s', 503),
  /** Coze answered 429, and retrying did not help. */
  CozeRateLimited: createError('COZE_RATE_LIMITED', 'Coze is rate-limiting token requests: %s', 503),
  /** Coze's answer was not a token response: not JSON, no `access_token`, a redirect, already expired. */
  CozeBadResponse: createError('COZE_BAD_RESPONSE', 'Coze answered with something that is not a usable token: %s', 502),
  /** Coze could not be reached: connection refused or reset, DNS failure. */
  UpstreamUnreachable: createError('UPSTREAM_UNREACHABLE', 'Coze could not be reached: %s', 503),
  /** Coze did not answer in time, or the caller's deadline passed while waiting for it. */
  UpstreamTimeout: createError('UPSTREAM_TIMEOUT', '%s', 504),
  /** The caller did not present the caller secret (`SIDECAR_AUTH_TOKEN`). Says nothing about the secret. */
  Unauthorized: createError('UNAUTHORIZED', 'a valid Authorization: Bearer <caller secret> header is required', 401),
  /** A known caller asked for what its rules (`SIDECAR_CALLERS_FILE`) do not allow; `field` names the rule. */
  CallerNotAllowed: createError('CALLER_NOT_ALLOWED', '%s', 403),
  /** The `Host` header names a host this sidecar does not answer for: DNS rebinding. */
  HostNotAllowed: createError('HOST_NOT_ALLOWED', 'Host %s is not allowed here (a defence against DNS rebinding); if it is yours, add it to SIDECAR_ALLOWED_HOSTS', 403),
  /** A request from another site's page (`Sec-Fetch-Site: cross-site`, a foreign `Origin`). */
  CrossSiteRequest: createError('CROSS_SITE_REQUEST', 'requests from other sites are refused', 403),
  /** A request that came through a proxy, refused by `SIDECAR_REJECT_FORWARDED`. */
  ForwardedRequest: createError('FORWARDED_REQUEST', 'requests forwarded by a proxy (X-Forwarded-For, Forwarded) are refused', 403),
  /** The header required by `SIDECAR_REQUIRE_HEADER` is missing or wrong (an SSRF defence). */
  MissingRequiredHeader: createError('MISSING_REQUIRED_HEADER', 'the header %s is required', 403),
  /** Too many new exchanges (`SIDECAR_EXCHANGE_RATE`); cached tokens are still served. */
  ExchangeRateLimited: createError('EXCHANGE_RATE_LIMITED', 'too many new tokens asked for; try again after Retry-After (cached tokens are still served)', 429),
  /** A static token credential whose `expires_at` has passed. */
  CredentialExpired: createError('CREDENTIAL_EXPIRED', '%s', 503),
  /** The process is stopping and its grace is running out: a caller still waiting for Coze is answered this instead of a reset. */
  ShuttingDown: createError('SHUTTING_DOWN', 'the sidecar is shutting down before Coze answered; try again after Retry-After', 503),
  /** `/readyz`: no token can be had for the default request. */
  NotReady: createError('NOT_READY', 'not ready: %s', 503),
  /** No such route. */
  NotFound: createError('NOT_FOUND', 'Route %s %s not found', 404),
  /** A bug. The details go to the log, never to the caller. */
  Internal: createError('INTERNAL_ERROR', 'internal error', 500)
} as const

/** Attaches details to an error from the catalogue. */
export function details<E extends FastifyError> (error: E, extra: ErrorDetails): E & ErrorDetails {
  return Object.assign(error, extra)
}

const REFUSALS: Record<string, new (message: string) => FastifyError> = {
  invalid_client: errors.CozeInvalidClient,
  invalid_request: errors.CozeInvalidRequest,
  unsupported_grant_type: errors.CozeUnsupportedGrantType,
  access_deny: errors.CozeAccessDeny
}

/**
 * The answer for a failed exchange: Coze's refusals are 502 with Coze's code; Coze failing or
 * unreachable is 503, timing out 504, both with `Retry-After` when the next attempt is known.
 */
export function fromExchangeError (error: ExchangeError, retryAfter?: number): SidecarError {
  const coze: CozeDetails = {}
  if (error.errorCode !== undefined) coze.error_code = error.errorCode
  if (error.errorMessage !== undefined) coze.error_message = error.errorMessage
  if (error.logid !== undefined) coze.logid = error.logid
  let mapped: FastifyError
  switch (error.kind) {
    case 'refused': mapped = new (REFUSALS[error.errorCode ?? ''] ?? errors.CozeRefused)(error.message); break
    case 'unavailable': mapped = new errors.CozeUnavailable(error.message); break
    case 'rate_limited': mapped = new errors.CozeRateLimited(error.message); break
    case 'bad_response': mapped = new errors.CozeBadResponse(error.message); break
    case 'unreachable': mapped = new errors.UpstreamUnreachable(error.message); break
    case 'timeout': mapped = new errors.UpstreamTimeout(`Coze did not answer in time (${error.message})`); break
  }
  return details(mapped, {
    ...(Object.keys(coze).length === 0 ? {} : { coze }),
    ...(retryAfter === undefined ? {} : { retryAfter })
  }) as SidecarError
}

/**
 * The answer for an error of the domain (`token/`, `coze/`, `credentials/`) or of the catalogue,
 * or undefined for anything else (a bug, or one of Fastify's own).
 */
export function toSidecarError (error: unknown): SidecarError | undefined {
  if (error instanceof TokenError) {
    const retry = error.retryAfter === undefined ? {} : { retryAfter: error.retryAfter }
    switch (error.kind) {
      case 'exchange': return fromExchangeError(error.cause as ExchangeError, error.retryAfter)
      case 'deadline': return details(new errors.UpstreamTimeout(error.message), retry) as SidecarError
      case 'rate_limited': return details(new errors.ExchangeRateLimited(), retry) as SidecarError
      case 'expired': return new errors.CredentialExpired(error.message) as SidecarError
      case 'shutting_down': return details(new errors.ShuttingDown(), retry) as SidecarError
    }
  }
  if (error instanceof SelectionError) return details(new errors.InvalidParameter(error.message), { field: error.field }) as SidecarError
  // Already an answer of the catalogue (Fastify's own errors are handled by the error handler).
  if (isSidecarError(error) && !error.code.startsWith('FST_')) return error
  return undefined
}

/** True for the errors of the catalogue above (and Fastify's own, which share the shape). */
export function isSidecarError (error: unknown): error is SidecarError {
  return error instanceof Error &&
    typeof (error as Partial<FastifyError>).code === 'string' &&
    typeof (error as Partial<FastifyError>).statusCode === 'number'
}

export { ConfigError } from './config-error.js'
