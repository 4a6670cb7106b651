/**
 * `/openapi.json`: every route's schemas as an OpenAPI 3.1 document, for generating clients.
 *
 * Built by @fastify/swagger, but only when first asked for: the plugin and the YAML library it
 * loads cost about 4 MiB and 80 ms of every start (issue 12), for a document few ever fetch.
 * Until then the app only records each route's options as it is added; the first request
 * replays them into a throwaway Fastify instance with the plugin registered, and the document
 * is kept.
 *
 * @example
 * app.register(openapiRecorder) // before any route
 * app.get('/openapi.json', async () => app.openapi())
 */
import Fastify, { type FastifyInstance, type RouteOptions } from 'fastify'
import type { SwaggerOptions } from '@fastify/swagger'
import fp from 'fastify-plugin'
import { VERSION } from '../package-files.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The OpenAPI document of every route added so far (built once, on the first call after ready). */
    openapi: () => Promise<unknown>
  }
}

const SWAGGER_OPTIONS: SwaggerOptions = {
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'coze-token-sidecar',
      version: VERSION,
      description: 'Coze access tokens for local callers: the sidecar holds the OAuth app\'s key, exchanges JWTs and caches the tokens.'
    },
    components: { securitySchemes: { callerSecret: { type: 'http', scheme: 'bearer', description: 'SIDECAR_AUTH_TOKEN or a caller\'s secret (SIDECAR_CALLERS_FILE), when one is set' } } },
    security: [{ callerSecret: [] }]
  }
}

type RecordedRoute = Pick<RouteOptions, 'method' | 'url' | 'schema' | 'config' | 'constraints'>

// The throwaway instance below never listens and is never injected: only its schemas are read.
/* c8 ignore next */
const unanswered = async (): Promise<null> => null

/** The document of `routes`, as @fastify/swagger makes it. */
async function buildDocument (routes: readonly RecordedRoute[]): Promise<unknown> {
  const { default: fastifySwagger } = await import('@fastify/swagger')
  const docs = Fastify()
  // Only the schemas are read: nothing is validated or serialized here.
  docs.setValidatorCompiler(() => () => true)
  docs.setSerializerCompiler(() => (data) => JSON.stringify(data))
  try {
    await docs.register(fastifySwagger, SWAGGER_OPTIONS)
    docs.after(() => {
      for (const route of routes) docs.route({ ...route, handler: unanswered })
    })
    await docs.ready()
    return docs.swagger()
  } finally {
    await docs.close()
  }
}

export const openapiRecorder = fp(async function openapiRecorder (app: FastifyInstance) {
  const routes: RecordedRoute[] = []
  app.addHook('onRoute', (route) => {
    // Fastify adds a HEAD for every GET by itself (the replay's too), and the document leaves them out.
    if (route.method === 'HEAD') return
    routes.push({ method: route.method, url: route.url, schema: route.schema, config: route.config, constraints: route.constraints })
  })
  let document: Promise<unknown> | undefined
  app.decorate('openapi', () => {
    document ??= buildDocument(routes)
    return document
  })
}, { name: 'openapi' })
