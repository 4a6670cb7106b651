/**
 * The guard of the token routes and the page (the `guarded` scope of `app.ts`), and the answer to
 * a caller that asks for more than it may: the Fastify side of `rules.ts` and `authorize.ts`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errors, details, type SidecarError } from '../errors.js'
import { viaUnixSocket } from '../listen.js'
import type { Refusal } from './authorize.js'
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
