/**
 * The guard of the token routes and the page (the `guarded` scope of `app.ts`), and the answer to
 * a caller that asks for more than it may: the Fastify side of `rules.ts` and `authorize.ts`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errors, details, type SidecarError } from '../errors.js'
import { viaUnixSocket } from '../listen.js'
import { askOf, authorize, type Ask, type Refusal } from './authorize.js'
import type { Caller } from './callers.js'
import { admit } from './rules.js'

/** Undefined when the request may go on (with `request.caller` set), else the error to answer with. */
export function guardRequest (app: FastifyInstance, request: FastifyRequest): SidecarError | undefined {
  const admitted = admit(request.headers, app.access, {
    skipSecret: request.routeOptions.config.public === true,
    viaSocket: viaUnixSocket(request.raw.socket)
  })
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

/** What a gateway request selects (headers or the base-URL prefix) and the Coze path it calls. */
export interface GatewaySelection {
  /** The credential the request resolved to (its own choice, the caller's default, or the registry's). */
  app: string
  sessionName?: string
  accountId?: string
  enterpriseId?: string
  /** The Coze API path after any selection prefix, without its query: `/v3/chat`. */
  path: string
}

/**
 * The gateway's one call per request (HTTP and WebSocket): may `caller` call `selection.path` with
 * that selection? Returns the ask with the caller's defaults applied (take the token for its
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
