/**
 * The application, built by a factory: every I/O boundary (environment, clock, HTTP dispatcher,
 * log stream, file reads) is an option, so a test builds the whole service with its own.
 *
 * @example
 * const app = buildApp({ env: process.env, cwd: process.cwd() })
 * await app.ready() // rejects with a ConfigError for a bad setting
 * await app.listen({ host: app.config.host, port: app.config.port })
 */
import { STATUS_CODES } from 'node:http'
import Fastify, {
  LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions
} from 'fastify'
import fastifyAccepts from '@fastify/accepts'
import fastifySwagger from '@fastify/swagger'
import fp from 'fastify-plugin'
import { Ajv } from 'ajv'
import type { DestinationStream, Logger } from 'pino'
import { Agent, type Dispatcher } from 'undici'
import { systemClock, type Clock } from './clock.js'
import { CallerSecret } from './access/caller-secret.js'
import { checkAccess, type AccessPolicy } from './access/rules.js'
import { configPlugin, loadConfig, type Env } from './config.js'
import { CozeTokenClient } from './coze/client.js'
import type { JwtSigner } from './coze/jwt.js'
import { FileWatch } from './file-watch.js'
import { errors, details, isSidecarError, type SidecarError } from './errors.js'
import { gatewayPlugin } from './gateway/plugin.js'
import type { DescribeValidation } from './gateway/selection.js'
import { Metrics } from './metrics.js'
import { healthRoutes } from './routes/health.js'
import { metaRoutes } from './routes/metrics.js'
import { pageRoutes } from './routes/page.js'
import { PATTERN_HINTS } from './routes/schemas.js'
import { tokenRoutes } from './routes/token.js'
import { TokenCache, type ExchangeReport } from './token/cache.js'
import { TokenBucket } from './token/rate.js'

export const VERSION = '0.1.0'

export interface AppOptions {
  /** The settings (normally `process.env`). */
  env: Env
  /** Where relative paths and `./coze_oauth_config.json` are resolved. */
  cwd: string
  clock?: Clock
  /** For calls to Coze. Default: an undici Agent with the configured timeouts, closed with the app. */
  dispatcher?: Dispatcher
  /** Where log lines go (pino NDJSON). Default: stdout. */
  logStream?: DestinationStream
  /** Injected for tests: jitter. */
  random?: () => number
  readFile?: (path: string) => Promise<string>
}

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenCache
    metrics: Metrics
    access: AccessPolicy
    /** The undici dispatcher for every call to Coze (token exchanges and the gateway). */
    dispatcher: Dispatcher
    /** Re-reads the key and config files; false (and the old key kept) when the new ones are bad. */
    reloadKey: () => Promise<boolean>
  }
}

/**
 * Paths pino blanks in every log line. Secrets are not logged in the first place; this is the
 * second guard, for the day somebody logs a header or a response by mistake.
 */
export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization',
  'access_token', 'accessToken', 'jwt', 'private_key', 'privateKey',
  '*.access_token', '*.accessToken', '*.jwt', '*.private_key', '*.privateKey', '*.authorization'
]

/**
 * Validation. Unknown fields are refused, not silently dropped (Fastify's default). Query strings
 * and headers are text, so they are coerced to the schema's types; JSON bodies are not: a
 * `[1]` where strings belong is an error, not `["1"]` sent on to Coze.
 */
const AJV_OPTIONS = { removeAdditional: false, useDefaults: true, allErrors: false, allowUnionTypes: true } as const
const textAjv = new Ajv({ ...AJV_OPTIONS, coerceTypes: 'array' })
const bodyAjv = new Ajv({ ...AJV_OPTIONS, coerceTypes: false })

/**
 * A line per request at info would drown the exchange lines under load, so Fastify's own request
 * lines go to debug, and are not even built unless debug is on (they cost a cached /token ~6 %).
 */
class QuietRequests extends LogController {
  override isLogDisabled (request: FastifyRequest): boolean {
    return !(request.log as Logger).isLevelEnabled('debug')
  }

  override incomingRequest (request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return
    request.log.debug({ reqId: request.id, req: request }, 'incoming request')
  }

  override requestCompleted (_error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    reply.log.debug({ reqId: request.id, res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}

export function buildApp (options: AppOptions): FastifyInstance {
  const clock = options.clock ?? systemClock
  const logger: FastifyServerOptions['logger'] = {
    level: 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // Never a query string, even at debug: a browser's WebSocket carries its credential there.
    serializers: { req: (request: FastifyRequest) => ({ method: request.method, url: request.url.split('?', 1)[0], host: request.host, remoteAddress: request.ip }) },
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
    return503OnClosing: true,
    // Malformed URLs and the like leave in the same shape as every other error.
    frameworkErrors: (error, request, reply) => errorHandler(error, request, reply)
  })
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema))

  app.register(fastifyAccepts)
  // Collects every route's schema as it is added, for /openapi.json.
  app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'coze-token-sidecar',
        version: VERSION,
        description: 'Coze access tokens for local callers: the sidecar holds the OAuth app\'s key, exchanges JWTs and caches the tokens.'
      },
      components: { securitySchemes: { callerSecret: { type: 'http', scheme: 'bearer', description: 'SIDECAR_AUTH_TOKEN, when it is set' } } },
      security: [{ callerSecret: [] }]
    }
  })
  app.register(configPlugin, { env: options.env, cwd: options.cwd, readFile: options.readFile })
  app.register(fp(async function services (instance: FastifyInstance) {
    const config = instance.config
    instance.log.level = config.logLevel
    for (const warning of config.warnings) instance.log.warn(warning)
    const dispatcher = options.dispatcher ?? new Agent({
      connect: { timeout: config.httpTimeoutMs },
      headersTimeout: config.httpTimeoutMs,
      bodyTimeout: config.httpTimeoutMs,
      keepAliveTimeout: 30_000
    })
    // The key can be swapped at run time (SIGHUP, or its file changing); tokens already minted
    // stay valid until they expire.
    let signer: JwtSigner = { appId: config.appId, keyId: config.keyId, privateKey: config.privateKey, audience: config.audience }
    const client = new CozeTokenClient({
      clock,
      signer: () => signer,
      http: {
        baseUrl: config.apiBase,
        dispatcher,
        headersTimeoutMs: config.httpTimeoutMs,
        bodyTimeoutMs: config.httpTimeoutMs,
        userAgent: `coze-token-sidecar/${VERSION} node/${process.versions.node}`
      }
    })
    const cache = new TokenCache({
      mint: (request) => client.requestToken(request),
      clock,
      max: config.cacheMax,
      retry: config.retry,
      rate: new TokenBucket({ ...config.exchangeRate, clock }),
      random: options.random,
      onExchange: (report) => {
        logExchange(instance, report)
        metrics.observe(report)
      }
    })
    const metrics = new Metrics({ cache, defaultRequest: config.defaultRequest, clock })
    instance.decorate('tokens', cache)
    instance.decorate('metrics', metrics)
    instance.decorate('dispatcher', dispatcher)

    const secret = config.access.secret === undefined ? undefined : new CallerSecret(config.access.secret.value, config.access.secret.file)
    instance.decorate('access', {
      ...(secret === undefined ? {} : { secret }),
      listenHost: config.host,
      allowedHosts: new Set(config.access.allowedHosts),
      ...(config.access.requiredHeader === undefined ? {} : { requiredHeader: config.access.requiredHeader }),
      rejectForwarded: config.access.rejectForwarded
    })

    const reloadKey = async (): Promise<boolean> => {
      try {
        const next = await loadConfig({ env: options.env, cwd: options.cwd, readFile: options.readFile })
        if (next.appId !== signer.appId) {
          // Another app: its tokens are not this one's.
          cache.clear()
        }
        signer = { appId: next.appId, keyId: next.keyId, privateKey: next.privateKey, audience: signer.audience }
        for (const warning of next.warnings) instance.log.warn(warning)
        instance.log.info({ app_id: next.appId, key_id: next.keyId }, 'key reloaded')
        return true
      } catch (error) {
        // A ConfigError: one line, never the key.
        instance.log.error({ reason: (error as Error).message }, 'key reload failed; the current key stays in service')
        return false
      }
    }
    instance.decorate('reloadKey', reloadKey)

    const keyFiles = [config.privateKeyFile, config.oauthConfigFile].filter((file) => file !== undefined)
    const watch = new FileWatch({
      files: [...keyFiles, ...(secret?.file === undefined ? [] : [secret.file])],
      clock,
      onChange: (file) => {
        if (file === secret?.file) {
          secret.reload(options.readFile).then(
            () => instance.log.info({ file }, 'caller secret reloaded'),
            (error: Error) => instance.log.error({ reason: error.message }, 'caller secret reload failed; the current secret stays in service'))
        } else {
          reloadKey().catch(/* c8 ignore next - reloadKey catches */ () => {})
        }
      }
    })
    await watch.start()

    instance.addHook('onClose', async () => {
      watch.stop()
      cache.close()
      // By now every caller has had its answer (Fastify waited for in-flight requests); what is
      // still talking to Coze is background work, so it is cut rather than waited for.
      if (options.dispatcher === undefined) await dispatcher.destroy()
    })
  }, { name: 'services', dependencies: ['config'] }))

  // Closing waits for every connection. Idle keep-alive ones are closed at once; one whose request
  // is in flight would stay open for the keep-alive timeout after its answer. So while closing,
  // idle connections are swept every 50 ms. (No per-request hook: the hot path pays nothing.)
  let sweeper: NodeJS.Timeout | undefined
  app.addHook('preClose', (done) => {
    sweeper = setInterval(() => app.server.closeIdleConnections(), 50).unref()
    done()
  })
  app.addHook('onClose', (_instance, done) => {
    clearInterval(sweeper)
    done()
  })
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler(async (request) => {
    throw new errors.NotFound(request.method, request.url.split('?')[0])
  })
  // Tokens (and the page) only for the callers that should have them; probes stay open.
  app.register(async function guarded (scope) {
    scope.addHook('onRequest', (request, reply, done) => {
      // Tokens, the page and their errors are never stored by a browser or a proxy.
      reply.header('cache-control', 'no-store')
      done(checkAccess(request.headers, scope.access, { skipSecret: request.routeOptions.config.public === true }))
    })
    await scope.register(tokenRoutes)
    await scope.register(pageRoutes, { version: VERSION })
  })
  // Coze's API through the sidecar (/v1, /v3, /open_api), with the same access rules.
  app.register(gatewayPlugin, { env: options.env, describeValidation: describeValidation as DescribeValidation })
  app.register(healthRoutes)
  app.register(metaRoutes)
  return app
}

/** One line per exchange attempt: what, how long, how it went. Never the token or the JWT. */
function logExchange (app: FastifyInstance, report: ExchangeReport): void {
  const error = report.error
  app.log.info({
    exchange: {
      variant: report.variant,
      attempt: report.attempt,
      reason: report.reason,
      duration_ms: Math.round(report.durationMs),
      outcome: report.outcome,
      ...(report.logid === undefined ? {} : { logid: report.logid }),
      ...(error?.status === undefined ? {} : { status: error.status }),
      ...(error?.errorCode === undefined ? {} : { error_code: error.errorCode }),
      ...(error === undefined ? {} : { error: error.message }),
      ...(report.skewMs === undefined ? {} : { clock_skew_ms: report.skewMs })
    }
  }, report.outcome === 'ok' ? 'coze token exchange ok' : 'coze token exchange failed')
}

interface ValidationProblem {
  keyword: string
  instancePath: string
  params: Record<string, unknown>
  /** Ajv always writes one. */
  message: string
}

/** Ajv's first complaint as a field name and a sentence a person can act on. */
export function describeValidation (problem: ValidationProblem, context: string): { field: string, message: string } {
  const path = problem.instancePath.split('/').slice(1)
    .map((part, index) => /^\d+$/.test(part) ? `[${part}]` : `${index === 0 ? '' : '.'}${part}`).join('')
  const where = context === 'querystring' ? 'parameter' : 'field'
  const p = problem.params
  switch (problem.keyword) {
    case 'required': {
      const field = [path, String(p.missingProperty)].filter(Boolean).join('.')
      return { field, message: `${field} is required` }
    }
    case 'additionalProperties': {
      const field = [path, String(p.additionalProperty)].filter(Boolean).join('.')
      return { field, message: `${field} is not a known ${where}` }
    }
  }
  const field = path === '' ? context : path
  const leaf = problem.instancePath.slice(problem.instancePath.lastIndexOf('/') + 1)
  switch (problem.keyword) {
    case 'type': return { field, message: path === '' ? `${context} must be a JSON object` : `${field} must be ${article(String(p.type))}` }
    case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum':
      return { field, message: `${field} must be ${String(p.comparison)} ${String(p.limit)}` }
    // Every minLength in the schemas is 1.
    case 'minLength': return { field, message: `${field} must not be empty` }
    case 'maxLength': return { field, message: `${field} must be at most ${String(p.limit)} characters` }
    case 'pattern': return { field, message: `${field} ${PATTERN_HINTS[leaf] ?? PATTERN_HINTS.default}` }
    case 'enum': return { field, message: `${field} must be one of: ${(p.allowedValues as unknown[]).join(', ')}` }
    case 'maxItems': return { field, message: `${field} must have at most ${String(p.limit)} items` }
    case 'minProperties': case 'maxProperties':
      if (leaf === 'device_info') return { field, message: `${field} must have exactly one of device_id, custom_consumer` }
  }
  return { field, message: `${field} ${problem.message}` }
}

function article (type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
}

/** Fastify's own 4xx errors that are about the request body. */
const BODY_ERRORS = new Set([
  'FST_ERR_CTP_INVALID_MEDIA_TYPE', 'FST_ERR_CTP_EMPTY_JSON_BODY', 'FST_ERR_CTP_INVALID_JSON_BODY',
  'FST_ERR_CTP_BODY_TOO_LARGE', 'FST_ERR_CTP_INVALID_CONTENT_LENGTH'
])

/**
 * Every error leaves in Fastify's shape `{statusCode, code, error, message}`, plus `field` for
 * 400s and `coze` when Coze answered. Anything unexpected is a 500 whose details stay in the log.
 */
function errorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply): unknown {
  let known: SidecarError
  if (error.validation !== undefined && error.validation.length > 0) {
    const { field, message } = describeValidation(error.validation[0] as ValidationProblem, error.validationContext as string)
    known = details(new errors.InvalidParameter(message), { field }) as SidecarError
  } else if (isSidecarError(error) && error.statusCode < 500 && error.code.startsWith('FST_')) {
    // Fastify's own client errors (media type, JSON syntax, size): their messages are safe.
    known = BODY_ERRORS.has(error.code) ? details(error, { field: 'body' }) : error
  } else if (isSidecarError(error) && !error.code.startsWith('FST_')) {
    known = error
  } else {
    request.log.error({ reqId: request.id, err: error }, 'unexpected error')
    known = new errors.Internal() as SidecarError
  }
  if (known.retryAfter !== undefined) reply.header('retry-after', String(known.retryAfter))
  if (known.statusCode === 401) reply.header('www-authenticate', 'Bearer realm="coze-token-sidecar"')
  return reply.code(known.statusCode).send({
    statusCode: known.statusCode,
    code: known.code,
    error: STATUS_CODES[known.statusCode] as string,
    message: known.message,
    ...(known.field === undefined ? {} : { field: known.field }),
    ...(known.coze === undefined ? {} : { coze: known.coze })
  })
}
