/**
 * Probes. `/healthz`: the process answers. `/readyz`: a token for the default request can be
 * had now (cached, or fetched within the request deadline), so that a pod is not sent traffic
 * it would answer with 503s. They are separate because restarting a sidecar does not fix Coze.
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

  app.get('/readyz', {
    logLevel: 'warn',
    schema: {
      summary: 'Readiness: the key is loaded and a token for the default request can be had',
      response: { 200: statusSchema, 503: errorResponseSchema }
    }
  }, async () => {
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
