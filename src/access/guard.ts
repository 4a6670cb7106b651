/**
 * The guard of the token routes and the page (the `guarded` scope of `app.ts`), and the answer to
 * a caller that asks for more than it may: the Fastify side of `rules.ts` and `authorize.ts`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TokenRequest } from '../coze/variants.js'
import type { Credential } from '../credentials/credential.js'
import { errors, details, type SidecarError } from '../errors.js'
import { viaUnixSocket } from '../listen.js'
import { askOf, authorize, type Ask, type Refusal } from './authorize.js'
import type { Caller } from './callers.js'
import { admit } from './rules.js'

/**
 * Undefined when the request may go on (with `request.caller` set), else the error to answer with.
 * `skipSecret` for the routes that serve no token (`config: { public: true }`: the page's shell and assets).
 */
export function guardRequest (app: FastifyInstance, request: FastifyRequest, skipSecret: boolean): SidecarError | undefined {
  const admitted = admit(request.headers, app.access, { skipSecret, viaSocket: viaUnixSocket(request.raw.socket) })
  if (admitted instanceof Error) {
    if (admitted.statusCode === 401) app.metrics.refused(undefined, 'secret')
    return admitted
  }
  request.caller = admitted
  return undefined
}

/**
 * A 403 `CALLER_NOT_ALLOWED` whose `field` names the rule, logged and counted with the caller's
 * name (never its secret) and the rule as `reason`.
 */
export function callerNotAllowed (app: FastifyInstance, request: FastifyRequest, callerName: string, refusal: Refusal): SidecarError {
  app.log.warn({ reqId: request.id, caller: callerName, reason: refusal.field, method: request.method, route: request.routeOptions.url }, 'caller not allowed')
  app.metrics.refused(callerName, refusal.field)
  return details(new errors.CallerNotAllowed(refusal.message), { field: refusal.field }) as SidecarError
}

/** What a request selects (on `/token`, or through the gateway) and the Coze path it calls. */
export interface GatewaySelection {
  /** The credential the request resolved to (its own choice, the caller's default, or the registry's). */
  app: string
  sessionName?: string
  accountId?: string
  enterpriseId?: string
  ttl?: number
  /** Through the gateway: the Coze API path after any selection prefix, without its query: `/v3/chat`. */
  path?: string
}

/** The caller's fields the decision reads; the rest pass through to the route's `make`. */
export interface CallerInput {
  app?: string
  session_name?: string
  ttl?: number
}

/** How a route finds its credential and builds a token request, each with its own 400s. */
export interface CallerRoute<C, I extends CallerInput> {
  /** The credential for a name, or the registry's default for none. */
  select: (name: string | undefined) => C
  /** The registry's credential behind the route's own view of it. */
  source: (credential: C) => Pick<Credential, 'name' | 'spec' | 'defaultRequest'>
  make: (credential: C, input: I) => TokenRequest
}

/**
 * The credential and token request `input` makes for `caller`, for `/token` and the gateway alike:
 * its defaults applied (its app, its session, its ttl), then its rights checked over the request
 * as made, so the service's default account or enterprise counts as asked for. The app rule is
 * checked before the credential is looked up, so that a caller learns nothing of the credentials
 * it may not use. A caller's admitted request is counted; one with every right is the route's to count.
 * @throws CALLER_NOT_ALLOWED (403) naming the rule; the route's own 400s.
 */
export function callerTokenRequest<C, I extends CallerInput> (app: FastifyInstance, request: FastifyRequest, caller: Caller, input: I, route: CallerRoute<C, I>, path?: string): { credential: C, tokenRequest: TokenRequest } {
  const defaultName = app.credentials.defaultName
  // Callers with every right have no defaults of their own: the hot path skips the rest.
  if (caller.all) {
    const credential = route.select(input.app)
    return { credential, tokenRequest: route.make(credential, input) }
  }
  const named = input.app ?? caller.defaults.app ?? defaultName
  if (named !== undefined) {
    const refusal = authorize(caller, { app: named }, defaultName)
    if (refusal !== undefined) throw callerNotAllowed(app, request, caller.name, refusal)
  }
  const credential = route.select(named)
  const source = route.source(credential)
  const where = path === undefined ? {} : { path }
  if (source.spec.kind === 'static') {
    // A static token takes no session or ttl: the caller's defaults for those do not apply.
    authorizeCall(app, request, caller, { app: source.name, ...where }, source.defaultRequest.ttl)
    return { credential, tokenRequest: route.make(credential, input) }
  }
  const ask = askOf(caller, {
    app: source.name,
    ...(input.session_name === undefined ? {} : { sessionName: input.session_name }),
    ...(input.ttl === undefined ? {} : { ttl: input.ttl })
  }, source.defaultRequest.ttl)
  const tokenRequest = route.make(credential, { ...input, ttl: ask.ttl, ...(ask.sessionName === undefined ? {} : { session_name: ask.sessionName }) })
  authorizeCall(app, request, caller, {
    ...ask,
    ...where,
    ...(tokenRequest.accountId === undefined ? {} : { accountId: tokenRequest.accountId }),
    ...(tokenRequest.enterpriseId === undefined ? {} : { enterpriseId: tokenRequest.enterpriseId })
  }, source.defaultRequest.ttl)
  return { credential, tokenRequest }
}

/**
 * May `caller` have that selection (and call `selection.path` through the gateway)? Returns the ask with the caller's defaults applied (take the token for its
 * `app`, `sessionName` and `ttl`); throws 403 CALLER_NOT_ALLOWED, logged and counted with the
 * caller's name, otherwise. `caller` is `request.caller` behind the guard, or
 * `app.callers?.identify(…) ?? ANONYMOUS` for a credential found elsewhere (a WebSocket's query).
 *
 * @example
 * const ask = authorizeCall(app, request, request.caller as Caller, { app: credential.name, sessionName, path: '/v3/chat' }, 900)
 */
export function authorizeCall (app: FastifyInstance, request: FastifyRequest, caller: Caller, selection: GatewaySelection, serviceTtl: number): Ask {
  const ask = askOf(caller, selection, serviceTtl)
  const refusal = authorize(caller, ask, app.credentials.defaultName)
  if (refusal !== undefined) throw callerNotAllowed(app, request, caller.name, refusal)
  app.metrics.request(caller.name)
  return ask
}
