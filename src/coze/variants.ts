/**
 * The four Coze JWT variants: which path a token request goes to and what its body holds
 * (reference §1, §3). Everything else (the JWT, the answer) is the same for all of them.
 *
 * @example
 * tokenPath({ ttl: 900, accountId: '7351' }) // '/api/permission/oauth2/account/7351/token'
 */

/** `session_context.device_info`: one of the two ids, for device usage control and billing. */
export interface DeviceInfo {
  device_id?: string
  custom_consumer?: string
}

export interface SessionContext {
  device_info: DeviceInfo
}

/**
 * The channel variant's `scope` (reference §3.3), passed to Coze verbatim. Its shape is checked
 * by the HTTP layer's schema; Coze ignores it for apps that are not channel apps.
 */
export type Scope = Record<string, unknown>

/** One token request, as the sidecar's callers describe it. */
export interface TokenRequest {
  /** Cross-account (or enterprise multi-org developer): the account or organization id. */
  accountId?: string
  /** Enterprise privileged app: the enterprise id, e.g. `volcano_210195***`. */
  enterpriseId?: string
  /** Business-side user id; Coze isolates conversations and variables per session name. */
  sessionName?: string
  sessionContext?: SessionContext
  scope?: Scope
  /** `duration_seconds` to ask for, 1..86399. */
  ttl: number
}

export type Variant = 'developer' | 'channel' | 'cross-account' | 'enterprise'

export const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/** The variant a request selects. A scope is what makes a developer request a channel one. */
export function variantOf (request: TokenRequest): Variant {
  if (request.accountId !== undefined) return 'cross-account'
  if (request.enterpriseId !== undefined) return 'enterprise'
  return request.scope === undefined ? 'developer' : 'channel'
}

/** The token endpoint's path for the request's variant. */
export function tokenPath (request: TokenRequest): string {
  if (request.accountId !== undefined) {
    return `/api/permission/oauth2/account/${pathSegment(request.accountId)}/token`
  }
  if (request.enterpriseId !== undefined) {
    return `/api/permission/oauth2/enterprise_id/${pathSegment(request.enterpriseId)}/token`
  }
  return '/api/permission/oauth2/token'
}

/**
 * An id as one path segment. Percent-encoding does not help with dot segments: URL parsing
 * resolves `.`, `..`, `%2e` and `%2E%2E` alike, so `enterprise_id=..` would reach
 * `/api/permission/oauth2/token` and get a developer token. The HTTP layer refuses them with a
 * 400; this is the second guard, for any other caller of this module.
 *
 * @throws RangeError for a dot segment.
 */
export function pathSegment (id: string): string {
  const segment = encodeURIComponent(id)
  if (/^(?:\.|%2e){1,2}$/i.test(segment)) throw new RangeError(`${JSON.stringify(id)} is a dot segment, not an id`)
  return segment
}

export interface TokenRequestBody {
  grant_type: typeof GRANT_TYPE
  duration_seconds: number
  scope?: Scope
}

/** The JSON body: `scope` only when there is one (no `null`, unlike coze-py). */
export function tokenBody (request: TokenRequest): TokenRequestBody {
  const body: TokenRequestBody = { grant_type: GRANT_TYPE, duration_seconds: request.ttl }
  if (request.scope !== undefined) body.scope = request.scope
  return body
}
