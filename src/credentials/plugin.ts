/**
 * The credential registry as a Fastify plugin: builds the shared HTTP pool for calls to Coze
 * (honouring `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` through undici's own proxy agent), the
 * registry over it, and decorates the app with both. Exchanges are logged and counted here.
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Dispatcher } from 'undici'
import type { Clock } from '../clock.js'
import type { ExchangeReport } from '../token/cache.js'
import { CredentialStatus } from '../status.js'
import { EnvHttpProxyAgent } from '../undici.js'
import { VERSION } from '../package-files.js'
import { CredentialRegistry } from './registry.js'
import { listCredentialFiles, readCredentialFile, readDefaultCredential, type SourceOptions } from './sources.js'

declare module 'fastify' {
  interface FastifyInstance {
    credentials: CredentialRegistry
    /** The pool every call to Coze goes through (token exchanges and the gateway). */
    cozeDispatcher: Dispatcher
    /** GET /status's view of credential `name`, fed by its exchanges. */
    credentialStatus: (name: string) => CredentialStatus
    /** Answers callers waiting for Coze with 503 SHUTTING_DOWN, now and from now on; how many waited. */
    shedWaiting: () => number
  }
}

export interface CredentialsPluginOptions {
  sources: SourceOptions
  clock: Clock
  /** Default: an undici pool with the configured timeouts and proxy, closed with the app. */
  dispatcher?: Dispatcher
  random?: () => number
}

export const credentialsPlugin = fp(async function credentials (app: FastifyInstance, options: CredentialsPluginOptions) {
  const config = app.config
  const timeout = config.httpTimeoutMs
  const dispatcher = options.dispatcher ?? new EnvHttpProxyAgent({
    // Always given, never read from process.env here: only server.ts reads the process.
    httpProxy: config.proxy.httpProxy,
    httpsProxy: config.proxy.httpsProxy,
    noProxy: config.proxy.noProxy,
    connect: { timeout },
    headersTimeout: timeout,
    bodyTimeout: timeout,
    keepAliveTimeout: 30_000
  })
  const { sources } = options
  const statuses = new Map<string, CredentialStatus>()
  const statusOf = (name: string): CredentialStatus => {
    let status = statuses.get(name)
    if (status === undefined) statuses.set(name, status = new CredentialStatus({ credential: () => registry.select(name), clock: options.clock }))
    return status
  }
  // The exchange lines' logger for each credential, its name bound once. pino redacts every
  // top-level field of every line (the wildcard paths), which for this line cost more than
  // building it: bound here, the name is redacted once, not on every exchange. As bounded as
  // the statuses above: one per credential name.
  const exchangeLogs = new Map<string, FastifyBaseLogger>()
  const exchangeLog = (name: string): FastifyBaseLogger => {
    let log = exchangeLogs.get(name)
    if (log === undefined) exchangeLogs.set(name, log = app.log.child({ app: name }))
    return log
  }
  const registry = new CredentialRegistry({
    specs: config.credentials,
    clock: options.clock,
    ...(config.defaultApp === undefined ? {} : { defaultApp: config.defaultApp }),
    log: app.log,
    load: {
      readDefault: () => readDefaultCredential(config.settings, sources),
      listFiles: async () => config.credentialsDir === undefined ? [] : await listCredentialFiles(config.credentialsDir),
      readFile: (file) => readCredentialFile(file, config.settings, sources)
    },
    context: {
      clock: options.clock,
      dispatcher,
      httpTimeoutMs: timeout,
      userAgent: `coze-token-sidecar/${VERSION} node/${process.versions.node}`,
      cacheMax: config.cacheMax,
      retry: config.retry,
      exchangeRate: config.exchangeRate,
      ...(config.alternateApiBase === undefined ? {} : { alternateApiBase: config.alternateApiBase }),
      ...(options.random === undefined ? {} : { random: options.random }),
      onExchange: (name, report) => {
        logExchange(exchangeLog(name), report)
        app.metrics.observe(name, report)
        statusOf(name).observe(report)
      },
      onWrongRegion: (name, diagnosis) => {
        app.log.warn({ app: name, api_base: diagnosis.configured, registered_at: diagnosis.registeredAt, setting: diagnosis.setting },
          `Coze does not know this key at ${diagnosis.configured}, but ${diagnosis.registeredAt} does: set ${diagnosis.setting} to ${diagnosis.registeredAt}`)
      }
    }
  })
  await registry.start()
  app.decorate('credentials', registry)
  app.decorate('cozeDispatcher', dispatcher)
  app.decorate('credentialStatus', statusOf)
  app.decorate('shedWaiting', () => registry.all().reduce((waited, credential) => waited + credential.tokens.shed(), 0))
  app.addHook('onClose', async () => {
    registry.close()
    // By now every caller has had its answer (Fastify waited for in-flight requests); what is
    // still talking to Coze is background work, so it is cut rather than waited for.
    if (options.dispatcher === undefined) await dispatcher.destroy()
  })
}, { name: 'credentials', fastify: '5.x', dependencies: ['config', 'metrics'] })

/** One line per exchange attempt: which app, what, how long, how it went. Never the token or the JWT. */
function logExchange (log: FastifyBaseLogger, report: ExchangeReport): void {
  const error = report.error
  log.info({
    exchange: {
      variant: report.variant,
      attempt: report.attempt,
      reason: report.reason,
      ...(report.caller === undefined ? {} : { caller: report.caller }),
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
