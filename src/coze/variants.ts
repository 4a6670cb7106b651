/**
 * The four Coze JWT variants: which path a token request goes to and what its body holds
 * (docs/coze-protocol.md §1, §3). Everything else (the JWT, the answer) is the same for all of them.
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
 * The channel variant's `scope` (docs/coze-protocol.md §3.3), passed to Coze verbatim. Its shape is checked
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

/** An id that a variant puts into the token path: which field carries it, and what it looks like. */
export interface VariantId {
  /** The caller's field (query, body, header suffix, CLI option): `account_id`. */
  readonly field: 'account_id' | 'enterprise_id'
  /** The {@link TokenRequest} field. */
  readonly request: 'accountId' | 'enterpriseId'
  /** The setting that makes it the default. */
  readonly setting: 'COZE_ACCOUNT_ID' | 'COZE_ENTERPRISE_ID'
  /** The token path's segment before the id. */
  readonly segment: 'account' | 'enterprise_id'
  /**
   * What an id may look like. It goes into a URL path, so no `/`, and never only dots: `.` and
   * `..` would be dot segments that rewrite the path to another variant's endpoint.
   */
  readonly pattern: string
  /** What a valid id is, in words, for errors. */
  readonly hint: string
  /** The noun the page uses: "account 7351". */
  readonly noun: string
}

export interface VariantSpec {
  readonly name: Variant
  readonly label: string
  readonly id?: VariantId
}

/**
 * The four variants (docs/coze-protocol.md §1, §3): a table that the schemas, the command line, the page and
 * the path builder read. A variant with an id is chosen by that id; otherwise `scope` makes a
 * developer request a channel one.
 */
export const VARIANTS: readonly VariantSpec[] = [
  { name: 'developer', label: 'Developer' },
  { name: 'channel', label: 'Channel' },
  {
    name: 'cross-account',
    label: 'Cross-account',
    id: {
      field: 'account_id',
      request: 'accountId',
      setting: 'COZE_ACCOUNT_ID',
      segment: 'account',
      pattern: '^[0-9]{1,20}$',
      hint: 'a numeric Coze account or organization id (digits only, at most 20)',
      noun: 'account'
    }
  },
  {
    name: 'enterprise',
    label: 'Enterprise privileged app',
    id: {
      field: 'enterprise_id',
      request: 'enterpriseId',
      setting: 'COZE_ENTERPRISE_ID',
      segment: 'enterprise_id',
      pattern: '^(?!\\.{1,2}$)[A-Za-z0-9_.:*-]{1,128}$',
      hint: 'an enterprise id: letters, digits and _ . : * - only, at most 128, not . or ..',
      noun: 'enterprise'
    }
  }
]

/** The variants that take an id, in the table's order: cross-account, enterprise. */
export const ID_VARIANTS = VARIANTS.filter((variant) => variant.id !== undefined) as
  unknown as readonly [VariantSpec & { id: VariantId }, VariantSpec & { id: VariantId }]

export const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/** The id variant a request selects, if any. */
function idVariantOf (request: TokenRequest): (VariantSpec & { id: VariantId }) | undefined {
  return ID_VARIANTS.find((variant) => request[variant.id.request] !== undefined)
}

/** The variant a request selects. */
export function variantOf (request: TokenRequest): Variant {
  return idVariantOf(request)?.name ?? (request.scope === undefined ? 'developer' : 'channel')
}

/** The variant of a request, in words: "Cross-account, account 7351". */
export function variantLabel (request: Pick<TokenRequest, 'accountId' | 'enterpriseId'>): string {
  const variant = idVariantOf(request as TokenRequest)
  if (variant === undefined) return 'Developer'
  return `${variant.label}, ${variant.id.noun} ${String(request[variant.id.request])}`
}

/** The token endpoint's path for the request's variant. */
export function tokenPath (request: TokenRequest): string {
  const variant = idVariantOf(request)
  if (variant === undefined) return '/api/permission/oauth2/token'
  return `/api/permission/oauth2/${variant.id.segment}/${pathSegment(request[variant.id.request] as string)}/token`
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
