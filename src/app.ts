/**
 * The application, built by a factory: every I/O boundary (environment, clock, HTTP dispatcher,
 * log stream, file reads) is an option, so a test builds the whole service with its own. This
 * file only composes: configuration, metrics, the credential registry, the access policy, the
 * routes and the error contract each live in a room of their own.
 *
 * @example
 * const app = buildApp({ env: process.env, cwd: process.cwd() })
 * await app.ready() // rejects with a ConfigError for a bad setting
 * await app.listen({ host: app.config.host, port: app.config.port })
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions, type onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { DestinationStream } from 'pino'
import type { Dispatcher } from 'undici'
import { systemClock, type Clock } from './clock.js'
import { accessPlugin } from './access/plugin.js'
import { guardRequest } from './access/guard.js'
import { checkRequestTarget } from './access/rules.js'
import { configPlugin, type Env } from './config.js'
import { credentialsPlugin } from './credentials/plugin.js'
import { ConnectionDrain } from './drain.js'
import { errors } from './errors.js'
import { gatewayPlugin } from './gateway/plugin.js'
import type { DescribeValidation } from './gateway/selection.js'
import { describeValidation, errorHandler } from './http-errors.js'
import { LOG_SERIALIZERS, QuietRequests, REDACT_PATHS } from './logging.js'
import { metricsPlugin } from './metrics.js'
import { healthRoutes } from './routes/health.js'
import { metaRoutes } from './routes/metrics.js'
import { openapiRecorder } from './routes/openapi.js'
import { serializerCompiler, validatorCompiler } from './schema-compilers.js'
import { pageRoutes } from './routes/page.js'
import { rightsRoutes } from './routes/rights.js'
import { statusRoutes } from './routes/status.js'
import { tokenRoutes } from './routes/token.js'
import { VERSION } from './package-files.js'

export { VERSION } from './package-files.js'
export { describeValidation } from './http-errors.js'

export interface AppOptions {
  /** The settings (normally `process.env`). */
  env: Env
  /** Where relative paths and `./coze_oauth_config.json` are resolved. */
  cwd: string
  clock?: Clock
  /** For calls to Coze. Default: an undici pool with the configured timeouts and proxy, closed with the app. */
  dispatcher?: Dispatcher
  /** Where log lines go (pino NDJSON). Default: stdout. */
  logStream?: DestinationStream
  /** Injected for tests: jitter. */
  random?: () => number
  readFile?: (path: string) => Promise<string>
}

export function buildApp (options: AppOptions): FastifyInstance {
  const clock = options.clock ?? systemClock
  const logger: FastifyServerOptions['logger'] = {
    level: 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: LOG_SERIALIZERS,
    ...(options.logStream === undefined ? {} : { stream: options.logStream })
  }
  const app = Fastify({
    logger,
    logController: new QuietRequests(),
    // No child logger per request: the service logs per exchange, not per request, and a child
    // with redaction costs about a fifth of a cached /token's time (measured: npm run bench).
    // The request id goes into the few request-scoped lines by hand.
    childLoggerFactory: (logger) => logger,
    // Slow or stalled clients cannot hold connections open for long.
    requestTimeout: 30_000,
    connectionTimeout: 30_000,
    bodyLimit: 16 * 1024,
    // A request that arrives on an open connection while closing is served (a cached token costs
    // nothing) and told Connection: close; a 503 would turn every restart into errors.
    return503OnClosing: false,
    // Malformed URLs and the like leave in the same shape as every other error.
    frameworkErrors: (error, request, reply) => errorHandler(error, request, reply)
  })
  // Each route's schemas are compiled on its first request, not at start.
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  // JSON bodies only: Fastify's own text/plain parser would turn a text body into a string that then
  // fails as "body must be a JSON object"; without it, the answer is 415 naming the media type.
  app.removeContentTypeParser('text/plain')

  // Records every route's schema as it is added, for /openapi.json (built when first asked for).
  app.register(openapiRecorder)
  app.register(configPlugin, { env: options.env, cwd: options.cwd, ...(options.readFile === undefined ? {} : { readFile: options.readFile }) })
  app.register(fp(async function settle (instance: FastifyInstance) {
    instance.log.level = instance.config.logLevel
    for (const warning of instance.config.warnings) instance.log.warn(warning)
  }, { name: 'log-level', dependencies: ['config'] }))
  app.register(metricsPlugin, { clock })
  app.register(credentialsPlugin, {
    sources: { env: options.env, cwd: options.cwd, ...(options.readFile === undefined ? {} : { readFile: options.readFile }) },
    clock,
    ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
    ...(options.random === undefined ? {} : { random: options.random })
  })
  app.register(accessPlugin, { clock, ...(options.readFile === undefined ? {} : { readFile: options.readFile }) })

  // Closing waits for every connection: answers in flight go out with Connection: close, and
  // connections are closed once idle for a moment, so that no caller sees a reset (src/drain.ts).
  const drain = new ConnectionDrain(app.server)
  app.addHook('preClose', (done) => {
    drain.start()
    done()
  })
  app.addHook('onClose', (_instance, done) => {
    drain.stop()
    done()
  })
  // Every route: one Host, and a request target that agrees with it (RFC 9112 §3.2).
  app.addHook('onRequest', (request, _reply, done) => done(checkRequestTarget(request.raw)))
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler(async (request) => {
    throw new errors.NotFound(request.method, request.url.split('?')[0])
  })
  // Tokens (and the page) only for the callers that should have them; probes stay open.
  app.register(async function guarded (scope) {
    // The guard is each route's own first hook, decided once per route rather than read from
    // `request.routeOptions` (an object Fastify builds on every read) on every request.
    scope.addHook('onRoute', (route) => {
      const skipSecret = route.config?.public === true
      const guard: onRequestHookHandler = (request, reply, done) => {
        // Tokens, the page and their errors are never stored by a browser or a proxy.
        reply.header('cache-control', 'no-store')
        done(guardRequest(scope, request, skipSecret))
      }
      route.onRequest = [guard, ...[route.onRequest ?? []].flat()]
    })
    await scope.register(tokenRoutes)
    await scope.register(statusRoutes)
    await scope.register(rightsRoutes)
    await scope.register(pageRoutes, { version: VERSION })
  })
  // Coze's API through the sidecar (/v1, /v3, /open_api), with the same access rules.
  app.register(gatewayPlugin, { describeValidation: describeValidation as DescribeValidation })
  app.register(healthRoutes)
  app.register(metaRoutes)
  return app
}
