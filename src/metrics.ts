/**
 * Prometheus metrics, on a registry of the app's own (never prom-client's global one, so that
 * several apps in one process, as in tests, do not collide). Every series is labelled with the
 * credential's name, `app`.
 *
 * Counted as they happen: exchanges by variant and outcome, their latency, upstream errors by
 * Coze's `error_code`. Read at scrape time from each credential's cache: hits, misses,
 * evictions, stale and rate-limited answers, tokens cached, seconds until the default token
 * expires, clock skew.
 *
 * @example
 * const metrics = new Metrics({ credentials: () => registry.all(), clock })
 * metrics.observe('default', report) // from the cache's onExchange
 * reply.type(metrics.contentType).send(await metrics.text())
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, type CounterConfiguration, type LabelValues } from 'prom-client'
import type { Clock } from './clock.js'
import type { Credential, TokenSource } from './credentials/credential.js'
import type { ExchangeReport } from './token/cache.js'

export interface MetricsOptions {
  /** The credentials to read at scrape time. */
  credentials: () => Credential[]
  clock: Clock
}

/**
 * A Prometheus counter counted in plain numbers and read into prom-client when scraped, for the
 * counters of every request: prom-client's own `inc` builds a key from the labels on every call,
 * a noticeable part of a cached /token's time and of a gateway request's (issue 12).
 *
 * @example
 * const requests = new ScrapedCounter({ name: 'x_total', help: '…', labelNames: ['caller'], registers })
 * requests.inc(caller, { caller })
 */
export class ScrapedCounter<L extends string> {
  readonly #counts = new Map<string, { labels: LabelValues<L>, count: number }>()

  constructor (configuration: CounterConfiguration<L>) {
    const counter: Counter<L> = new Counter({
      ...configuration,
      collect: () => {
        counter.reset()
        for (const { labels, count } of this.#counts.values()) counter.inc(labels, count)
      }
    })
  }

  /** One more for `labels`; `key` is any string that tells these labels from every other set. */
  inc (key: string, labels: LabelValues<L>): void {
    const seen = this.#counts.get(key)
    if (seen !== undefined) seen.count++
    else this.#counts.set(key, { labels, count: 1 })
  }
}

export class Metrics {
  readonly registry = new Registry()
  readonly #exchanges: Counter<'app' | 'variant' | 'outcome'>
  readonly #duration: Histogram<'app' | 'variant'>
  readonly #upstreamErrors: Counter<'app' | 'error_code'>
  readonly #callerRefusals: Counter<'caller' | 'reason'>
  readonly #callerExchanges: Counter<'caller' | 'outcome'>
  /** Admitted requests per caller: counted on every cached /token, so read at scrape time. */
  readonly #callerRequests: ScrapedCounter<'caller'>

  constructor ({ credentials, clock }: MetricsOptions) {
    const registers = [this.registry]
    this.#exchanges = new Counter({
      name: 'coze_token_exchanges_total',
      help: 'Token exchange attempts with Coze, by credential, variant and outcome (ok, refused, unavailable, rate_limited, bad_response, unreachable, timeout).',
      labelNames: ['app', 'variant', 'outcome'],
      registers
    })
    this.#duration = new Histogram({
      name: 'coze_token_exchange_duration_seconds',
      help: 'Time from sending a token request to Coze\'s answer (or the failure).',
      labelNames: ['app', 'variant'],
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers
    })
    this.#upstreamErrors = new Counter({
      name: 'coze_token_upstream_errors_total',
      help: 'Failed exchanges by Coze\'s error_code; failures without one by kind (e.g. unreachable, timeout, http_503).',
      labelNames: ['app', 'error_code'],
      registers
    })
    this.#callerRequests = new ScrapedCounter({
      name: 'coze_token_caller_requests_total',
      help: 'Token requests admitted, by caller name (anonymous when no caller secret is configured).',
      labelNames: ['caller'],
      registers
    })
    this.#callerRefusals = new Counter({
      name: 'coze_token_caller_refusals_total',
      help: 'Requests refused, by caller name and the rule broken (reason); caller "(unknown)" and reason "secret" for a missing or unknown secret.',
      labelNames: ['caller', 'reason'],
      registers
    })
    this.#callerExchanges = new Counter({
      name: 'coze_token_caller_exchanges_total',
      help: 'Exchange attempts a caller waited for (cache misses), by caller name and outcome; background refreshes have no caller.',
      labelNames: ['caller', 'outcome'],
      registers
    })
    /** A metric read per credential at scrape time; undefined leaves that credential out. */
    const perApp = (kind: 'counter' | 'gauge', name: string, help: string, read: (tokens: TokenSource, credential: Credential) => number): void => {
      const Metric = kind === 'counter' ? Counter : Gauge
      const metric: Counter<'app'> | Gauge<'app'> = new Metric({
        name,
        help,
        labelNames: ['app'],
        registers,
        collect: () => {
          metric.reset()
          for (const credential of credentials()) {
            const value = read(credential.tokens, credential)
            if (metric instanceof Counter) metric.inc({ app: credential.name }, value)
            else metric.set({ app: credential.name }, value)
          }
        }
      })
    }
    perApp('counter', 'coze_token_cache_hits_total', 'Tokens handed out from the cache.', (tokens) => tokens.stats.hits)
    perApp('counter', 'coze_token_cache_misses_total', 'Callers that waited for an exchange.', (tokens) => tokens.stats.misses)
    perApp('counter', 'coze_token_cache_evictions_total', 'Cached tokens dropped to stay within SIDECAR_CACHE_MAX.', (tokens) => tokens.stats.evictions)
    perApp('counter', 'coze_token_stale_served_total', 'Still-valid tokens handed out while their refresh was failing.', (tokens) => tokens.stats.staleServed)
    perApp('counter', 'coze_token_rate_limited_total', 'Callers refused by the exchange rate limit.', (tokens) => tokens.stats.rateLimited)
    perApp('gauge', 'coze_token_cached_tokens', 'Distinct requests (session names, variants, ttls) in the cache.', (tokens) => tokens.size)
    // NaN is Prometheus' "no value": a 0 would read as "expires now" or "no skew".
    perApp('gauge', 'coze_token_default_expiry_seconds', 'Seconds until the default token expires (NaN while there is none, or for a static token without an expiry).', (tokens, credential) => {
      const expiresIn = tokens.status(credential.defaultRequest).token?.expiresIn
      return expiresIn === undefined ? NaN : expiresIn - clock.now() / 1000
    })
    perApp('gauge', 'coze_token_clock_skew_seconds', 'Coze\'s clock minus ours, from the Date header of its last answer (NaN before one).', (tokens) =>
      tokens.skewMs === undefined ? NaN : tokens.skewMs / 1000)
    const rss: Gauge = new Gauge({ name: 'process_resident_memory_bytes', help: 'Resident memory of the sidecar process.', registers, collect: () => { rss.set(process.memoryUsage.rss()) } })
  }

  get contentType (): string {
    return this.registry.contentType
  }

  /** Counts one exchange attempt of credential `app`. */
  observe (app: string, report: ExchangeReport): void {
    this.#exchanges.inc({ app, variant: report.variant, outcome: report.outcome })
    this.#duration.observe({ app, variant: report.variant }, report.durationMs / 1000)
    if (report.caller !== undefined) this.#callerExchanges.inc({ caller: report.caller, outcome: report.outcome })
    const error = report.error
    if (error !== undefined) {
      this.#upstreamErrors.inc({ app, error_code: error.errorCode ?? (error.status === undefined ? error.kind : `http_${error.status}`) })
    }
  }

  /** Counts one admitted request of `caller`. */
  request (caller: string): void {
    this.#callerRequests.inc(caller, { caller })
  }

  /** Counts one refusal: of `caller` (undefined: not identified) for breaking `reason`. */
  refused (caller: string | undefined, reason: string): void {
    this.#callerRefusals.inc({ caller: caller ?? '(unknown)', reason })
  }

  /** The exposition text. */
  async text (): Promise<string> {
    return await this.registry.metrics()
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/** Decorates the app with its {@link Metrics}, reading the credentials registered after it. */
export const metricsPlugin = fp(async function metrics (app: FastifyInstance, options: { clock: Clock }) {
  app.decorate('metrics', new Metrics({ credentials: () => app.credentials.all(), clock: options.clock }))
}, { name: 'metrics', fastify: '5.x' })
