/**
 * Probes. `/healthz`: the process answers. `/readyz`: this sidecar can serve: configured, its key
 * loaded (the app is built only then), listening (it answered) and not shutting down. Coze's state
 * is left out on purpose: in a long Coze outage, a readiness that followed Coze would take every
 * pod of a Deployment out of its Service at once, work that needs no token included; cached
 * tokens are served stale meanwhile, and `/status` and `/metrics` show the outage.
 *
 * `/readyz?strict=true` also needs a token for the default request (cached, or fetched within
 * the request deadline): for a startup probe, or a one-off check after a deploy, where a wrong
 * key or app id should stop the rollout.
 */
import type { FastifyInstance } from 'fastify'
import { details, errors, toSidecarError } from '../errors.js'
import { errorResponseSchema } from './schemas.js'

const statusSchema = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string' } }
} as const

export async function healthRoutes (app: FastifyInstance): Promise<void> {
  app.get('/healthz', {
    logLevel: 'warn',
    schema: { summary: 'Liveness: the process is up', response: { 200: statusSchema } }
  }, async () => ({ status: 'ok' }))

  app.get<{ Querystring: { strict: boolean } }>('/readyz', {
    logLevel: 'warn',
    schema: {
      summary: 'Readiness: configured, the key loaded, listening and not shutting down; with strict=true, also a token for the default request',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          strict: { type: 'boolean', default: false, description: 'Also require a token for the default request (for startup probes).' }
        }
      },
      response: { 200: statusSchema, 503: errorResponseSchema, 400: errorResponseSchema }
    }
  }, async (request) => {
    if (!request.query.strict) return { status: 'ready' }
    // The default credential; with several and none the default, every one of them.
    const registry = app.credentials
    const targets = registry.defaultName === undefined ? registry.all() : [registry.select()]
    for (const credential of targets) {
      try {
        await credential.tokens.get(credential.defaultRequest, app.config.requestDeadlineMs)
      } catch (caught) {
        const error = toSidecarError(caught)
        if (error === undefined) throw caught
        throw details(new errors.NotReady(`no token for the default request of ${credential.name}: ${error.message}`), {
          ...(error.coze === undefined ? {} : { coze: error.coze }),
          ...(error.retryAfter === undefined ? {} : { retryAfter: error.retryAfter })
        })
      }
    }
    return { status: 'ready' }
  })
}
