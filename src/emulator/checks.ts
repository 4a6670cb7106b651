/**
 * What Coze checks on a token request, in the order of docs/coze-protocol.md §14.3 (Coze's own order is
 * unknown; it only decides which error wins when several apply). Messages follow Coze's where
 * they are known (`invalid jwt: kid not been registred`, `not supported grant type: ...`); the
 * rest are this emulator's words, marked [U] there.
 */
import { compactVerify, decodeJwt, decodeProtectedHeader } from 'jose'
import type { EmulatorApp, EmulatorState } from './state.js'

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/** A refusal, in Coze's OAuth error shape. */
export interface OAuthRefusal {
  status: number
  code: 'invalid_request' | 'invalid_client' | 'unsupported_grant_type' | 'access_deny' | 'internal_error'
  message: string
}

export interface TokenAsk {
  /** `/api/permission/oauth2/token` and its two variants. */
  accountId?: string
  enterpriseId?: string
  contentType: string | undefined
  authorization: string | undefined
  /** The body as received: a string, or undefined when there was none. */
  rawBody: unknown
}

export interface Accepted {
  app: EmulatorApp
  kid: string
  header: Record<string, unknown>
  claims: Record<string, unknown>
  body: Record<string, unknown>
  durationSeconds: number
}

const refuse = (status: number, code: OAuthRefusal['code'], message: string): { refusal: OAuthRefusal } =>
  ({ refusal: { status, code, message } })

const invalidJwt = (why: string): { refusal: OAuthRefusal } => refuse(401, 'invalid_client', `invalid jwt: ${why}`)

/** Runs every check. Partial results (`app`, `kid`, `claims`) come back for the record either way. */
export async function checkTokenRequest (state: EmulatorState, ask: TokenAsk): Promise<
  { accepted: Accepted } | { refusal: OAuthRefusal, partial: Partial<Accepted> }
> {
  const partial: Partial<Accepted> = {}
  const result = await check(state, ask, partial)
  return 'refusal' in result ? { refusal: result.refusal, partial } : result
}

async function check (state: EmulatorState, ask: TokenAsk, partial: Partial<Accepted>): Promise<
  { accepted: Accepted } | { refusal: OAuthRefusal }
> {
  // 1. A JSON object body.
  if (ask.contentType === undefined || !/^application\/json(\s*;|$)/i.test(ask.contentType)) {
    return refuse(400, 'invalid_request', 'invalid request: body')
  }
  let body: Record<string, unknown>
  try {
    const parsed: unknown = JSON.parse(ask.rawBody as string) // no body: a SyntaxError like any other
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object')
    body = parsed as Record<string, unknown>
  } catch {
    return refuse(400, 'invalid_request', 'invalid request: body')
  }
  partial.body = body

  // 2. The grant type.
  if (body.grant_type !== JWT_BEARER) {
    return refuse(400, 'unsupported_grant_type', `not supported grant type: ${String(body.grant_type ?? '')}`)
  }

  // 3. A bearer JWS in three parts.
  const match = /^Bearer ([\w-]+\.[\w-]+\.[\w-]+)$/.exec(ask.authorization ?? '')
  if (match === null) return invalidJwt('missing or malformed Authorization header')
  const jwt = match[1] as string

  // 4. The header: RS256, typ JWT, a kid.
  let header: Record<string, unknown>
  let unverified: Record<string, unknown>
  try {
    header = decodeProtectedHeader(jwt) as Record<string, unknown>
    unverified = decodeJwt(jwt) as Record<string, unknown>
  } catch {
    return invalidJwt('not a JWT')
  }
  partial.header = header
  if (header.alg !== 'RS256') return invalidJwt(`alg must be RS256, not ${String(header.alg)}`)
  if (state.knobs.requireTyp && header.typ !== 'JWT') return invalidJwt('typ must be JWT')
  if (typeof header.kid !== 'string' || header.kid === '') return invalidJwt('kid is missing')

  // 5. A known app, and the kid registered for it (in this region: this emulator is one region).
  const iss = unverified.iss
  const app = typeof iss === 'string' ? state.apps.get(iss) : undefined
  const key = app?.keys.get(header.kid)
  if (app === undefined || key === undefined) return invalidJwt('kid not been registred') // sic, Coze's spelling
  partial.app = app
  partial.kid = header.kid

  // 6. The signature, by that key.
  let claims: Record<string, unknown>
  try {
    const { payload } = await compactVerify(jwt, key, { algorithms: ['RS256'] })
    claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>
  } catch {
    return invalidJwt('signature verification failed')
  }
  partial.claims = claims

  // 7. The audience.
  if (typeof claims.aud !== 'string' || !app.audiences.has(claims.aud)) return invalidJwt(`aud must be ${app.audience}`)

  // 8, 9. Times: integers, exp after iat, not expired, not from the future, not too long.
  const { iat, exp } = claims
  const now = state.nowSeconds()
  const leeway = state.knobs.leewaySeconds
  if (!Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) return invalidJwt('iat and exp must be integers')
  if ((exp as number) <= (iat as number)) return invalidJwt('exp must be later than iat')
  if ((exp as number) <= now - leeway) return invalidJwt('token is expired')
  if ((iat as number) > now + leeway) return invalidJwt('iat is in the future')
  if ((exp as number) - (iat as number) > state.knobs.maxJwtLifetimeSeconds) return invalidJwt('lifetime too long')

  // 10. jti: present, and never seen before for this app.
  if (typeof claims.jti !== 'string' || claims.jti === '') return invalidJwt('jti is missing')
  if (!state.useJti(app.appId, claims.jti, exp as number)) return invalidJwt('jti has been used')

  // Optional claims must have their documented shapes.
  if (claims.session_name !== undefined && typeof claims.session_name !== 'string') {
    return refuse(400, 'invalid_request', 'invalid request: session_name')
  }
  if (claims.session_context !== undefined && !validSessionContext(claims.session_context)) {
    return refuse(400, 'invalid_request', 'invalid request: session_context')
  }

  // 11, 12. The app may issue tokens.
  if (!app.enabled) return refuse(403, 'access_deny', `app: ${app.name} is currently deactivated by the owner`)
  if (app.type === 'channel' && !app.channelBound) return refuse(403, 'access_deny', 'connector app should bind connector id')

  // 13. The variant's authorization. coze-go also repeats the id in the body (account_id as a
  // JSON number, an int64): it must agree with the path's.
  if (ask.accountId !== undefined) {
    if (body.account_id !== undefined && !sameAccount(body.account_id, ask.accountId)) {
      return refuse(400, 'invalid_request', 'invalid request: account_id')
    }
    if (!app.authorizedAccounts.has(ask.accountId)) {
      return refuse(403, 'access_deny', `account ${ask.accountId} has not authorized app: ${app.name}`)
    }
  }
  if (ask.enterpriseId !== undefined) {
    if (body.enterprise_id !== undefined && body.enterprise_id !== ask.enterpriseId) {
      return refuse(400, 'invalid_request', 'invalid request: enterprise_id')
    }
    if (app.type !== 'privileged') return refuse(403, 'access_deny', 'invalid app type')
    if (!app.enterprises.has(ask.enterpriseId)) {
      return refuse(403, 'access_deny', `enterprise ${ask.enterpriseId} is not the owner of app: ${app.name}`)
    }
  }

  // 14. duration_seconds: 900 when absent, 1..86399 otherwise.
  const duration = body.duration_seconds ?? 900
  if (!Number.isSafeInteger(duration) || (duration as number) < 1 || (duration as number) > 86_399) {
    return refuse(400, 'invalid_request', 'invalid request: duration_seconds')
  }

  // 15. scope: absent or null, or an object of the documented (or coze-go's) shapes.
  if (body.scope !== undefined && body.scope !== null && !validScope(body.scope)) {
    return refuse(400, 'invalid_request', 'invalid request: scope')
  }

  return { accepted: { app, kid: header.kid, header, claims, body, durationSeconds: duration as number } }
}

const isStringList = (value: unknown): boolean =>
  Array.isArray(value) && value.every((item) => typeof item === 'string')

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

function validScope (scope: unknown): boolean {
  if (!isObject(scope)) return false
  const { account_permission: permission, attribute_constraint: constraint } = scope
  if (permission !== undefined && permission !== null) {
    if (!isObject(permission) || !isStringList(permission.permission_list)) return false
  }
  if (constraint !== undefined && constraint !== null) {
    if (!isObject(constraint)) return false
    const chat = constraint.connector_bot_chat_attribute
    if (chat !== undefined && chat !== null && (!isObject(chat) || !isStringList(chat.bot_id_list))) return false
  }
  return true
}

/**
 * The body's account id against the path's. A string must be the same text. A number is read by
 * JSON.parse as the nearest double, and ids of 17 digits and more are beyond a double's 53 bits
 * (coze-go sends an int64): it is compared with the path's id read the same way, which is as
 * exact as the parsed body allows; the path is the id Coze acts on.
 */
function sameAccount (value: unknown, pathId: string): boolean {
  if (typeof value === 'string') return value === pathId
  return typeof value === 'number' && Number.isInteger(value) && value === Number(pathId)
}

/** `{}` (what coze-go sends for an empty SessionContext), or a device_info with one of its two ids. */
function validSessionContext (context: unknown): boolean {
  if (!isObject(context)) return false
  if (context.device_info === undefined) return true
  if (!isObject(context.device_info)) return false
  const { device_id: deviceId, custom_consumer: consumer } = context.device_info
  const given = [deviceId, consumer].filter((value) => value !== undefined)
  return given.length >= 1 && given.every((value) => typeof value === 'string' && value !== '')
}
