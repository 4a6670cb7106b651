/**
 * `/metrics` (Prometheus text) and `/openapi.json` (the routes' schemas, for generating clients).
 * Open like the probes: they carry no token, no key and no session name.
 */
import type { FastifyInstance } from 'fastify'

export async function metaRoutes (app: FastifyInstance): Promise<void> {
  app.get('/metrics', {
    logLevel: 'warn',
    schema: {
      summary: 'Prometheus metrics',
      description: 'Exchanges by variant and outcome, exchange latency, cache hits, misses and evictions, tokens cached, seconds until the default token expires, upstream errors by Coze error_code.',
      response: { 200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } } }
    }
  }, async (_request, reply) => reply.type(app.metrics.contentType).send(await app.metrics.text()))

  app.get('/openapi.json', {
    logLevel: 'warn',
    schema: { hide: true }
  }, async () => await app.openapi())
}
